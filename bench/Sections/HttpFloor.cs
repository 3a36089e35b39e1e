namespace TenantDb.Bench.Sections;

/// <summary>
/// The HTTP floor: what the same LocalHost answers for the cheapest keyed route that reads the catalog
/// (<c>GET /api/database/allocations/{unknown id}</c> → 404 after one look-up), so the allocate rows' HTTP cost can be told
/// apart from the allocation (HTTP allocate − in-process allocate − this = the rest: the JSON body and the credential handoff).
/// </summary>
public sealed class HttpFloor(LocalHostProcess host) : ILoadSection
{
    public string Key => "http_floor";
    public string Title => "HTTP floor (keyed GET, one catalog look-up, 404)";

    public Task PrepareAsync(Load round) => Task.CompletedTask;

    public Task<Samples> RunAsync(Load round) => Latency.SampleAsync(round, async _ =>
    {
        var (status, _) = await host.SendAsync(HttpMethod.Get, $"/api/database/allocations/{Guid.NewGuid():D}");
        return status == 404;
    });
}
