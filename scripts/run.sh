#!/usr/bin/env bash
# A local MogileFS cluster on the embedded SQLite store, in the foreground:
# one tracker (127.0.0.1:7001), two storage nodes (127.0.0.1:7500 and
# 127.0.0.2:7500, side channel :7501) with one device each, a domain
# "files" whose default class keeps 2 copies, and the cluster mounted at
# $MOUNTPOINT (default /mnt/mogile as root, else ./tmp/cluster/mnt).
# Data lives in $RUNDIR (default ./tmp/cluster) and survives restarts.
# Ctrl-C stops everything and unmounts.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh run
RUNDIR=${RUNDIR:-$PWD/tmp/cluster}
if [ "$(id -u)" = 0 ]; then MOUNTPOINT=${MOUNTPOINT:-/mnt/mogile}; else MOUNTPOINT=${MOUNTPOINT:-$RUNDIR/mnt}; fi
TRACKER=127.0.0.1:7001
BIN=$PWD/bin
# A mount left by a killed run answers "Transport endpoint is not
# connected": clear it first.
if ! stat "$MOUNTPOINT" >/dev/null 2>&1 && [ -n "$(grep -F " $MOUNTPOINT " /proc/self/mountinfo 2>/dev/null)" ]; then
	echo "clearing a stale mount at $MOUNTPOINT"
	fusermount3 -uz "$MOUNTPOINT" 2>/dev/null || umount -l "$MOUNTPOINT" 2>/dev/null || true
fi
mkdir -p "$RUNDIR/node1/dev1" "$RUNDIR/node2/dev2" "$RUNDIR/log" "$MOUNTPOINT"

for addr in 127.0.0.1:7001 127.0.0.1:7500 127.0.0.1:7501 127.0.0.2:7500 127.0.0.2:7501; do
	if (exec 3<>/dev/tcp/${addr%:*}/${addr#*:}) 2>/dev/null; then
		echo "something already listens on $addr: is a cluster already running? Stop it first." >&2
		exit 1
	fi
done

pids=()
cleanup() {
	trap - EXIT INT TERM
	echo
	echo "stopping..."
	if mountpoint -q "$MOUNTPOINT" 2>/dev/null; then fusermount3 -u "$MOUNTPOINT" 2>/dev/null || umount -l "$MOUNTPOINT" 2>/dev/null || true; fi
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

"$BIN/mogstored" --skipconfig --docroot="$RUNDIR/node1" --httplisten=127.0.0.1:7500 --mgmtlisten=127.0.0.1:7501 >>"$RUNDIR/log/mogstored1.log" 2>&1 &
pids+=($!)
"$BIN/mogstored" --skipconfig --docroot="$RUNDIR/node2" --httplisten=127.0.0.2:7500 --mgmtlisten=127.0.0.2:7501 >>"$RUNDIR/log/mogstored2.log" 2>&1 &
pids+=($!)
"$BIN/mogilefsd" --skipconfig --dsn="DBI:SQLite:dbname=$RUNDIR/mogilefs.db" --listen=$TRACKER >>"$RUNDIR/log/mogilefsd.log" 2>&1 &
pids+=($!)

adm() { "$BIN/mogadm" --trackers=$TRACKER "$@"; }
for _ in $(seq 1 50); do adm check >/dev/null 2>&1 && break; sleep 0.2; done
adm host list | grep -q '^node1 ' || adm host add node1 --ip=127.0.0.1 --port=7500 --status=alive
adm host list | grep -q '^node2 ' || adm host add node2 --ip=127.0.0.2 --port=7500 --status=alive
adm device list | grep -q 'dev1:' || adm device add node1 1
adm device list | grep -q 'dev2:' || adm device add node2 2
adm domain list | grep -q '^ files ' || adm domain add files

if [ -x "$BIN/mogmount" ]; then
	"$BIN/mogmount" --trackers=$TRACKER "$MOUNTPOINT" >>"$RUNDIR/log/mogmount.log" 2>&1 &
	pids+=($!)
	for _ in $(seq 1 50); do mountpoint -q "$MOUNTPOINT" && break; sleep 0.2; done
fi
adm check || true
cat <<MSG

MogileFS is running.
  tracker:   $TRACKER   (mogadm --trackers=$TRACKER check)
  storage:   127.0.0.1:7500, 127.0.0.2:7500   data in $RUNDIR
  domain:    files
  mounted:   $MOUNTPOINT   (try: cp -r /usr/share/common-licenses $MOUNTPOINT/files/ && ls -l $MOUNTPOINT/files/common-licenses)
  logs:      $RUNDIR/log/
Press Ctrl-C to stop.
MSG
wait -n "${pids[@]}" || true
echo "a daemon exited; see $RUNDIR/log/" >&2
