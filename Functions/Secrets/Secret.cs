namespace TenantDb.Functions.Secrets;

/// <summary>A clear-text secret that never prints itself: logging or serialising the holder shows a mask.</summary>
public sealed class Secret(string value)
{
    public string Reveal() => value;

    public override string ToString() => "[secret]";
}
