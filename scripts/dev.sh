#!/usr/bin/env bash
# One command from a fresh Debian 12 machine to a running geoledgerd:
# installs what is missing, builds, and starts the service on its embedded
# default (RocksDB under ./data, development keys generated on first start).
#   GEOLEDGER_DATA_DIR  data directory      (default: ./data)
#   GEOLEDGER_LISTEN    HOST:PORT           (default: 127.0.0.1:8080)
#   GEOLEDGER_REGION    this region's id    (default: eu-west-1)
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build --target geoledgerd geoledger

DATA_DIR="${GEOLEDGER_DATA_DIR:-$PWD/data}"
LISTEN="${GEOLEDGER_LISTEN:-127.0.0.1:8080}"
REGION="${GEOLEDGER_REGION:-eu-west-1}"
echo "dev: starting geoledgerd on $LISTEN (region $REGION, data in $DATA_DIR); Ctrl-C stops it"
echo "dev: admin token: $DATA_DIR/admin.token (written on first start)"
# The flags win over any GEOLEDGER_* variable the daemon would also read.
exec build/server/geoledgerd --dev --data-dir "$DATA_DIR" --listen "$LISTEN" --region "$REGION" "$@"
