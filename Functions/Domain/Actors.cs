namespace TenantDb.Functions.Domain;

/// <summary>
/// Who made a change, as <c>pool_events.actor</c> records it: the name (never the value) of the key an HTTP call came
/// with, or the timer or orchestration that ran. The entry points name themselves; what they call reads
/// <see cref="AuditActor.Current"/>.
/// </summary>
public static class Actors
{
    /// <summary>An HTTP call, by the name the host gives the key it came with (<c>_master</c>, <c>default</c>, ...).</summary>
    public static string Key(string keyName) => $"key:{keyName}";

    /// <summary>An HTTP call whose key the host did not name (no key id claim): the function that answered it.</summary>
    public static string UnnamedKey(string functionName) => $"http:{functionName}";

    /// <summary>A timer function's run.</summary>
    public static string Timer(string functionName) => $"timer:{functionName}";

    /// <summary>An activity of an orchestration, by the orchestration's name.</summary>
    public static string Orchestration(string orchestrationName) => $"orchestration:{orchestrationName}";

    /// <summary>Work that no entry point named (a service called directly, as tests do); no host path records it.</summary>
    public const string Unattributed = "unattributed";
}

/// <summary>
/// The actor of the work under way, carried with the async flow from the entry point that named it (the worker
/// middleware for HTTP calls, the timer and activity functions themselves) to the statement that records an event.
/// </summary>
public static class AuditActor
{
    private static readonly AsyncLocal<string?> Acting = new();

    /// <summary>Who is acting now; <see cref="Actors.Unattributed"/> outside any entry point.</summary>
    public static string Current => Acting.Value ?? Actors.Unattributed;

    /// <summary>Runs <paramref name="work"/> as <paramref name="actor"/>; the caller's actor is back when it returns.</summary>
    public static async Task RunAsync(string actor, Func<Task> work)
    {
        Acting.Value = actor;
        await work();
    }

    /// <inheritdoc cref="RunAsync(string, Func{Task})"/>
    public static async Task<T> RunAsync<T>(string actor, Func<Task<T>> work)
    {
        Acting.Value = actor;
        return await work();
    }
}
