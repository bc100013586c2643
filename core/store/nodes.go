package store

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-sql-driver/mysql"
)

// A MySQL DSN may name several servers, comma-separated in its address
// ("tcp(db1:3306,db2:3306,db3:3306)", or host=db1,db2,db3 in the DBI
// form): the nodes of a Galera cluster, or a primary and its standby.
// Each new connection goes to the first of them, starting from the one
// that last worked, that answers and is ready: a Galera node outside the
// primary component (cut off, or still joining) says wsrep_ready=OFF and
// is passed over. On Galera every connection also waits for the writes
// the cluster has committed before it reads (wsrep_sync_wait=1), so that
// a file stored through one tracker is found at once through another.
// A server that loses a connection (killed, or cut off and silent until
// the read timeout) has its other pooled connections dropped and is
// tried last for a while (nodeState).

// parseMySQLDSN parses a go-sql-driver DSN whose tcp(...) address may
// list several servers; cfg.Addr is the first, addrs all of them.
func parseMySQLDSN(dsn string) (cfg *mysql.Config, addrs []string, err error) {
	if i := strings.Index(dsn, "tcp("); i >= 0 {
		if j := strings.Index(dsn[i:], ")"); j > 0 {
			for _, a := range strings.Split(dsn[i+4:i+j], ",") {
				if a = strings.TrimSpace(a); a != "" {
					addrs = append(addrs, a)
				}
			}
			if len(addrs) > 1 {
				dsn = dsn[:i+4] + addrs[0] + dsn[i+j:]
			}
		}
	}
	cfg, err = mysql.ParseDSN(dsn)
	if err != nil {
		return nil, nil, err
	}
	if len(addrs) <= 1 {
		addrs = []string{cfg.Addr}
	}
	return cfg, addrs, nil
}

// formatMySQLDSN is cfg's DSN with the address list addrs.
func formatMySQLDSN(cfg *mysql.Config, addrs []string) string {
	d := cfg.FormatDSN()
	if len(addrs) > 1 {
		d = strings.Replace(d, "tcp("+cfg.Addr+")", "tcp("+strings.Join(addrs, ",")+")", 1)
	}
	return d
}

// nodeConnector opens connections to the first ready node of several.
type nodeConnector struct {
	nodes []driver.Connector // one per address, in the DSN's order
	addrs []string
	state []*nodeState // one per address
	next  atomic.Int32 // the node to try first: the last one that worked
}

// nodeState is what the connector has seen of one server. A server cut
// off the network neither answers nor fails: each connection to it
// waits out the read timeout. So once one connection to it is lost,
// every connection to it opened before is dropped instead of handed out
// again (the pool held dozens), and new connections try it last for a
// while.
type nodeState struct {
	epoch  atomic.Int64 // bumped at each loss: connections of older epochs are dropped
	lostAt atomic.Int64 // unix nanoseconds of the last loss; 0: none
}

// suspectFor is how long a server that lost a connection is tried last.
const suspectFor = 30 * time.Second

func (n *nodeState) lost() {
	n.epoch.Add(1)
	n.lostAt.Store(time.Now().UnixNano())
}

func (n *nodeState) suspect() bool {
	at := n.lostAt.Load()
	return at != 0 && time.Since(time.Unix(0, at)) < suspectFor
}

// newNodeConnector builds the connector of cfg for the servers addrs.
func newNodeConnector(cfg *mysql.Config, addrs []string) (*nodeConnector, error) {
	c := &nodeConnector{}
	for _, addr := range addrs {
		one := cfg.Clone()
		one.Addr = addr
		conn, err := mysql.NewConnector(one)
		if err != nil {
			return nil, err
		}
		c.nodes = append(c.nodes, conn)
		c.addrs = append(c.addrs, addr)
		c.state = append(c.state, &nodeState{})
	}
	if len(c.nodes) == 0 {
		return nil, errors.New("store: the MySQL DSN names no server")
	}
	return c, nil
}

