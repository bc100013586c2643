package store

import (
	"context"
	"database/sql"
	"database/sql/driver"

	"github.com/mogilefs-go/mogilefs-go/core"
)

// groupCommitter batches concurrent write transactions (file commits,
// replication's copy records) into one SQLite transaction, each in a
// savepoint of its own, so that a burst pays for one fsync instead of one
// each. (MySQL/InnoDB group-commits by itself.)
//
// A batch of lazy work only (a deletion's records: lost, the work is done
// again) is committed without an fsync (synchronous=NORMAL on the
// committer's own connection); the next durable commit's fsync makes it
// durable too, as SQLite's write-ahead log is synced in order.
type groupCommitter struct {
	s    *Store
	reqs chan *commitReq
	quit chan struct{}
	done chan struct{}

	// Used by the committer's goroutine only.
	conn    *sql.Conn // its connection, while it has one
	relaxed bool      // conn runs synchronous=NORMAL, the pool's FULL
}

// commitReq is one piece of work waiting for its batch.
type commitReq struct {
	op   string
	lazy bool
	fn   func(ctx context.Context, tx *sql.Tx) error
	err  error
	done chan struct{}
}

// maxBatch bounds the pieces of work in one transaction.
const maxBatch = 64

var errClosed = core.Errorf(core.Unavailable, "store: closed")

func newGroupCommitter(s *Store) *groupCommitter {
	g := &groupCommitter{s: s, reqs: make(chan *commitReq), quit: make(chan struct{}), done: make(chan struct{})}
	go g.run()
	return g
}

// do runs fn in the next batch's transaction and waits for the batch to
// be committed. It waits even when ctx ends, as fn may already be in the
// transaction. fn may run more than once (when the batch is retried); a
// failed fn's changes are rolled back alone.
func (g *groupCommitter) do(ctx context.Context, op string, lazy bool, fn func(ctx context.Context, tx *sql.Tx) error) error {
	r := &commitReq{op: op, lazy: lazy, fn: fn, done: make(chan struct{})}
	select {
	case g.reqs <- r:
	case <-ctx.Done():
		return ctx.Err()
	case <-g.quit:
		return errClosed
	}
	<-r.done
	return r.err
}

func (g *groupCommitter) run() {
	defer close(g.done)
	for {
		var first *commitReq
		select {
		case first = <-g.reqs:
		case <-g.quit:
			return
		}
		batch := []*commitReq{first}
	more:
		for len(batch) < maxBatch {
			select {
			case r := <-g.reqs:
				batch = append(batch, r)
			default:
				break more
			}
		}
		g.runBatch(batch)
	}
}

func (g *groupCommitter) runBatch(batch []*commitReq) {
	ctx := context.Background()
	lazy := true
	for _, r := range batch {
		lazy = lazy && r.lazy
	}
	begin := func(ctx context.Context) (*sql.Tx, error) { return g.begin(ctx, lazy && !g.s.noSync) }
	err := g.s.txOn(ctx, "group commit", begin, func(tx *sql.Tx) error {
		if len(batch) == 1 {
			// Work alone needs no savepoint: its failure rolls the
			// transaction back.
			batch[0].err = batch[0].fn(ctx, tx)
			return batch[0].err
		}
		for _, r := range batch {
			if _, err := g.s.txExec(ctx, tx, "SAVEPOINT one_commit"); err != nil {
				return err
			}
			r.err = r.fn(ctx, tx)
			if r.err != nil {
				if _, err := g.s.txExec(ctx, tx, "ROLLBACK TO one_commit"); err != nil {
					return err
				}
			}
			if _, err := g.s.txExec(ctx, tx, "RELEASE one_commit"); err != nil {
				return err
			}
		}
		return nil
	}, false)
	for _, r := range batch {
		// Work alone that failed made the batch fail: its own error is
		// its answer.
		if err != nil && (len(batch) > 1 || r.err == nil) {
			r.err = err
		} else if r.err != nil {
			r.err = wrap(r.op, r.err)
		}
		close(r.done)
	}
}

// begin starts a transaction on the committer's connection, to be
// committed without an fsync (relaxed: on a store whose pool commits with
// one) or as the pool's connections commit.
func (g *groupCommitter) begin(ctx context.Context, relaxed bool) (*sql.Tx, error) {
	if g.conn == nil {
		c, err := g.s.db.Conn(ctx)
		if err != nil {
			return nil, err
		}
		g.conn, g.relaxed = c, false
	}
	if g.relaxed != relaxed {
		mode := "FULL"
		if relaxed {
			mode = "NORMAL"
		}
		if _, err := g.conn.ExecContext(ctx, "PRAGMA synchronous="+mode); err != nil {
			g.dropConn()
			return nil, err
		}
		g.relaxed = relaxed
	}
	tx, err := g.conn.BeginTx(ctx, nil)
	if err != nil {
		g.dropConn()
	}
	return tx, err
}

// dropConn gives the committer's connection back to the pool, as the
// pool's connections are (synchronous=FULL); one that cannot be set so is
// closed. The next batch takes a connection again.
func (g *groupCommitter) dropConn() {
	if g.conn == nil {
		return
	}
	if g.relaxed {
		if _, err := g.conn.ExecContext(context.Background(), "PRAGMA synchronous=FULL"); err != nil {
			g.conn.Raw(func(any) error { return driver.ErrBadConn })
		}
	}
	g.conn.Close()
	g.conn = nil
}

// stop ends the committer after the batch in progress.
func (g *groupCommitter) stop() {
	close(g.quit)
	<-g.done
	g.dropConn()
}
