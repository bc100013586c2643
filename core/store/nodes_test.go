package store_test

import (
	"context"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/mogilefs-go/mogilefs-go/core/store"
	"github.com/mogilefs-go/mogilefs-go/core/store/storetest"
)

// Both DSN forms may name several servers.
func TestDSNWithSeveralServers(t *testing.T) {
	for _, tt := range []struct{ dsn, want string }{
		{"DBI:mysql:mogilefs:host=db1,db2, db3;port=3307", "db1:3307,db2:3307,db3:3307"},
		{"mysql:mog@tcp(db1:3306,db2:3306)/mogilefs", "db1:3306,db2:3306"},
		{"DBI:mysql:mogilefs:host=db1", "db1:3306"},
	} {
		kind, dsn, err := store.ParseDSN(tt.dsn, "mog", "")
		if err != nil || kind != store.MySQL {
			t.Fatalf("ParseDSN(%q) = %v, %v", tt.dsn, kind, err)
		}
		if !strings.Contains(dsn, "tcp("+tt.want+")/mogilefs") {
			t.Errorf("ParseDSN(%q) = %q; want the servers %s", tt.dsn, dsn, tt.want)
		}
	}
}

// A store whose first server is down opens on the next one, and keeps
// going there.
func TestStoreSkipsADeadServer(t *testing.T) {
	if os.Getenv(storetest.MySQLEnv) == "" {
		t.Skip("no " + storetest.MySQLEnv)
	}
	dsn := strings.TrimPrefix(storetest.NewMySQLDatabase(t, os.Getenv(storetest.MySQLEnv)), "mysql:")
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0") // a port that refuses: listen, then close
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	two := strings.Replace(cfg.FormatDSN(), "tcp("+cfg.Addr+")", "tcp("+dead+","+cfg.Addr+")", 1)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := store.Open(ctx, store.Config{DSN: "mysql:" + two})
	if err != nil {
		t.Fatalf("open with %s dead first: %v", dead, err)
	}
	defer st.Close()
	for i := 0; i < 20; i++ {
		if _, err := st.CreateDomain(ctx, "d"+strings.Repeat("x", i)); err != nil {
			t.Fatal(err)
		}
	}
	doms, err := st.Domains(ctx)
	if err != nil || len(doms) != 20 {
		t.Errorf("Domains = %d, %v", len(doms), err)
	}
}
