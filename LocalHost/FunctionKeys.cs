using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Http;

namespace TenantDb.LocalHost;

/// <summary>Auth levels as the Functions host applies them.</summary>
public enum AuthLevel
{
    Anonymous,
    Function,
    Admin,
}

/// <summary>The master key and function keys; a request's key comes from <c>x-functions-key</c> or <c>?code=</c>.</summary>
internal sealed class FunctionKeys
{
    private readonly byte[]? master;
    private readonly byte[][] functionKeys;

    public FunctionKeys(LocalHostOptions options)
    {
        this.master = string.IsNullOrEmpty(options.MasterKey) ? null : Encoding.UTF8.GetBytes(options.MasterKey);
        this.functionKeys = (options.FunctionKeys ?? string.Empty)
            .Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(Encoding.UTF8.GetBytes)
            .ToArray();
    }

    public bool HasMasterKey => this.master is not null;

    public static AuthLevel Parse(string functionName, string? level) => level?.ToLowerInvariant() switch
    {
        null or "anonymous" => AuthLevel.Anonymous,
        "function" => AuthLevel.Function,
        "admin" or "system" => AuthLevel.Admin,
        _ => throw new FunctionStartupException(functionName, $"its authLevel '{level}' is not supported"),
    };

    public bool IsAuthorized(HttpRequest request, AuthLevel level)
    {
        if (level == AuthLevel.Anonymous)
        {
            return true;
        }

        string? key = request.Headers["x-functions-key"].FirstOrDefault() ?? request.Query["code"].FirstOrDefault();
        if (string.IsNullOrEmpty(key))
        {
            return false;
        }

        byte[] presented = Encoding.UTF8.GetBytes(key);
        if (this.master is not null && CryptographicOperations.FixedTimeEquals(presented, this.master))
        {
            return true;
        }

        return level == AuthLevel.Function && this.functionKeys.Any(k => CryptographicOperations.FixedTimeEquals(presented, k));
    }
}
