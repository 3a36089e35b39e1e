using System.Security.Claims;
using System.Text.RegularExpressions;
using Microsoft.Azure.Functions.Worker;
using Microsoft.Azure.Functions.Worker.Middleware;
using TenantDb.Functions.Domain;

namespace TenantDb.Functions.Api;

/// <summary>
/// The key an HTTP call came with, as the Functions host names it: its key authentication puts a
/// <c>WebJobsAuthLevel</c> identity on the request with the key's level and name (never its value) as claims. LocalHost
/// puts the same identity on the request, so this one reader serves both hosts.
/// </summary>
public static partial class CallerKey
{
    /// <summary>The level of the key: <c>Function</c>, <c>Admin</c> or <c>System</c>.</summary>
    public const string AuthLevelClaim = "http://schemas.microsoft.com/2017/07/functions/claims/authlevel";

    /// <summary>The key's name: <c>_master</c>, <c>default</c> or the name it was given.</summary>
    public const string KeyIdClaim = "http://schemas.microsoft.com/2017/07/functions/claims/keyid";

    /// <summary>The authentication type of the host's key identity.</summary>
    public const string AuthenticationType = "WebJobsAuthLevel";

    /// <summary>
    /// The actor of a call by <paramref name="user"/> to <paramref name="functionName"/>: <c>key:{name}</c>, or
    /// <c>http:{function}</c> when no key name is on the request (or it is not a plain name).
    /// </summary>
    public static string ActorOf(ClaimsPrincipal? user, string functionName) =>
        user?.FindFirst(KeyIdClaim)?.Value is { } name && KeyName().IsMatch(name)
            ? Actors.Key(name)
            : Actors.UnnamedKey(functionName);

    // The host's key names: letters, digits, '.', '_' and '-'; anything else is not recorded as given.
    [GeneratedRegex("^[A-Za-z0-9._-]{1,128}$")]
    private static partial Regex KeyName();
}

/// <summary>Names the caller of every HTTP function (<see cref="CallerKey"/>) as the actor of what it changes.</summary>
public sealed class ActorMiddleware : IFunctionsWorkerMiddleware
{
    public Task Invoke(FunctionContext context, FunctionExecutionDelegate next) =>
        context.GetHttpContext() is { } http
            ? AuditActor.RunAsync(CallerKey.ActorOf(http.User, context.FunctionDefinition.Name), () => next(context))
            : next(context);
}
