using System.Text.Json;
using System.Text.Json.Serialization;

namespace TenantDb.Functions.Domain;

/// <summary>Writes and reads a domain enum as its lower-case word (<c>shared</c>, <c>ready</c>), as SQL and the admin JSON do.</summary>
public sealed class VocabularyJsonConverter<TEnum>() : JsonStringEnumConverter<TEnum>(JsonNamingPolicy.SnakeCaseLower, allowIntegerValues: false)
    where TEnum : struct, Enum;
