namespace TenantDb.Bench.Sections;

/// <summary>A section measured at every load level, level by level beside the others, so each meets the same server state.</summary>
public interface ILoadSection
{
    /// <summary>The JSON key of the section (its rows in the table carry <see cref="Title"/>).</summary>
    string Key { get; }

    string Title { get; }

    /// <summary>Work before a round that is not timed (e.g. filling the warm stock).</summary>
    Task PrepareAsync(Load round);

    /// <summary>One round of a level.</summary>
    Task<Samples> RunAsync(Load round);
}
