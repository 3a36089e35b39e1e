namespace TenantDb.Functions.Telemetry;

/// <summary>Telemetry settings (section <c>Telemetry</c>).</summary>
public sealed class TelemetryOptions
{
    public const string Section = "Telemetry";

    /// <summary>Export each tenant's size as a gauge series of its own (<c>tenantdb.tenant.size</c>); off by default to bound cardinality.</summary>
    public bool PerTenantMetrics { get; set; }
}
