using System.Security.Cryptography;
using System.Text;

namespace TenantDb.LocalHost;

/// <summary>Auth levels as the Functions host applies them.</summary>
public enum AuthLevel
{
    Anonymous,
    Function,
    Admin,

    /// <summary>Extension webhooks (the durable management routes): the system key or the master key.</summary>
    System,
}

/// <summary>
/// The master key, function keys and the Durable extension's system key; a request's key comes from
/// <c>x-functions-key</c> or <c>?code=</c>. As in the Functions host, a function key opens function-level routes only, the
/// system key the extension's routes only, the master key all of them.
/// </summary>
internal sealed class FunctionKeys
{
    private readonly byte[]? _master;
    private readonly byte[][] _functionKeys;
    private readonly byte[] _system;

    public FunctionKeys(LocalHostOptions options)
    {
        _master = string.IsNullOrEmpty(options.MasterKey) ? null : Encoding.UTF8.GetBytes(options.MasterKey);
        _functionKeys = (options.FunctionKeys ?? string.Empty)
            .Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(Encoding.UTF8.GetBytes)
            .ToArray();
        SystemKey = string.IsNullOrEmpty(options.SystemKey) ? NewKey() : options.SystemKey;
        _system = Encoding.UTF8.GetBytes(SystemKey);
        if (_functionKeys.Any(k => k.AsSpan().SequenceEqual(_system)) || (_master is not null && _master.AsSpan().SequenceEqual(_system)))
        {
            throw new InvalidOperationException($"{LocalHostOptions.Section}:SystemKey must differ from the master key and every function key: status URLs carry it.");
        }
    }

    public bool HasMasterKey => _master is not null;

    /// <summary>The system key, configured or made at start; it goes into the status URLs the durable client builds.</summary>
    public string SystemKey { get; }

    public static AuthLevel Parse(string functionName, string? level) => level?.ToLowerInvariant() switch
    {
        null or "anonymous" => AuthLevel.Anonymous,
        "function" => AuthLevel.Function,
        "admin" => AuthLevel.Admin,
        "system" => AuthLevel.System,
        _ => throw new FunctionStartupException(functionName, $"its authLevel '{level}' is not supported"),
    };

    public bool IsAuthorized(HttpRequest request, AuthLevel level)
    {
        if (level == AuthLevel.Anonymous)
        {
            return true;
        }

        var key = request.Headers["x-functions-key"].FirstOrDefault() ?? request.Query["code"].FirstOrDefault();
        if (string.IsNullOrEmpty(key))
        {
            return false;
        }

        var presented = Encoding.UTF8.GetBytes(key);
        if (_master is not null && CryptographicOperations.FixedTimeEquals(presented, _master))
        {
            return true;
        }

        return level switch
        {
            AuthLevel.Function => _functionKeys.Any(k => CryptographicOperations.FixedTimeEquals(presented, k)),
            AuthLevel.System => CryptographicOperations.FixedTimeEquals(presented, _system),
            _ => false,
        };
    }

    /// <summary>40 letters and digits from the OS CSPRNG, like the keys <c>infra/run.sh</c> makes.</summary>
    private static string NewKey() => RandomNumberGenerator.GetString("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", 40);
}
