namespace TenantDb.Functions.Domain;

/// <summary>Who made a change, as <c>pool_events.actor</c> records it.</summary>
public static class Actors
{
    public const string InstanceService = "instance-service";
    public const string Allocator = "allocator";
    public const string CredentialHandoff = "credential-handoff";
    public const string HealthSweep = "health-sweep";
    public const string DailyCleanup = "daily-cleanup";
    public const string KeyRotation = "key-rotation";
    public const string Operator = "operator";
}
