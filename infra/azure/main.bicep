// The allocator on Azure: a Function App (.NET 10 isolated worker, Linux Elastic Premium plan), its task hub's storage
// account (reached with a user-assigned managed identity), the catalog on Azure Database for PostgreSQL flexible server,
// Key Vault holding the secrets key and the catalog connection string (Key Vault references in the app settings), and
// Application Insights.
//
//   az group create -n tenantdb -l westeurope
//   TENANTDB_SECRETS_KEY=$(head -c 32 /dev/urandom | base64) TENANTDB_CATALOG_PASSWORD=$(head -c 24 /dev/urandom | base64 | tr -d '/+=') \
//     az deployment group create -g tenantdb -f infra/azure/main.bicep -p infra/azure/main.bicepparam
//   cd Functions && func azure functionapp publish <the functionAppName output>
//
// The app settings below are the app's settings one to one: every key an options class binds (with its default unless a
// parameter sets it) and nothing else but the host's own settings. Functions.Tests (Deploy/AppSettingsTests) reads this
// file's text and compares both ways, so keep the appSettings block in its shape: one `{ name: '…', value: … }` per line.

@description('Prefix of every resource name (lower-case letters and digits).')
@minLength(3)
@maxLength(11)
param namePrefix string = 'tenantdb'

param location string = resourceGroup().location

@description('Elastic Premium plan size: EP1, EP2 or EP3.')
@allowed(['EP1', 'EP2', 'EP3'])
param planSku string = 'EP1'

@description('Instances kept warm (no cold start for an allocate).')
@minValue(1)
@maxValue(20)
param minimumInstances int = 1

@description('Base64 of 32 random bytes: the key of secrets at rest (Secrets:Key). Stored in Key Vault only.')
@secure()
param secretsKey string

@description('Base64 of 32 random bytes: the key that signs tenant callbacks (Callbacks:Key, HMAC-SHA256). Stored in Key Vault only. Empty: no callbacks are sent.')
@secure()
param callbacksKey string

@description('Administrator login of the catalog server.')
param catalogAdminLogin string = 'tenantdb'

@description('Administrator password of the catalog server. Stored in Key Vault (inside the catalog connection string) only.')
@secure()
param catalogAdminPassword string

@description('Catalog server size (Burstable B1ms is enough for the catalog; pools are separate servers).')
param catalogSkuName string = 'Standard_B1ms'
param catalogSkuTier string = 'Burstable'

@description('Pool driver in Azure (Provisioning:Driver): registered (servers an operator registers) or swarm/docker with Provisioning__Docker__Endpoint pointing at a reachable engine.')
@allowed(['registered', 'swarm', 'docker'])
param provisioningDriver string = 'registered'

@description('Docker engine endpoint for the swarm or docker driver (Provisioning:Docker:Endpoint); empty with the registered driver.')
param dockerEndpoint string = ''

@description('Where callers reach the app, without /api (Api:PublicBaseUrl); empty: https://<the app\'s host name>.')
param publicBaseUrl string = ''

@description('Answer db_password inline (Allocation:InlinePassword), the platform\'s earlier contract.')
param inlinePassword bool = false

var suffix = uniqueString(resourceGroup().id)
var storageName = toLower('${namePrefix}${take(suffix, 13)}')
var functionAppName = '${namePrefix}-${suffix}'

// Built-in role definition ids.
var roles = {
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
  storageQueueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
  keyVaultSecretsUser: '4633458b-17de-408a-b874-0445c86b69e6'
}

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: '${namePrefix}-identity'
  location: location
}

// ---- the task hub's storage (Durable Functions, timers, the host's keys) ----
resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: storageName
  location: location
  kind: 'StorageV2'
  sku: { name: 'Standard_LRS' }
  properties: {
    minimumTlsVersion: 'TLS1_2'
    allowBlobPublicAccess: false
    supportsHttpsTrafficOnly: true
    // The Elastic Premium plan's content share (Azure Files) takes only a key-based connection string; the task hub
    // itself (AzureWebJobsStorage) is reached with the managed identity.
    allowSharedKeyAccess: true
  }
}

resource storageRoles 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for role in [roles.storageBlobDataOwner, roles.storageQueueDataContributor, roles.storageTableDataContributor]: {
  name: guid(storage.id, identity.id, role)
  scope: storage
  properties: {
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', role)
  }
}]

// ---- telemetry ----
resource logs 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: '${namePrefix}-logs'
  location: location
  properties: {
    sku: { name: 'PerGB2018' }
    retentionInDays: 30
  }
}

