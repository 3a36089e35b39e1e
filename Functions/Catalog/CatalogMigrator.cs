using DbUp;
using DbUp.Engine.Output;
using Microsoft.Extensions.Logging;

namespace TenantDb.Functions.Catalog;

/// <summary>Brings the catalog database to the newest schema with DbUp's versioned, journaled migrations.</summary>
public sealed class CatalogMigrator(CatalogOptions options, ILogger<CatalogMigrator> logger)
{
    private readonly TaskCompletionSource _migrated = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Completes once this process has brought the catalog to the newest schema: background work waits for it.</summary>
    public Task Migrated => _migrated.Task;

    public void Migrate()
    {
        EnsureDatabase.For.PostgresqlDatabase(options.ConnectionString, new LoggerLog(logger));
        var upgrader = DeployChanges.To
            .PostgresqlDatabase(options.ConnectionString)
            .WithScriptsEmbeddedInAssembly(typeof(CatalogMigrator).Assembly, name => name.Contains(".Catalog.Migrations.", StringComparison.Ordinal))
            .WithTransactionPerScript()
            .LogTo(new LoggerLog(logger))
            .Build();
        var result = upgrader.PerformUpgrade();
        if (!result.Successful)
        {
            throw new InvalidOperationException($"Catalog migration failed at {result.ErrorScript?.Name}.", result.Error);
        }

        _migrated.TrySetResult();
    }

    private sealed class LoggerLog(ILogger logger) : IUpgradeLog
    {
        public void LogTrace(string format, params object[] args) => logger.LogTrace(format, args);
        public void LogDebug(string format, params object[] args) => logger.LogDebug(format, args);
        public void LogInformation(string format, params object[] args) => logger.LogInformation(format, args);
        public void LogWarning(string format, params object[] args) => logger.LogWarning(format, args);
        public void LogError(string format, params object[] args) => logger.LogError(format, args);
        public void LogError(Exception ex, string format, params object[] args) => logger.LogError(ex, format, args);
    }
}

public sealed class CatalogOptions
{
    public const string ConnectionStringName = "Catalog";

    public required string ConnectionString { get; init; }
}
