package store

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"net"
	"regexp"
	"strconv"

	"github.com/go-sql-driver/mysql"
)

// Bootstrap says where mogdbsetup makes or upgrades a MySQL database:
// the original's options.
type Bootstrap struct {
	Host, Name         string
	Port               int
	RootUser, RootPass string // an administrator, needed only when the database or user is missing
	User, Pass         string // the trackers' user
}

var identRE = regexp.MustCompile(`^[A-Za-z0-9_$-]+$`)

// dsn is a go-sql-driver DSN for user on database db ("" for none).
func (b Bootstrap) dsn(user, pass, db string) string {
	c := mysql.NewConfig()
	c.User, c.Passwd, c.Net, c.DBName = user, pass, "tcp", db
	c.Addr = net.JoinHostPort(b.Host, strconv.Itoa(b.Port))
	return c.FormatDSN()
}

// SetupMySQL is mogdbsetup for MySQL/MariaDB: when the trackers' user
// cannot use the database yet, the administrator creates it and grants
// the user all privileges on it, from anywhere and from localhost (as the
// original does); then the schema is set up or completed as that user.
// It is idempotent.
func SetupMySQL(ctx context.Context, b Bootstrap, log *slog.Logger) error {
	if !identRE.MatchString(b.Name) || !identRE.MatchString(b.User) {
		return fmt.Errorf("store: database and user names may hold letters, digits, _, $ and - only")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := ping(ctx, b.dsn(b.User, b.Pass, b.Name)); err != nil {
		log.Info("store: the trackers' user cannot use the database yet; setting it up as the administrator", "user", b.User, "err", err)
		root, err := sql.Open("mysql", b.dsn(b.RootUser, b.RootPass, ""))
		if err != nil {
			return err
		}
		defer root.Close()
		for _, q := range []string{
			"CREATE DATABASE IF NOT EXISTS `" + b.Name + "`",
			"CREATE USER IF NOT EXISTS '" + b.User + "'@'%' IDENTIFIED BY " + quote(b.Pass),
			"CREATE USER IF NOT EXISTS '" + b.User + "'@'localhost' IDENTIFIED BY " + quote(b.Pass),
			"GRANT ALL PRIVILEGES ON `" + b.Name + "`.* TO '" + b.User + "'@'%'",
			"GRANT ALL PRIVILEGES ON `" + b.Name + "`.* TO '" + b.User + "'@'localhost'",
		} {
			if _, err := root.ExecContext(ctx, q); err != nil {
				return fmt.Errorf("store: as %s: %w", b.RootUser, err)
			}
		}
	}
	s, err := Open(ctx, Config{DSN: "mysql:" + b.dsn(b.User, b.Pass, b.Name), Logger: log})
	if err != nil {
		return err
	}
	defer s.Close()
	return s.Setup(ctx)
}

func ping(ctx context.Context, dsn string) error {
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	return db.PingContext(ctx)
}

// quote makes a SQL string literal of s.
func quote(s string) string {
	out := []byte{'\''}
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\'', '\\':
			out = append(out, '\\')
		}
		out = append(out, s[i])
	}
	return string(append(out, '\''))
}
