namespace TenantDb.LocalHost;

/// <summary>The <c>LocalHost</c> configuration section.</summary>
public sealed class LocalHostOptions
{
    public const string Section = "LocalHost";

    /// <summary>Folder holding functions.metadata, host.json and the app assembly (--app).</summary>
    public string? AppPath { get; set; }

    /// <summary>Loopback address Kestrel listens on.</summary>
    public string Address { get; set; } = "127.0.0.1";

    /// <summary>Port (--port); 0 picks a free one.</summary>
    public int Port { get; set; } = 7071;

    /// <summary>The admin (master) key: opens function and admin routes and the durable management routes.</summary>
    public string? MasterKey { get; set; }

    /// <summary>Comma-separated function keys: open function-level routes only.</summary>
    public string? FunctionKeys { get; set; }

    /// <summary>
    /// Function keys by name (<c>LocalHost:NamedFunctionKeys:{name}</c>): open function-level routes only; the name is what
    /// the audit trail records as the actor of the calls made with the key. <see cref="FunctionKeys"/> are named
    /// <c>default</c>, <c>default2</c>, ...
    /// </summary>
    public Dictionary<string, string> NamedFunctionKeys { get; set; } = [];

    /// <summary>
    /// The Durable extension's system key: opens the durable management routes only, and is what the status URLs of
    /// <c>CreateHttpManagementPayload</c> carry (as the Functions host's <c>durabletask_extension</c> key). Unset: a new
    /// one per start, so status URLs handed out before a restart stop working.
    /// </summary>
    public string? SystemKey { get; set; }

    /// <summary>Largest body the durable management routes read (raise event); a larger one is refused with 413.</summary>
    public int MaxManagementBodyBytes { get; set; } = 64 * 1024;

    /// <summary>Task hub name; default host.json extensions.durableTask.hubName, else TenantDbLocal.</summary>
    public string? HubName { get; set; }

    /// <summary>Longest wait between polls of an empty queue.</summary>
    public TimeSpan MaxQueuePollingInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// How long a dequeued message stays invisible. After a crash (SIGKILL) the work it carried runs again once this
    /// passes, so it is short here (the engine's default is 5 minutes).
    /// </summary>
    public TimeSpan QueueVisibilityTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Control-queue partitions of the task hub.</summary>
    public int PartitionCount { get; set; } = 1;
}
