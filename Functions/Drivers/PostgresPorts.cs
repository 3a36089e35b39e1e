namespace TenantDb.Functions.Drivers;

/// <summary>Where PostgreSQL listens inside a container or overlay network: the image's port, the same on every server.</summary>
public static class PostgresPorts
{
    public const int Default = 5432;

    /// <summary>The port as Docker names an exposed or published port.</summary>
    public const string DockerTcp = "5432/tcp";
}
