package tests

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mogilefs-go/mogilefs-go/core/client"
)

// loadOptions shape a background load of small uploads.
type loadOptions struct {
	Workers     int
	Prefix      string // keys are Prefix/<worker>/<i>
	Size        func(i int) int
	UploadTries int  // attempts per upload (a re-upload of a key is safe)
	ReadBack    bool // after each upload, read an earlier key back and compare
	ReadTries   int
	Log         bool // log each failed operation
}

// load uploads (and reads back) small files of class "two" in domain
// "test" until stopped, remembering what was acknowledged.
type load struct {
	ops, failed, uploaded atomic.Int64

	mu     sync.Mutex
	stored map[string][]byte // acknowledged uploads

	stop chan struct{}
	wg   sync.WaitGroup
}

// startLoad starts the workers; Stop ends them.
func startLoad(t *testing.T, cl *client.Client, o loadOptions) *load {
	l := &load{stored: map[string][]byte{}, stop: make(chan struct{})}
	for w := 0; w < o.Workers; w++ {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for i := 0; ; i++ {
				select {
				case <-l.stop:
					return
				default:
				}
				k := fmt.Sprintf("%s/%d/%d", o.Prefix, w, i)
				data := randomBytes(t, o.Size(i))
				err := retry(max(o.UploadTries, 1), 200*time.Millisecond, func(ctx context.Context) error {
					_, err := cl.Upload(ctx, "test", k, "two", bytes.NewReader(data), int64(len(data)), client.UploadOptions{})
					return err
				})
				l.ops.Add(1)
				if err != nil {
					l.failed.Add(1)
					if o.Log {
						t.Logf("upload %s failed: %v", k, err)
					}
					time.Sleep(50 * time.Millisecond)
					continue
				}
				l.uploaded.Add(1)
				l.mu.Lock()
				l.stored[k] = data
				l.mu.Unlock()
				if o.ReadBack {
					l.readBack(t, cl, fmt.Sprintf("%s/%d/%d", o.Prefix, w, i/2), o)
				}
			}
		}()
	}
	return l
}

// readBack reads a stored key and compares it with what was uploaded.
func (l *load) readBack(t *testing.T, cl *client.Client, k string, o loadOptions) {
	l.mu.Lock()
	want := l.stored[k]
	l.mu.Unlock()
	var got []byte
	// A file still on one copy is unreadable while its node restarts:
	// reads are retried, as clients do.
	err := retry(max(o.ReadTries, 1), 300*time.Millisecond, func(ctx context.Context) error {
		r, err := cl.Open(ctx, "test", k)
		if err != nil {
			return err
		}
		defer r.Close()
		got, err = io.ReadAll(r)
		return err
	})
	l.ops.Add(1)
	if err != nil || !bytes.Equal(got, want) {
		l.failed.Add(1)
		if o.Log {
			t.Logf("read %s failed: %v (%d of %d bytes)", k, err, len(got), len(want))
		}
	}
}

// retry runs f up to tries times, each with 20 s, pausing between.
func retry(tries int, pause time.Duration, f func(ctx context.Context) error) error {
	var err error
	for attempt := 0; attempt < tries; attempt++ {
		if attempt > 0 {
			time.Sleep(pause)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		err = f(ctx)
		cancel()
		if err == nil {
			return nil
		}
	}
	return err
}

// Stop ends the load and returns the acknowledged uploads.
func (l *load) Stop() map[string][]byte {
	close(l.stop)
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.stored
}
