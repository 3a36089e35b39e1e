// Parameters of main.bicep: az deployment group create -g <group> -f infra/azure/main.bicep -p infra/azure/main.bicepparam
// The two secrets come from the environment of the shell that deploys, never from this file:
//   export TENANTDB_SECRETS_KEY=$(head -c 32 /dev/urandom | base64)
//   export TENANTDB_CALLBACKS_KEY=$(head -c 32 /dev/urandom | base64)   (signs tenant callbacks; callers verify with it)
//   export TENANTDB_CATALOG_PASSWORD=$(head -c 24 /dev/urandom | base64 | tr -d '/+=')
// The secrets key is made once: every later deployment passes the same key (az keyvault secret show ... -n secrets-key),
// or the catalog's secrets can no longer be read. Change keys only as the README's "Rotating the secrets key" says.
using './main.bicep'

param namePrefix = 'tenantdb'
param planSku = 'EP1'
param minimumInstances = 1
param secretsKey = readEnvironmentVariable('TENANTDB_SECRETS_KEY')
param callbacksKey = readEnvironmentVariable('TENANTDB_CALLBACKS_KEY')
param catalogAdminLogin = 'tenantdb'
param catalogAdminPassword = readEnvironmentVariable('TENANTDB_CATALOG_PASSWORD')
param catalogSkuName = 'Standard_B1ms'
param catalogSkuTier = 'Burstable'
param provisioningDriver = 'registered'
param dockerEndpoint = ''
param publicBaseUrl = ''
param inlinePassword = false
