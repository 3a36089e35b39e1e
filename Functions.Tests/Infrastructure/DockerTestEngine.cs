using Docker.DotNet;
using Docker.DotNet.Models;

namespace TenantDb.Functions.Tests.Infrastructure;

/// <summary>
/// The Docker engine the test command started (infra/docker/engine.sh: DOCKER_HOST, a single-node swarm, the local
/// PostgreSQL image). Missing engine = a failing test with the reason, never a skip.
/// </summary>
public static class DockerTestEngine
{
    /// <summary>The tests' <c>tenantdb.owner</c> label: infra/test.sh gives each run its own, so its leftover check finds only that run's objects.</summary>
    public static string Owner { get; } = Environment.GetEnvironmentVariable("TENANTDB_DOCKER_OWNER") is { Length: > 0 } owner ? owner : "tenantdb-tests";

    public static string Image => Environment.GetEnvironmentVariable("TENANTDB_DOCKER_IMAGE") ?? "tenantdb/postgres:15-local";

    public static DockerClient Client()
    {
        var host = Environment.GetEnvironmentVariable("DOCKER_HOST");
        Assert.False(string.IsNullOrEmpty(host),
            "DOCKER_HOST is not set: run the tests through infra/test.sh, which starts the Docker engine (infra/docker/engine.sh start).");
        return new DockerClientConfiguration(new Uri(host!)).CreateClient();
    }

    public static Task<IList<ContainerListResponse>> ContainersWithLabelAsync(DockerClient docker, string label) =>
        docker.Containers.ListContainersAsync(new ContainersListParameters
        {
            All = true,
            Filters = new Dictionary<string, IDictionary<string, bool>> { ["label"] = new Dictionary<string, bool> { [label] = true } },
        });
}