// Connect returns a connection to the first ready node, starting from
// the last one that worked; servers that recently lost a connection are
// tried after the others.
func (c *nodeConnector) Connect(ctx context.Context) (driver.Conn, error) {
	start := int(c.next.Load())
	order := make([]int, 0, len(c.nodes))
	var suspects []int
	for i := range c.nodes {
		j := (start + i) % len(c.nodes)
		if c.state[j].suspect() {
			suspects = append(suspects, j)
		} else {
			order = append(order, j)
		}
	}
	var errs []error
	for _, j := range append(order, suspects...) {
		st := c.state[j]
		epoch := st.epoch.Load()
		conn, err := c.nodes[j].Connect(ctx)
		if err == nil {
			err = prepareConn(ctx, conn)
			if err != nil {
				conn.Close()
			}
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil, err
			}
			errs = append(errs, fmt.Errorf("%s: %w", c.addrs[j], err))
			continue
		}
		c.next.Store(int32(j))
		st.lostAt.Store(0)
		return &nodeConn{c: conn, node: st, epoch: epoch}, nil
	}
	if len(errs) == 1 {
		return nil, errors.Unwrap(errs[0])
	}
	return nil, errors.Join(errs...)
}

// Driver returns the MySQL driver.
func (c *nodeConnector) Driver() driver.Driver { return c.nodes[0].Driver() }

// errNotReady is a Galera node that may not be used now.
var errNotReady = errors.New("the Galera node is not ready (outside the primary component, or joining)")

// prepareConn checks that a new connection's server may be used and, on
// Galera, makes its reads wait for the cluster's committed writes.
func prepareConn(ctx context.Context, conn driver.Conn) error {
	q, ok := conn.(driver.QueryerContext)
	if !ok {
		return nil
	}
	ready, galera, err := wsrepReady(ctx, q)
	if err != nil {
		return err
	}
	if !galera {
		return nil
	}
	if !ready {
		return errNotReady
	}
	e, ok := conn.(driver.ExecerContext)
	if !ok {
		return nil
	}
	_, err = e.ExecContext(ctx, "SET SESSION wsrep_sync_wait = 1", nil)
	return err
}

// wsrepReady reads the wsrep_ready status: galera is false on a server
// that is not a Galera node (no provider loaded: wsrep_on is 0, or the
// variable is unknown, as on MySQL).
func wsrepReady(ctx context.Context, q driver.QueryerContext) (ready, galera bool, err error) {
	if rowValue(ctx, q, "SELECT @@wsrep_on", 0) != "1" {
		return false, false, nil
	}
	return strings.EqualFold(rowValue(ctx, q, "SHOW STATUS LIKE 'wsrep_ready'", 1), "ON"), true, nil
}

// rowValue runs a query and returns column col of its first row, "" on
// any error. It reads the result to its end, as the protocol requires
// before the next query.
func rowValue(ctx context.Context, q driver.QueryerContext, query string, col int) string {
	rows, err := q.QueryContext(ctx, query, nil)
	if err != nil {
		return ""
	}
	defer rows.Close()
	vals := make([]driver.Value, len(rows.Columns()))
	out := ""
	for first := true; rows.Next(vals) == nil; first = false {
		if first && col < len(vals) {
			if b, ok := vals[col].([]byte); ok {
				out = string(b)
			} else {
				out = fmt.Sprint(vals[col])
			}
		}
	}
	return out
}

// isNodeGone reports a MySQL error that means this connection's node is
// unusable now and others may not be: a Galera node outside the primary
// component (1047 WSREP has not yet prepared node for application use).
func isNodeGone(err error) bool {
	var me *mysql.MySQLError
	return errors.As(err, &me) && me.Number == 1047
}

// nodeConn is a connection that marks itself bad when its node says it
// is unusable (see isNodeGone), so that the pool drops it instead of
// handing it out again.
type nodeConn struct {
	c     driver.Conn
	bad   atomic.Bool
	node  *nodeState
	epoch int64 // the node's epoch when this connection was opened
}

