#!/usr/bin/env bash
# make bench: a real cluster of the built binaries on loopback, every
# figure beside a baseline measured in the same run. BENCH_JSON=FILE also
# writes the figures as JSON; MOGILEFS_TEST_MYSQL_DSN adds MariaDB figures.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh run
go build -o bin/ ./cmd/mogbench
exec bin/mogbench --bin=bin ${BENCH_ARGS:-}
