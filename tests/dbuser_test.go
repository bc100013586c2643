package tests

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"

	"github.com/mogilefs-go/mogilefs-go/core/client"
	"github.com/mogilefs-go/mogilefs-go/core/clustertest"
	"github.com/mogilefs-go/mogilefs-go/core/protocol"
	"github.com/mogilefs-go/mogilefs-go/core/store"
	"github.com/mogilefs-go/mogilefs-go/core/store/storetest"
)

// The original runs with a database user that may only SELECT, INSERT,
// UPDATE and DELETE. Our tracker starts with one too, on a database with
// the extension tables and on one without them (made by the original);
// without them it keeps no metadata and says so, and setup-db (Setup)
// with a user that may create tables adds them.
func TestTrackerWithDMLOnlyUser(t *testing.T) {
	env := os.Getenv(storetest.MySQLEnv)
	if env == "" {
		t.Skip(storetest.MySQLEnv + " not set")
	}
	ctx := context.Background()
	for _, withExtensions := range []bool{true, false} {
		admin, root, dmlDSN := dmlOnlyDatabase(t, env)
		if !withExtensions {
			for _, table := range []string{"file_meta", "queue_claim"} { // as a database made by the original
				if _, err := root.Exec("DROP TABLE " + table); err != nil {
					t.Fatal(err)
				}
			}
		}
		c := clustertest.Start(t, clustertest.Options{DSN: dmlDSN, Domain: "d"})
		if c.Store.HasMeta() != withExtensions {
			t.Fatalf("extension tables %v: HasMeta = %v", withExtensions, c.Store.HasMeta())
		}
		n, err := c.Client.Upload(ctx, "d", "k", "", strings.NewReader("hello"), 5, client.UploadOptions{Meta: map[string]string{"mtime": "1"}})
		if err != nil || n != 5 {
			t.Fatalf("upload with a DML-only user (extensions %v): %d, %v", withExtensions, n, err)
		}
		_, err = c.Do("plugin_meta_set", protocol.Args{"domain": "d", "key": "k", "plugin.meta.keys": "1", "plugin.meta.key0": "a", "plugin.meta.value0": "b"})
		switch {
		case withExtensions && err != nil:
			t.Errorf("plugin_meta_set with the extension tables: %v", err)
		case !withExtensions && (err == nil || !strings.Contains(err.Error(), "unknown_command")):
			t.Errorf("plugin_meta_set without the extension tables: %v; want unknown_command", err)
		}
		if withExtensions {
			continue
		}
		// setup-db with a user that may create tables adds them back.
		if err := admin.Setup(ctx); err != nil || !admin.HasMeta() {
			t.Fatalf("Setup = %v (HasMeta %v)", err, admin.HasMeta())
		}
		again, err := store.Open(ctx, store.Config{DSN: dmlDSN})
		if err != nil {
			t.Fatal(err)
		}
		if !again.HasMeta() {
			t.Error("after setup-db the DML-only user does not see the extension table")
		}
		again.Close()
	}
}

// dmlOnlyDatabase makes a fresh database with the schema and a user that
// may only SELECT, INSERT, UPDATE and DELETE in it; it returns a store
// of the admin user, a connection of it, and the DSN of the DML user.
func dmlOnlyDatabase(t *testing.T, env string) (*store.Store, *sql.DB, string) {
	t.Helper()
	dsn := storetest.NewMySQLDatabase(t, env)
	admin, err := store.Open(context.Background(), store.Config{DSN: dsn})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close() })
	cfg, err := mysql.ParseDSN(strings.TrimPrefix(dsn, "mysql:"))
	if err != nil {
		t.Fatal(err)
	}
	root, err := sql.Open("mysql", strings.TrimPrefix(dsn, "mysql:"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { root.Close() })
	user := "dml_" + cfg.DBName[len(cfg.DBName)-8:]
	for _, q := range []string{
		"CREATE USER '" + user + "'@'%' IDENTIFIED BY 'pw'",
		"GRANT SELECT, INSERT, UPDATE, DELETE ON " + cfg.DBName + ".* TO '" + user + "'@'%'",
	} {
		if _, err := root.Exec(q); err != nil {
			var me *mysql.MySQLError
			if errors.As(err, &me) && (me.Number == 1044 || me.Number == 1227) {
				t.Skipf("the test database user may not create users and grant (scripts/mariadb.sh makes one that may): %v", err)
			}
			t.Fatalf("%s: %v", q, err)
		}
	}
	t.Cleanup(func() { root.Exec("DROP USER '" + user + "'@'%'") })
	dml := *cfg
	dml.User, dml.Passwd = user, "pw"
	return admin, root, "mysql:" + dml.FormatDSN()
}

// mogdbsetup with the original's options makes the database and the
// trackers' user from the administrator's account, sets the schema up,
// and can be run again.
func TestMogdbsetupMySQL(t *testing.T) {
	env := os.Getenv(storetest.MySQLEnv)
	if env == "" {
		t.Skip(storetest.MySQLEnv + " not set")
	}
	cfg, err := mysql.ParseDSN(env)
	if err != nil {
		t.Fatal(err)
	}
	host, port, _ := strings.Cut(cfg.Addr, ":")
	var rnd [4]byte
	rand.Read(rnd[:])
	name := "mogsetup_" + hex.EncodeToString(rnd[:])
	b := store.Bootstrap{Host: host, Port: atoiOr(port, 3306), Name: name, RootUser: cfg.User, RootPass: cfg.Passwd, User: "u" + name[len(name)-8:], Pass: "secret'pw"}
	root, err := sql.Open("mysql", env)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	t.Cleanup(func() {
		root.Exec("DROP DATABASE IF EXISTS " + name)
		root.Exec("DROP USER IF EXISTS '" + b.User + "'@'%'")
		root.Exec("DROP USER IF EXISTS '" + b.User + "'@'localhost'")
	})
	ctx := context.Background()
	for i := 0; i < 2; i++ {
		if err := store.SetupMySQL(ctx, b, nil); err != nil {
			var me *mysql.MySQLError
			if i == 0 && errors.As(err, &me) && (me.Number == 1044 || me.Number == 1227) {
				t.Skipf("the test database user may not create users and grant: %v", err)
			}
			t.Fatalf("mogdbsetup run %d: %v", i+1, err)
		}
	}
	u := mysql.NewConfig()
	u.User, u.Passwd, u.Net, u.Addr, u.DBName = b.User, b.Pass, "tcp", cfg.Addr, name
	s, err := store.Open(ctx, store.Config{DSN: "mysql:" + u.FormatDSN()})
	if err != nil {
		t.Fatalf("the trackers' user on the new database: %v", err)
	}
	defer s.Close()
	if !s.HasMeta() {
		t.Error("no extension tables after mogdbsetup")
	}
	if v, _, err := s.Setting(ctx, "schema_version"); err != nil || v != "17" {
		t.Errorf("schema_version = %q, %v", v, err)
	}
}

func atoiOr(s string, def int) int {
	if n, err := strconv.Atoi(s); err == nil {
		return n
	}
	return def
}
