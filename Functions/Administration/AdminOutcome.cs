namespace TenantDb.Functions.Administration;

/// <summary>The answer of an administrative use case: its value, or why not (each maps to one HTTP problem).</summary>
public abstract record AdminOutcome<T>
{
    public sealed record Done(T Value) : AdminOutcome<T>;
    public sealed record Invalid(IReadOnlyDictionary<string, string[]> Errors) : AdminOutcome<T>;
    public sealed record NotFound(string Type, string Detail) : AdminOutcome<T>;
    public sealed record Conflict(string Type, string Detail) : AdminOutcome<T>;
    public sealed record Unprocessable(string Type, string Detail, IDictionary<string, object?>? Extensions = null) : AdminOutcome<T>;
    public sealed record Unavailable(string Type, string Detail) : AdminOutcome<T>;

    /// <summary>The one "no such pool" answer.</summary>
    public static AdminOutcome<T> PoolNotFound(long id) => new NotFound("pool-not-found", $"There is no pool {id}.");
}
