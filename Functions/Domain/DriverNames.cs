namespace TenantDb.Functions.Domain;

/// <summary>The pool server drivers, as <c>Provisioning:Driver</c> and <c>db_servers.driver</c> name them.</summary>
public static class DriverNames
{
    public const string Process = "process";
    public const string Docker = "docker";
    public const string Swarm = "swarm";
    public const string Registered = "registered";

    /// <summary>The pattern the driver setting must match.</summary>
    public const string Pattern = "^(" + Process + "|" + Docker + "|" + Swarm + "|" + Registered + ")$";
}
