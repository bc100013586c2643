package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"time"

	"github.com/go-sql-driver/mysql"
)

// claimTokenTable is the extension table of claim tokens. A transaction
// that claims queued work (it leases rows to this tracker for minutes)
// writes a row of its own there. When the connection breaks in the
// commit (the database node died or was cut off as it committed), the
// commit may have been made with its answer lost: the claimed rows would
// then be leased to no tracker until the lease ends, 1,000 s by default.
// The token, looked for on another connection, says which it was.
const claimTokenTable = `CREATE TABLE IF NOT EXISTS queue_claim (
  owner BIGINT NOT NULL,
  seq BIGINT NOT NULL,
  made INT UNSIGNED NOT NULL,
  PRIMARY KEY (owner, seq))`

// claimTokensKept is how many of its latest tokens a store leaves in the
// table; each claim removes the one that many before it. Only this store
// removes its rows, so trackers' claims never conflict over them.
const claimTokensKept = 64

// claimTokenMaxAge is the age past which tokens are removed whoever wrote
// them (left by a tracker that stopped), when a store opens.
const claimTokenMaxAge = 86400

// claimToken is one transaction's row in queue_claim.
type claimToken struct {
	owner, seq int64
}

// newClaimToken returns the store's next token.
func (s *Store) newClaimToken() *claimToken {
	return &claimToken{owner: s.claimOwner, seq: s.claimSeq.Add(1)}
}

// write adds the token to tx, and removes this store's token of
// claimTokensKept claims before.
func (c *claimToken) write(ctx context.Context, s *Store, tx *sql.Tx) error {
	if _, err := s.txExec(ctx, tx, `INSERT INTO queue_claim (owner, seq, made) VALUES (?, ?, `+s.now+`)`, c.owner, c.seq); err != nil {
		return err
	}
	if c.seq > claimTokensKept {
		if _, err := s.txExec(ctx, tx, `DELETE FROM queue_claim WHERE owner = ? AND seq = ?`, c.owner, c.seq-claimTokensKept); err != nil {
			return err
		}
	}
	return nil
}

// committed reports whether the token's transaction was committed,
// asking on fresh connections (the one it was committed on is broken)
// for up to half a minute. On a Galera cluster the read waits until the
// node it reaches has applied every write the cluster has taken
// (wsrep_sync_wait), so a commit another node made is seen.
func (c *claimToken) committed(ctx context.Context, s *Store) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var err error
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			select {
			case <-time.After(time.Duration(min(100<<attempt, 2000)) * time.Millisecond):
			case <-ctx.Done():
				return false, errors.Join(err, ctx.Err())
			}
		}
		var made bool
		made, err = c.lookUp(ctx, s)
		if err == nil {
			return made, nil
		}
	}
}

// lookUp is one attempt of committed.
func (c *claimToken) lookUp(ctx context.Context, s *Store) (bool, error) {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return false, err
	}
	defer conn.Close()
	if s.kind == MySQL {
		// Servers without Galera have no such variable (MySQL) or
		// ignore it (MariaDB): an error here is of no matter.
		if _, err := conn.ExecContext(ctx, `SET SESSION wsrep_sync_wait = 1`); err == nil {
			defer conn.ExecContext(context.WithoutCancel(ctx), `SET SESSION wsrep_sync_wait = 0`)
		} else if isConnLost(err) {
			return false, err
		}
	}
	var n int
	err = conn.QueryRowContext(ctx, `SELECT COUNT(*) FROM queue_claim WHERE owner = ? AND seq = ?`, c.owner, c.seq).Scan(&n)
	if err != nil {
		var me *mysql.MySQLError
		if isConnLost(err) || errors.As(err, &me) && me.Number == 1047 {
			// Broken again, or a node outside the primary component:
			// the next attempt connects afresh.
			conn.Raw(func(any) error { return driver.ErrBadConn })
		}
		return false, err
	}
	return n > 0, nil
}

// purgeClaimTokens removes tokens older than claimTokenMaxAge.
func (s *Store) purgeClaimTokens(ctx context.Context) {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM queue_claim WHERE made < `+s.now+` - ?`, claimTokenMaxAge); err != nil {
		s.log.Warn("store: remove old claim tokens", "err", err)
	}
}
