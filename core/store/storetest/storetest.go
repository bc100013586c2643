// Package storetest gives tests a fresh metadata database on every backend
// this machine has: SQLite always, MySQL/MariaDB when MOGILEFS_TEST_MYSQL_DSN
// is set.
package storetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"

	"github.com/go-sql-driver/mysql"

	"github.com/mogilefs-go/mogilefs-go/core/store"
)

// MySQLEnv names the environment variable that points tests at a
// MySQL/MariaDB server: a github.com/go-sql-driver/mysql DSN without a
// database name, e.g. "mogtest:mogtest@tcp(127.0.0.1:3306)/". The user
// must be allowed to create and drop databases.
const MySQLEnv = "MOGILEFS_TEST_MYSQL_DSN"

// DSNs returns a DSN for each backend a test should run against: a
// fresh SQLite file always, and a fresh MySQL database when MySQLEnv
// is set. Databases are dropped when the test ends.
func DSNs(tb testing.TB) map[store.Kind]string {
	tb.Helper()
	out := map[store.Kind]string{store.SQLite: "DBI:SQLite:dbname=" + filepath.Join(tb.TempDir(), "mogilefs.db")}
	if dsn := os.Getenv(MySQLEnv); dsn != "" {
		out[store.MySQL] = NewMySQLDatabase(tb, dsn)
	}
	return out
}

// NewMySQLDatabase creates an empty database on the server of dsn,
// drops it at the end of the test, and returns a store DSN for it.
func NewMySQLDatabase(tb testing.TB, dsn string) string {
	tb.Helper()
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		tb.Fatalf("%s: %v", MySQLEnv, err)
	}
	cfg.DBName = ""
	admin, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		tb.Fatalf("open MySQL: %v", err)
	}
	var rnd [6]byte
	rand.Read(rnd[:])
	name := "mogtest_" + hex.EncodeToString(rnd[:])
	if _, err := admin.Exec("CREATE DATABASE " + name); err != nil {
		admin.Close()
		tb.Fatalf("create test database (is MariaDB running and %s right?): %v", MySQLEnv, err)
	}
	tb.Cleanup(func() {
		admin.ExecContext(context.Background(), "DROP DATABASE "+name)
		admin.Close()
	})
	cfg.DBName = name
	return "mysql:" + cfg.FormatDSN()
}
