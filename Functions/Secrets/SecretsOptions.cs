using System.ComponentModel.DataAnnotations;

namespace TenantDb.Functions.Secrets;

public sealed class SecretsOptions
{
    public const string Section = "Secrets";

    /// <summary>Base64 of a 32-byte AES-256 key. In Azure, a Key Vault reference in app settings.</summary>
    [Required]
    public string Key { get; set; } = "";
}
