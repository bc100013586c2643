package store

import (
	"context"
	"database/sql"
	"errors"
)

// groupCommitter batches concurrent CommitFile calls into one SQLite
// transaction, each in a savepoint of its own, so that a burst of uploads
// pays for one fsync instead of one each. (MySQL/InnoDB group-commits by
// itself.)
type groupCommitter struct {
	s    *Store
	reqs chan *commitReq
	quit chan struct{}
	done chan struct{}
}

// commitReq is one CommitFile call waiting for its batch.
type commitReq struct {
	c        Commit
	replaced int64
	err      error
	done     chan struct{}
}

// maxBatch bounds the commits in one transaction.
const maxBatch = 64

var errClosed = errors.New("store: closed")

func newGroupCommitter(s *Store) *groupCommitter {
	g := &groupCommitter{s: s, reqs: make(chan *commitReq), quit: make(chan struct{}), done: make(chan struct{})}
	go g.run()
	return g
}

// commit queues c and waits for its batch to be committed. It waits even
// when ctx ends, as the commit may already be in the transaction.
func (g *groupCommitter) commit(ctx context.Context, c Commit) (int64, error) {
	r := &commitReq{c: c, done: make(chan struct{})}
	select {
	case g.reqs <- r:
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-g.quit:
		return 0, errClosed
	}
	<-r.done
	return r.replaced, r.err
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
	err := g.s.tx(ctx, "commit files", func(tx *sql.Tx) error {
		for _, r := range batch {
			if _, err := g.s.txExec(ctx, tx, "SAVEPOINT one_commit"); err != nil {
				return err
			}
			r.replaced, r.err = g.s.commitIn(ctx, tx, r.c)
			if r.err != nil {
				r.replaced = 0
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
			r.replaced, r.err = 0, err
		} else if r.err != nil {
			r.err = wrap("commit file", r.err)
		}
		close(r.done)
	}
}

// stop ends the committer after the batch in progress.
func (g *groupCommitter) stop() {
	close(g.quit)
	<-g.done
}
