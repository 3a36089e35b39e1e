namespace TenantDb.Functions.Allocations;

/// <summary>The <c>Api</c> section's say on allocations' <c>callback_url</c> (issue 14 item 6).</summary>
public sealed class CallbackUrlOptions
{
    public const string Section = "Api";

    /// <summary>Accept <c>http://</c> callback URLs to a loopback host (development and tests); off in a deployment: https only.</summary>
    public bool AllowLoopbackCallbacks { get; set; }
}
