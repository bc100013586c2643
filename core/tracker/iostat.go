package tracker

import (
	"context"
	"net"
	"strconv"
	"time"
)

// iostat follows each storage host's side-channel `watch` stream, as the
// original's IOStatWatcher does: one connection per host IP, reports of
// `<devid>\t<util>` lines ended by `.`, feeding each device's
// utilization in get_devices (mogadm's I/O% column).
type iostat struct {
	m     *monitor
	conns map[string]context.CancelFunc // host IP -> its watcher
}

// sync starts a watcher for every host IP in the snapshot that has none
// and stops those of hosts no longer there. Called by the monitor each
// round.
func (w *iostat) sync(ctx context.Context) {
	want := map[string]bool{}
	for _, h := range w.m.snap().hosts {
		if h.IP != "" {
			want[h.IP] = true
		}
	}
	for ip, stop := range w.conns {
		if !want[ip] {
			stop()
			delete(w.conns, ip)
		}
	}
	for ip := range want {
		if _, ok := w.conns[ip]; ok {
			continue
		}
		cctx, cancel := context.WithCancel(ctx)
		w.conns[ip] = cancel
		w.m.wg.Add(1)
		go func() {
			defer w.m.wg.Done()
			w.follow(cctx, ip)
		}()
	}
}

// follow keeps one watch connection to ip until ctx ends: again at once
// when the node ends it, after a pause when it cannot be reached.
func (w *iostat) follow(ctx context.Context, ip string) {
	addr := net.JoinHostPort(ip, strconv.Itoa(w.m.cfg.SideChannelPort))
	for ctx.Err() == nil {
		err := w.stream(ctx, addr)
		pause := 100 * time.Millisecond
		if err != nil {
			pause = 5 * time.Second
		}
		sleepCtx(ctx, pause, nil)
	}
}

// stream reads one watch connection; it returns nil when the node closed
// it after sending reports, an error when it could not be used. A node
// reports every second: silence for long means it is gone.
func (w *iostat) stream(ctx context.Context, addr string) error {
	return w.m.nodes.Watch(ctx, addr, 30*time.Second, func(devid int, util string) {
		w.m.noteUtilization(devid, util)
	})
}
