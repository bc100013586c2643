#!/usr/bin/env bash
# Installs the Debian packages the project needs when they are missing.
# Usage: scripts/deps.sh run|test
set -euo pipefail
need=()
command -v fusermount3 >/dev/null || need+=(fuse3)
command -v rsync >/dev/null || need+=(rsync)
if [ "${1:-run}" = test ]; then
	command -v mysqld_safe >/dev/null || need+=(mariadb-server)
	command -v mysql >/dev/null || need+=(mariadb-client)
	command -v ip >/dev/null || need+=(iproute2)
	command -v python3 >/dev/null || need+=(python3)
	command -v git >/dev/null || need+=(git)
	command -v setfattr >/dev/null || need+=(attr)
	[ -e /usr/lib/galera/libgalera_smm.so ] || need+=(galera-4)
fi
if [ ${#need[@]} -gt 0 ]; then
	if [ "$(id -u)" != 0 ]; then
		echo "missing packages: ${need[*]} (run as root, or: sudo apt-get install -y ${need[*]})" >&2
		exit 1
	fi
	echo "installing ${need[*]} ..."
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq "${need[@]}" >/dev/null
fi
