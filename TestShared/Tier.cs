namespace TenantDb.Tests;

/// <summary>
/// The test tiers: every test class carries exactly one <c>[Trait("Category", Tier.X)]</c> (<see cref="TierTests"/> fails
/// otherwise), so a tier runs alone with <c>dotnet test --filter Category=Unit</c>.
/// </summary>
public static class Tier
{
    /// <summary>The trait name the tiers are the values of.</summary>
    public const string Category = "Category";

    /// <summary>No PostgreSQL, no Azurite, no Docker, no child process: the app's code and fakes only.</summary>
    public const string Unit = "Unit";

    /// <summary>Real PostgreSQL servers (local binaries, started by the tests) and/or Azurite, the in-memory Durable engine; no Docker engine.</summary>
    public const string Database = "Database";

    /// <summary>The Docker engine with a single-node swarm (infra/docker/engine.sh) and the local PostgreSQL image.</summary>
    public const string Docker = "Docker";

    /// <summary>LocalHost as a child process serving the real app, or the infra scripts run as a newcomer runs them.</summary>
    public const string EndToEnd = "EndToEnd";

    public static IReadOnlyList<string> All { get; } = [Unit, Database, Docker, EndToEnd];
}
