using Npgsql;

namespace TenantDb.Functions.Catalog;

/// <summary>
/// The id this catalog was given once, at migration (DESIGN §8.2). Every server it makes carries it, so a server is this
/// catalog's orphan only if it carries this id; read once per process (it never changes).
/// </summary>
public sealed class CatalogIdentity(NpgsqlDataSource catalog)
{
    private readonly SemaphoreSlim _gate = new(1, 1);
    private Guid? _id;

    public async Task<Guid> GetAsync(CancellationToken ct)
    {
        if (_id is { } known)
        {
            return known;
        }

        await _gate.WaitAsync(ct);
        try
        {
            if (_id is null)
            {
                await using var cmd = catalog.CreateCommand("SELECT id FROM catalog_identity");
                _id = (Guid)(await cmd.ExecuteScalarAsync(ct) ?? throw new InvalidOperationException("The catalog has no identity; it is not migrated."));
            }

            return _id.Value;
        }
        finally
        {
            _gate.Release();
        }
    }
}