resource insights 'Microsoft.Insights/components@2020-02-02' = {
  name: '${namePrefix}-insights'
  location: location
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: logs.id
  }
}

// ---- the catalog ----
resource catalogServer 'Microsoft.DBforPostgreSQL/flexibleServers@2024-08-01' = {
  name: '${namePrefix}-catalog-${suffix}'
  location: location
  sku: {
    name: catalogSkuName
    tier: catalogSkuTier
  }
  properties: {
    version: '16'
    administratorLogin: catalogAdminLogin
    administratorLoginPassword: catalogAdminPassword
    storage: { storageSizeGB: 32 }
    backup: {
      backupRetentionDays: 7
      geoRedundantBackup: 'Disabled'
    }
    highAvailability: { mode: 'Disabled' }
  }
}

resource catalogDatabase 'Microsoft.DBforPostgreSQL/flexibleServers/databases@2024-08-01' = {
  parent: catalogServer
  name: 'tenantdb_catalog'
  properties: {
    charset: 'UTF8'
    collation: 'en_US.utf8'
  }
}

// Azure services only (the Function App's outbound addresses are Azure's); no address outside Azure.
resource catalogFirewall 'Microsoft.DBforPostgreSQL/flexibleServers/firewallRules@2024-08-01' = {
  parent: catalogServer
  name: 'AllowAzureServices'
  properties: {
    startIpAddress: '0.0.0.0'
    endIpAddress: '0.0.0.0'
  }
}

// ---- secrets ----
resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: '${namePrefix}-kv-${take(suffix, 8)}'
  location: location
  properties: {
    tenantId: subscription().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 90
    enablePurgeProtection: true
  }
}

resource secretsKeySecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  parent: vault
  name: 'secrets-key'
  properties: { value: secretsKey }
}

resource callbacksKeySecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  parent: vault
  name: 'callbacks-key'
  properties: { value: callbacksKey }
}

resource catalogConnectionSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  parent: vault
  name: 'catalog-connection'
  properties: {
    value: 'Host=${catalogServer.properties.fullyQualifiedDomainName};Port=5432;Username=${catalogAdminLogin};Password=${catalogAdminPassword};Database=${catalogDatabase.name};SSL Mode=Require;Maximum Pool Size=40'
  }
}

resource vaultRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, identity.id, roles.keyVaultSecretsUser)
  scope: vault
  properties: {
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsUser)
  }
}

// ---- the Function App ----
resource plan 'Microsoft.Web/serverfarms@2023-12-01' = {
  name: '${namePrefix}-plan'
  location: location
  kind: 'elastic'
  sku: {
    name: planSku
    tier: 'ElasticPremium'
  }
  properties: {
    reserved: true // Linux
    maximumElasticWorkerCount: 20
  }
}

