#!/usr/bin/env bash
# Starts MariaDB on 127.0.0.1:3306 if it is not running, creates a test
# user (which may create users and grant, for the tests of restricted
# database users), and prints the DSN for MOGILEFS_TEST_MYSQL_DSN.
set -euo pipefail
if ! mysqladmin --protocol=socket -uroot ping >/dev/null 2>&1; then
	mkdir -p /run/mysqld
	chown mysql:mysql /run/mysqld 2>/dev/null || true
	if [ ! -d /var/lib/mysql/mysql ]; then
		mariadb-install-db --user=mysql --datadir=/var/lib/mysql >/dev/null
	fi
	(mysqld_safe --bind-address=127.0.0.1 --port=3306 >/tmp/mogilefs-mariadb.log 2>&1 &)
	for _ in $(seq 1 60); do
		mysqladmin --protocol=socket -uroot ping >/dev/null 2>&1 && break
		sleep 0.5
	done
fi
mysqladmin --protocol=socket -uroot ping >/dev/null || { echo "MariaDB did not start; see /tmp/mogilefs-mariadb.log" >&2; exit 1; }
mysql --protocol=socket -uroot -e "CREATE USER IF NOT EXISTS 'mogtest'@'127.0.0.1' IDENTIFIED BY 'mogtest';
GRANT ALL PRIVILEGES ON *.* TO 'mogtest'@'127.0.0.1' WITH GRANT OPTION; FLUSH PRIVILEGES;"
echo 'mogtest:mogtest@tcp(127.0.0.1:3306)/'
