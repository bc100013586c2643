package conffile

import (
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

func TestParseAndApply(t *testing.T) {
	in := `# mogilefsd.conf
db_dsn = DBI:mysql:mogilefs:host=10.0.0.5
db_user mogile
listen = 127.0.0.1:7001

daemonize
node_timeout=5
plugin_thing = x
`
	entries, err := Parse(strings.NewReader(in), "test.conf")
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 6 || entries[0].Value != "DBI:mysql:mogilefs:host=10.0.0.5" || entries[1].Value != "mogile" || entries[3].Value != "1" {
		t.Fatalf("entries = %+v", entries)
	}
	fs := pflag.NewFlagSet("x", pflag.ContinueOnError)
	dsn := fs.String("dsn", "", "")
	user := fs.String("dbuser", "", "")
	listen := fs.StringSlice("listen", nil, "")
	timeout := fs.Int("node_timeout", 2, "")
	daemon := fs.Bool("daemonize", false, "")
	fs.Parse([]string{"--dbuser=cli"})
	unknown, err := Apply(fs, entries, map[string]string{"db_dsn": "dsn", "db_user": "dbuser"})
	if err != nil {
		t.Fatal(err)
	}
	if *dsn != "DBI:mysql:mogilefs:host=10.0.0.5" || *user != "cli" || len(*listen) != 1 || *timeout != 5 || !*daemon {
		t.Errorf("applied: dsn=%q user=%q listen=%v timeout=%d daemon=%v", *dsn, *user, *listen, *timeout, *daemon)
	}
	if len(unknown) != 1 || unknown[0].Key != "plugin_thing" {
		t.Errorf("unknown = %+v", unknown)
	}
	if _, err := Parse(strings.NewReader("= nothing\n"), "bad.conf"); err == nil {
		t.Error("bad line accepted")
	}
}
