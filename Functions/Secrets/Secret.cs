namespace TenantDb.Functions.Secrets;

/// <summary>A clear-text secret that never prints itself: logging or serialising the holder shows a mask.</summary>
public sealed class Secret(string value)
{
    public string Reveal() => value;

    public override string ToString() => "[secret]";
}

/// <summary>What a printed record shows in place of a password it holds.</summary>
public static class Redacted
{
    public const string Mask = "[redacted]";
}
