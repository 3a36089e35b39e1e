using System.Security.Claims;
using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;

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
/// system key the extension's routes only, the master key all of them. Every key has a name, as in the host: the master
/// key <c>_master</c>, the system key <c>durabletask_extension</c>, the keys of <c>FunctionKeys</c> <c>default</c>,
/// <c>default2</c>, ..., and those of <c>NamedFunctionKeys</c> their own; a request with a valid key carries the host's
/// <c>WebJobsAuthLevel</c> identity (<see cref="Principal"/>), so the app reads the key's name as it does under the host.
/// </summary>
internal sealed partial class FunctionKeys
{
    public const string MasterKeyName = "_master";
    public const string SystemKeyName = "durabletask_extension";
    public const string DefaultKeyName = "default";

    // The claims the host's key authentication puts on a request (the app's CallerKey reads the same ones).
    private const string AuthLevelClaim = "http://schemas.microsoft.com/2017/07/functions/claims/authlevel";
    private const string KeyIdClaim = "http://schemas.microsoft.com/2017/07/functions/claims/keyid";
    private const string AuthenticationType = "WebJobsAuthLevel";

    private readonly byte[]? _master;
    private readonly (string Name, byte[] Value)[] _functionKeys;
    private readonly byte[] _system;

    public FunctionKeys(LocalHostOptions options)
    {
        _master = string.IsNullOrEmpty(options.MasterKey) ? null : Encoding.UTF8.GetBytes(options.MasterKey);
        var unnamed = (options.FunctionKeys ?? string.Empty)
            .Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select((value, i) => (Name: i == 0 ? DefaultKeyName : $"{DefaultKeyName}{i + 1}", Value: value));
        var named = options.NamedFunctionKeys.Where(k => !string.IsNullOrEmpty(k.Value)).Select(k => (Name: k.Key, k.Value));
        _functionKeys = [.. unnamed.Concat(named).Select(k => (k.Name, Encoding.UTF8.GetBytes(k.Value)))];
        if (_functionKeys.FirstOrDefault(k => !KeyName().IsMatch(k.Name) || k.Name is MasterKeyName or SystemKeyName) is { Name: { } bad })
        {
            throw new InvalidOperationException(
                $"{LocalHostOptions.Section}:NamedFunctionKeys: '{bad}' is not a key name (letters, digits, '.', '_', '-'; not {MasterKeyName} or {SystemKeyName}).");
        }

        if (_functionKeys.GroupBy(k => k.Name, StringComparer.OrdinalIgnoreCase).FirstOrDefault(g => g.Count() > 1) is { } twice)
        {
            throw new InvalidOperationException($"{LocalHostOptions.Section}:NamedFunctionKeys: two function keys are named '{twice.Key}'.");
        }

        SystemKey = string.IsNullOrEmpty(options.SystemKey) ? NewKey() : options.SystemKey;
        _system = Encoding.UTF8.GetBytes(SystemKey);
        if (_functionKeys.Any(k => k.Value.AsSpan().SequenceEqual(_system)) || (_master is not null && _master.AsSpan().SequenceEqual(_system)))
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

    public bool IsAuthorized(HttpRequest request, AuthLevel level) => IsAuthorized(request, level, out _);

    /// <summary>
    /// Whether the request's key opens a route of <paramref name="level"/>; <paramref name="principal"/> is the host's
    /// identity of the key presented (its level and name, never its value), or null when no valid key came with it.
    /// </summary>
    public bool IsAuthorized(HttpRequest request, AuthLevel level, out ClaimsPrincipal? principal)
    {
        var key = request.Headers["x-functions-key"].FirstOrDefault() ?? request.Query["code"].FirstOrDefault();
        var identified = string.IsNullOrEmpty(key) ? null : Identify(Encoding.UTF8.GetBytes(key));
        principal = identified is { } k ? Principal(k.Level, k.Name) : null;
        return level switch
        {
            AuthLevel.Anonymous => true,
            _ when identified is null => false,
            _ when identified.Value.Level == AuthLevel.Admin => true,
            _ => identified.Value.Level == level,
        };
    }

    /// <summary>The identity the Functions host puts on a request that came with a valid key.</summary>
    public static ClaimsPrincipal Principal(AuthLevel level, string keyName) =>
        new(new ClaimsIdentity([new Claim(AuthLevelClaim, level.ToString()), new Claim(KeyIdClaim, keyName)], AuthenticationType));

    private (AuthLevel Level, string Name)? Identify(byte[] presented)
    {
        if (_master is not null && CryptographicOperations.FixedTimeEquals(presented, _master))
        {
            return (AuthLevel.Admin, MasterKeyName);
        }

        if (CryptographicOperations.FixedTimeEquals(presented, _system))
        {
            return (AuthLevel.System, SystemKeyName);
        }

        foreach (var (name, value) in _functionKeys)
        {
            if (CryptographicOperations.FixedTimeEquals(presented, value))
            {
                return (AuthLevel.Function, name);
            }
        }

        return null;
    }

    [GeneratedRegex("^[A-Za-z0-9._-]{1,128}$")]
    private static partial Regex KeyName();

    /// <summary>40 letters and digits from the OS CSPRNG, like the keys <c>infra/run.sh</c> makes.</summary>
    private static string NewKey() => RandomNumberGenerator.GetString("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", 40);
}
