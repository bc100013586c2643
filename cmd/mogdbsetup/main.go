// Command mogdbsetup makes or upgrades a MogileFS database, with the
// original mogdbsetup's options: for MySQL/MariaDB it creates the
// database and the trackers' user when that user cannot use it yet (as
// the administrator), then sets up schema 17 and mogilefs-go's extension
// tables; for SQLite, --dbname is the database file. It is idempotent.
package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/pflag"

	"github.com/mogilefs-go/mogilefs-go/core/logging"
	"github.com/mogilefs-go/mogilefs-go/core/store"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "mogdbsetup:", err)
		os.Exit(1)
	}
}

func run() error {
	fs := pflag.NewFlagSet("mogdbsetup", pflag.ContinueOnError)
	var b store.Bootstrap
	fs.StringVar(&b.Host, "dbhost", "localhost", "MySQL server host")
	fs.IntVar(&b.Port, "dbport", 3306, "MySQL server port")
	fs.StringVar(&b.Name, "dbname", "mogilefs", "database to create or upgrade (SQLite: the database file)")
	fs.StringVar(&b.RootUser, "dbrootuser", "root", "MySQL administrator, needed only when the database or user is missing")
	fs.StringVar(&b.RootPass, "dbrootpassword", "", "the administrator's password")
	fs.StringVar(&b.User, "dbuser", "mogile", "the user the trackers connect as (created when missing)")
	fs.StringVar(&b.Pass, "dbpassword", "", "that user's password")
	typ := fs.String("type", "MySQL", "MySQL (also MariaDB) or SQLite")
	yes := fs.Bool("yes", false, "run without questions")
	verbose := fs.Bool("verbose", false, "say what is done")
	noBump := fs.Bool("noschemabump", false, "refused: this mogdbsetup sets up schema 17 only")
	// The original's usage text names these spellings too.
	fs.StringVar(&b.RootPass, "dbrootpass", "", "same as --dbrootpassword")
	fs.StringVar(&b.Pass, "dbpass", "", "same as --dbpassword")
	fs.MarkHidden("dbrootpass")
	fs.MarkHidden("dbpass")
	if err := fs.Parse(os.Args[1:]); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return nil
		}
		return err
	}
	if *noBump {
		return fmt.Errorf("--noschemabump is not supported: this mogdbsetup sets up schema 17 and records it")
	}
	level := "warn"
	if *verbose {
		level = "info"
	}
	log := logging.New(os.Stderr, level)
	if !*yes && !confirm("This sets up or upgrades your MogileFS database; it destroys no data. Continue?") {
		return errors.New("stopped")
	}
	ctx := context.Background()
	switch strings.ToLower(*typ) {
	case "mysql", "mariadb":
		if err := store.SetupMySQL(ctx, b, log); err != nil {
			return err
		}
	case "sqlite":
		s, err := store.Open(ctx, store.Config{DSN: "sqlite:" + b.Name, Logger: log})
		if err != nil {
			return err
		}
		defer s.Close()
		if err := s.Setup(ctx); err != nil {
			return err
		}
	default:
		return fmt.Errorf("--type=%s: MySQL or SQLite (PostgreSQL is not supported)", *typ)
	}
	if *verbose {
		fmt.Fprintln(os.Stderr, "Done.")
	}
	return nil
}

// confirm asks a yes/no question on the terminal; no answer is no.
func confirm(q string) bool {
	fmt.Printf("%s [N/y]: ", q)
	ans, _ := bufio.NewReader(os.Stdin).ReadString('\n')
	return strings.HasPrefix(strings.ToLower(strings.TrimSpace(ans)), "y")
}
