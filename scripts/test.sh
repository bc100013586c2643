#!/usr/bin/env bash
# The whole test suite: dependencies, MariaDB, then every package with the
# race detector (the fuzz targets run their seed corpora as tests).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh test
if [ -z "${MOGILEFS_TEST_MYSQL_DSN:-}" ]; then
	MOGILEFS_TEST_MYSQL_DSN=$(bash scripts/mariadb.sh)
	export MOGILEFS_TEST_MYSQL_DSN
fi
echo "MariaDB for tests: $MOGILEFS_TEST_MYSQL_DSN"
go vet ./...
go test -race -count=1 -timeout 20m ${TESTFLAGS:-} ./...
