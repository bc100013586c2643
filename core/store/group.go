package store

import (
	"context"
	"database/sql"

	"github.com/mogilefs-go/mogilefs-go/core"
)

// groupCommitter batches concurrent write transactions (file commits,
// replication's copy records) into one SQLite transaction, each in a
// savepoint of its own, so that a burst pays for one fsync instead of one
// each. (MySQL/InnoDB group-commits by itself.)
type groupCommitter struct {
	s    *Store
	reqs chan *commitReq
	quit chan struct{}
	done chan struct{}
}

// commitReq is one piece of work waiting for its batch.
type commitReq struct {
	op   string
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
func (g *groupCommitter) do(ctx context.Context, op string, fn func(ctx context.Context, tx *sql.Tx) error) error {
	r := &commitReq{op: op, fn: fn, done: make(chan struct{})}
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
	err := g.s.tx(ctx, "group commit", func(tx *sql.Tx) error {
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
	})
	for _, r := range batch {
		if err != nil {
			r.err = err
		} else if r.err != nil {
			r.err = wrap(r.op, r.err)
		}
		close(r.done)
	}
}

// stop ends the committer after the batch in progress.
func (g *groupCommitter) stop() {
	close(g.quit)
	<-g.done
}
