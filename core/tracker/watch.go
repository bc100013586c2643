package tracker

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"
)

// watchers are the connections that asked for the tracker's log with
// `!watch`: each gets the log lines as `:: <message>\r\n`, pushed between
// its replies. A watcher that does not keep up loses lines rather than
// holding up the tracker.
type watchers struct {
	mu   sync.Mutex
	subs map[*connSt]chan string
}

// watchBuffer is how many lines may wait for one slow watcher.
const watchBuffer = 256

// toggle subscribes st (writing to c) or, when it already is, ends its
// subscription; it reports whether st is subscribed now.
func (w *watchers) toggle(st *connSt, c net.Conn) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if ch, ok := w.subs[st]; ok {
		delete(w.subs, st)
		close(ch)
		return false
	}
	if w.subs == nil {
		w.subs = map[*connSt]chan string{}
	}
	ch := make(chan string, watchBuffer)
	w.subs[st] = ch
	go func() {
		for line := range ch {
			st.wmu.Lock()
			c.SetWriteDeadline(time.Now().Add(10 * time.Second))
			_, err := st.w.WriteString(line)
			if err == nil {
				err = st.w.Flush()
			}
			st.wmu.Unlock()
			if err != nil {
				w.drop(st)
				return
			}
		}
	}()
	return true
}

// drop ends st's subscription, if any (its connection closed).
func (w *watchers) drop(st *connSt) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if ch, ok := w.subs[st]; ok {
		delete(w.subs, st)
		close(ch)
	}
}

func (w *watchers) any() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.subs) > 0
}

func (w *watchers) send(line string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, ch := range w.subs {
		select {
		case ch <- line:
		default: // a slow watcher loses the line
		}
	}
}

// watchHandler passes records to the tracker's own log handler and, when
// there are watchers, to them as one line each.
type watchHandler struct {
	inner slog.Handler
	w     *watchers
	attrs string // attributes added with WithAttrs, as " k=v"
	group string
}

func (h *watchHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.inner.Enabled(ctx, l) || h.w.any()
}

func (h *watchHandler) Handle(ctx context.Context, r slog.Record) error {
	var err error
	if h.inner.Enabled(ctx, r.Level) {
		err = h.inner.Handle(ctx, r)
	}
	if h.w.any() {
		var b strings.Builder
		b.WriteString(":: ")
		b.WriteString(r.Message)
		b.WriteString(h.attrs)
		r.Attrs(func(a slog.Attr) bool {
			fmt.Fprintf(&b, " %s%s=%v", h.group, a.Key, a.Value)
			return true
		})
		line := strings.NewReplacer("\r", " ", "\n", " ").Replace(b.String())
		h.w.send(line + "\r\n")
	}
	return err
}

func (h *watchHandler) WithAttrs(as []slog.Attr) slog.Handler {
	n := *h
	n.inner = h.inner.WithAttrs(as)
	var b strings.Builder
	b.WriteString(h.attrs)
	for _, a := range as {
		fmt.Fprintf(&b, " %s%s=%v", h.group, a.Key, a.Value)
	}
	n.attrs = b.String()
	return &n
}

func (h *watchHandler) WithGroup(name string) slog.Handler {
	n := *h
	n.inner = h.inner.WithGroup(name)
	n.group = h.group + name + "."
	return &n
}
