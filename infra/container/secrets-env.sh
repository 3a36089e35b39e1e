#!/bin/sh
# Entry point of the allocator's image: for every variable NAME_FILE whose NAME is an app setting (a configuration key
# with "__", such as Secrets__Key or ConnectionStrings__Catalog, or AzureWebJobsStorage or
# APPLICATIONINSIGHTS_CONNECTION_STRING), export NAME with the content of that file (a Docker secret under /run/secrets;
# one trailing newline dropped), unless NAME is already set; then run the command (the Functions host). Other *_FILE
# variables (SSL_CERT_FILE, ...) are left alone. The values are never printed.
#   AzureWebJobsStorage_FILE=/run/secrets/tenantdb_storage   ->   AzureWebJobsStorage=<the connection string>
set -eu

for pair in $(env | sed -n 's/^\([A-Za-z_][A-Za-z0-9_]*\)_FILE=.*/\1/p'); do
  name=$pair
  case $name in
    *__* | AzureWebJobsStorage | APPLICATIONINSIGHTS_CONNECTION_STRING) ;;
    *) continue ;;
  esac
  eval "file=\${${name}_FILE}"
  eval "already=\${${name}+set}"
  if [ -n "$already" ]; then
    echo "secrets-env: both $name and ${name}_FILE are set; keeping $name" >&2
    continue
  fi
  if [ ! -r "$file" ]; then
    echo "secrets-env: ${name}_FILE names a file that cannot be read: $file" >&2
    exit 64
  fi
  value=$(cat "$file"; printf x)
  value=${value%x}
  value=${value%"
"}
  export "$name=$value"
  unset "${name}_FILE"
done

exec "$@"
