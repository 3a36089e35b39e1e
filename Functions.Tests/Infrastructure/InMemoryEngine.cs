using Microsoft.AspNetCore.Connections;
using Microsoft.DurableTask;
using Microsoft.DurableTask.Testing;

namespace TenantDb.Functions.Tests.Infrastructure;

/// <summary>The in-memory Durable engine; it takes a free port that another test's server may grab first, so binding is retried.</summary>
public static class InMemoryEngine
{
    public static async Task<DurableTaskTestHost> StartAsync(Action<DurableTaskRegistry> registry)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await DurableTaskTestHost.StartAsync(registry);
            }
            catch (IOException e) when (e.InnerException is AddressInUseException && attempt < 5)
            {
                // Another server took the port between its choice and its bind; choose again.
            }
        }
    }
}