resource functionApp 'Microsoft.Web/sites@2023-12-01' = {
  name: functionAppName
  location: location
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: { '${identity.id}': {} }
  }
  dependsOn: [storageRoles, vaultRole, secretsKeySecret, callbacksKeySecret, catalogConnectionSecret]
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    keyVaultReferenceIdentity: identity.id
    siteConfig: {
      linuxFxVersion: 'DOTNET-ISOLATED|10.0'
      minimumElasticInstanceCount: minimumInstances
      ftpsState: 'Disabled'
      minTlsVersion: '1.2'
      appSettings: [
        // -- the host's own settings (allow-listed in AppSettingsTests: no options class binds them) --
        { name: 'FUNCTIONS_EXTENSION_VERSION', value: '~4' }
        { name: 'FUNCTIONS_WORKER_RUNTIME', value: 'dotnet-isolated' }
        { name: 'AzureWebJobsStorage__accountName', value: storage.name }
        { name: 'AzureWebJobsStorage__credential', value: 'managedidentity' }
        { name: 'AzureWebJobsStorage__clientId', value: identity.properties.clientId }
        { name: 'WEBSITE_CONTENTAZUREFILECONNECTIONSTRING', value: 'DefaultEndpointsProtocol=https;AccountName=${storage.name};EndpointSuffix=${environment().suffixes.storage};AccountKey=${storage.listKeys().keys[0].value}' }
        { name: 'WEBSITE_CONTENTSHARE', value: toLower(functionAppName) }
        // -- settings the app reads outside an options class (Functions/Telemetry/TelemetryRegistration.cs) --
        { name: 'APPLICATIONINSIGHTS_CONNECTION_STRING', value: insights.properties.ConnectionString }
        { name: 'OTEL_EXPORTER_OTLP_ENDPOINT', value: '' }
        // -- TelemetryOptions: a gauge series per tenant only when opted in (cardinality) --
        { name: 'Telemetry__PerTenantMetrics', value: 'false' }
        // -- the catalog (CatalogOptions: ConnectionStrings:Catalog) and the secrets key: Key Vault references --
        { name: 'ConnectionStrings__Catalog', value: '@Microsoft.KeyVault(SecretUri=${catalogConnectionSecret.properties.secretUri})' }
        { name: 'Secrets__Key', value: '@Microsoft.KeyVault(SecretUri=${secretsKeySecret.properties.secretUri})' }
        { name: 'Secrets__CurrentKeyId', value: '' }
        { name: 'Secrets__RewrapBatchSize', value: '100' }
        // -- Api --
        { name: 'Api__PublicBaseUrl', value: publicBaseUrl }
        { name: 'Api__AllowLoopbackCallbacks', value: 'false' }
        // -- Callbacks (the signing key: a Key Vault reference) --
        { name: 'Callbacks__Key', value: '@Microsoft.KeyVault(SecretUri=${callbacksKeySecret.properties.secretUri})' }
        { name: 'Callbacks__Timeout', value: '00:00:05' }
        { name: 'Callbacks__Attempts', value: '3' }
        { name: 'Callbacks__Backoff', value: '00:00:01' }
        // -- Allocation --
        { name: 'Allocation__Strategy', value: 'FillFirst' }
        { name: 'Allocation__DatabasePrefix', value: 'odoo_' }
        { name: 'Allocation__PasswordLength', value: '40' }
        { name: 'Allocation__InlinePassword', value: string(inlinePassword) }
        { name: 'Allocation__ReleaseRetention', value: '7.00:00:00' }
        { name: 'Allocation__DuplicateWait', value: '00:00:10' }
        { name: 'Allocation__WaitForCapacityTimeout', value: '00:30:00' }
        { name: 'Allocation__WaitPollInterval', value: '00:00:05' }
        { name: 'Allocation__RetryAfterSeconds', value: '10' }
        { name: 'Allocation__StaleCreatingAfter', value: '00:10:00' }
        { name: 'Allocation__MaxPlacementAttempts', value: '3' }
        // -- Pools (the plan tiers as the code's defaults, so they can be changed here) --
        { name: 'Pools__Shared__Cpu', value: '2' }
        { name: 'Pools__Shared__Memory', value: '4g' }
        { name: 'Pools__Shared__MaxInstances', value: '50' }
        { name: 'Pools__Shared__StorageBudgetGb', value: '100' }
        { name: 'Pools__MinFreeSlots', value: '5' }
        { name: 'Pools__WarmStock', value: '2' }
        { name: 'Pools__WarmStockInterval', value: '00:00:30' }
        { name: 'Pools__EvacuateParallelism', value: '4' }
        { name: 'Pools__UnhealthyAfterFailures', value: '3' }
        { name: 'Pools__ConnectTimeoutSeconds', value: '15' }
        { name: 'Pools__MaxAdminConnections', value: '10' }
        { name: 'Pools__QuotaWarnAt', value: '80' }
        { name: 'Pools__Tiers__starter__MaxSizeMb', value: '1024' }
        { name: 'Pools__Tiers__starter__MaxConnections', value: '20' }
        { name: 'Pools__Tiers__standard__MaxSizeMb', value: '10240' }
        { name: 'Pools__Tiers__standard__MaxConnections', value: '40' }
        { name: 'Pools__Tiers__professional__MaxSizeMb', value: '51200' }
        { name: 'Pools__Tiers__professional__MaxConnections', value: '60' }
        { name: 'Pools__Tiers__premium__Dedicated', value: 'true' }
        { name: 'Pools__Tiers__premium__MaxConnections', value: '100' }
        { name: 'Pools__Tiers__premium__Cpu', value: '2' }
        { name: 'Pools__Tiers__premium__Memory', value: '4g' }
        { name: 'Pools__Tiers__premium__MaxInstances', value: '1' }
        { name: 'Pools__Tiers__premium__BackupEvery', value: '1.00:00:00' }
        { name: 'Pools__Tiers__premium__BackupRetention', value: '35.00:00:00' }
        { name: 'Pools__Tiers__enterprise__Dedicated', value: 'true' }
        { name: 'Pools__Tiers__enterprise__MaxConnections', value: '200' }
        { name: 'Pools__Tiers__enterprise__Cpu', value: '4' }
        { name: 'Pools__Tiers__enterprise__Memory', value: '8g' }
        // -- Provisioning --
        { name: 'Provisioning__Driver', value: provisioningDriver }
        { name: 'Provisioning__Owner', value: 'tenantdb-allocator' }
        { name: 'Provisioning__AdminUser', value: 'tenantdb_admin' }
        { name: 'Provisioning__ServerSettings__max_connections', value: '200' }
        { name: 'Provisioning__CreateAttempts', value: '4' }
        { name: 'Provisioning__FirstRetryInterval', value: '00:00:05' }
        { name: 'Provisioning__MaxServers', value: '100' }
        { name: 'Provisioning__MaxSharedFailedPools', value: '3' }
        { name: 'Provisioning__MaxDedicatedAttempts', value: '3' }
        { name: 'Provisioning__ReadyPollInterval', value: '00:00:02' }
        { name: 'Provisioning__ProbeTimeout', value: '00:00:03' }
        { name: 'Provisioning__ReadyTimeout', value: '00:05:00' }
        { name: 'Provisioning__Process__BinDir', value: '' }
        { name: 'Provisioning__Process__DataRoot', value: '/var/lib/tenantdb/pools' }
        { name: 'Provisioning__Docker__Endpoint', value: dockerEndpoint }
        { name: 'Provisioning__Docker__Image', value: 'postgres:16-alpine' }
        { name: 'Provisioning__Docker__NetworkMode', value: 'bridge' }
        { name: 'Provisioning__Swarm__Mode', value: 'host' }
        { name: 'Provisioning__Swarm__PlacementConstraint', value: 'node.labels.role==database' }
        { name: 'Provisioning__Swarm__Network', value: 'host' }
        { name: 'Provisioning__Swarm__HostNetworkAddress', value: '127.0.0.1' }
        { name: 'Provisioning__Swarm__StorageRoot', value: '' }
        { name: 'Provisioning__Swarm__SharedStorage', value: 'false' }
        // -- Handoff --
        { name: 'Handoff__Ttl', value: '01:00:00' }
        { name: 'Handoff__ClaimWait', value: '00:00:10' }
        { name: 'Handoff__ClaimRetryInterval', value: '00:00:00.250' }
        { name: 'Handoff__ClaimTimeout', value: '00:00:30' }
        { name: 'Handoff__RotationGrace', value: '01:00:00' }
        { name: 'Handoff__RotationTimeout', value: '00:02:00' }
        { name: 'Handoff__DepositGrace', value: '00:06:00' }
        { name: 'Handoff__StorageTimeout', value: '00:00:15' }
        { name: 'Handoff__ClaimReplayWindow', value: '00:05:00' }
        // -- Sweep, Cleanup, Healthz --
        { name: 'Sweep__Schedule', value: '0 */5 * * * *' }
        { name: 'Sweep__CleanupSchedule', value: '0 0 3 * * *' }
        { name: 'Sweep__MaxParallelism', value: '4' }
        { name: 'Sweep__ProbeTimeout', value: '00:00:05' }
        { name: 'Sweep__ProvisioningStuckAfter', value: '01:00:00' }
        { name: 'Sweep__ErrorPoolRetention', value: '1.00:00:00' }
        { name: 'Sweep__HistoryRetention', value: '7.00:00:00' }
        { name: 'Usage__HistoryRetention', value: '30.00:00:00' }
        { name: 'Cleanup__OrphanGrace', value: '7.00:00:00' }
        { name: 'Cleanup__EventRetention', value: '400.00:00:00' }
        { name: 'Backups__Container', value: 'tenantdb-backups' }
        { name: 'Backups__Retention', value: '30.00:00:00' }
        { name: 'Backups__FinalOnRelease', value: 'true' }
        { name: 'Backups__FinalStartTimeout', value: '00:00:05' }
        { name: 'Backups__AbandonedAfter', value: '06:00:00' }
        { name: 'Backups__ScheduleBatch', value: '50' }
        { name: 'Backups__ExpiryBatch', value: '1000' }
        { name: 'Healthz__Timeout', value: '00:00:03' }
      ]
    }
  }
}

output functionAppName string = functionApp.name
output functionAppUrl string = 'https://${functionApp.properties.defaultHostName}'
output keyVaultName string = vault.name
output catalogHost string = catalogServer.properties.fullyQualifiedDomainName