// Interfaces the MySQL driver's connections have, kept by the wrapper.
var (
	_ driver.ConnBeginTx        = (*nodeConn)(nil)
	_ driver.ConnPrepareContext = (*nodeConn)(nil)
	_ driver.ExecerContext      = (*nodeConn)(nil)
	_ driver.QueryerContext     = (*nodeConn)(nil)
	_ driver.Pinger             = (*nodeConn)(nil)
	_ driver.SessionResetter    = (*nodeConn)(nil)
	_ driver.Validator          = (*nodeConn)(nil)
	_ driver.NamedValueChecker  = (*nodeConn)(nil)
)

func (n *nodeConn) note(err error) error {
	switch {
	case err == nil:
	case isNodeGone(err):
		n.bad.Store(true)
	case isConnLost(err):
		n.bad.Store(true)
		n.node.lost()
	}
	return err
}

// usable reports whether the pool may hand the connection out again.
func (n *nodeConn) usable() bool {
	return !n.bad.Load() && n.epoch == n.node.epoch.Load()
}

func (n *nodeConn) Prepare(q string) (driver.Stmt, error) {
	return n.PrepareContext(context.Background(), q)
}

func (n *nodeConn) PrepareContext(ctx context.Context, q string) (driver.Stmt, error) {
	st, err := n.c.(driver.ConnPrepareContext).PrepareContext(ctx, q)
	if err != nil {
		return nil, n.note(err)
	}
	return &nodeStmt{st: st, n: n}, nil
}

func (n *nodeConn) Close() error { return n.c.Close() }

func (n *nodeConn) Begin() (driver.Tx, error) {
	return n.BeginTx(context.Background(), driver.TxOptions{})
}

func (n *nodeConn) BeginTx(ctx context.Context, o driver.TxOptions) (driver.Tx, error) {
	tx, err := n.c.(driver.ConnBeginTx).BeginTx(ctx, o)
	if err != nil {
		return nil, n.note(err)
	}
	return &nodeTx{tx: tx, n: n}, nil
}

func (n *nodeConn) ExecContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Result, error) {
	r, err := n.c.(driver.ExecerContext).ExecContext(ctx, q, args)
	return r, n.note(err)
}

func (n *nodeConn) QueryContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Rows, error) {
	r, err := n.c.(driver.QueryerContext).QueryContext(ctx, q, args)
	return r, n.note(err)
}

func (n *nodeConn) Ping(ctx context.Context) error {
	return n.note(n.c.(driver.Pinger).Ping(ctx))
}

func (n *nodeConn) ResetSession(ctx context.Context) error {
	if !n.usable() {
		return driver.ErrBadConn
	}
	return n.c.(driver.SessionResetter).ResetSession(ctx)
}

func (n *nodeConn) IsValid() bool {
	return n.usable() && n.c.(driver.Validator).IsValid()
}

func (n *nodeConn) CheckNamedValue(v *driver.NamedValue) error {
	return n.c.(driver.NamedValueChecker).CheckNamedValue(v)
}

// nodeTx is a transaction on a nodeConn.
type nodeTx struct {
	tx driver.Tx
	n  *nodeConn
}

func (t *nodeTx) Commit() error   { return t.n.note(t.tx.Commit()) }
func (t *nodeTx) Rollback() error { return t.n.note(t.tx.Rollback()) }

// nodeStmt is a prepared statement on a nodeConn.
type nodeStmt struct {
	st driver.Stmt
	n  *nodeConn
}

func (s *nodeStmt) Close() error  { return s.st.Close() }
func (s *nodeStmt) NumInput() int { return s.st.NumInput() }

func (s *nodeStmt) Exec(args []driver.Value) (driver.Result, error) {
	return nil, errors.New("store: Exec without a context")
}

func (s *nodeStmt) Query(args []driver.Value) (driver.Rows, error) {
	return nil, errors.New("store: Query without a context")
}

func (s *nodeStmt) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	r, err := s.st.(driver.StmtExecContext).ExecContext(ctx, args)
	return r, s.n.note(err)
}

func (s *nodeStmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	r, err := s.st.(driver.StmtQueryContext).QueryContext(ctx, args)
	return r, s.n.note(err)
}
