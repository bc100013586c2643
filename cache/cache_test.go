package cache

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestLoadCoalescesAndExpires(t *testing.T) {
	c := New[int](10, 100*time.Millisecond)
	var waiting sync.WaitGroup
	waiting.Add(20)
	c.joined = waiting.Done
	var calls atomic.Int32
	release := make(chan struct{})
	load := func(ctx context.Context) (int, error) {
		calls.Add(1)
		<-release
		return 42, nil
	}
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if v, err := c.Load(context.Background(), "k", load); err != nil || v != 42 {
				t.Errorf("Load = %d, %v", v, err)
			}
		}()
	}
	waiting.Wait() // all 20 are waiting before the load may end
	close(release)
	wg.Wait()
	if n := calls.Load(); n != 1 {
		t.Errorf("%d loads for 20 concurrent misses; want 1", n)
	}
	if v, ok := c.Get("k"); !ok || v != 42 {
		t.Errorf("Get after Load = %d, %v", v, ok)
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, ok := c.Get("k"); !ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("entry outlived its TTL by seconds")
		}
	}
}

func TestLoadErrorNotCachedAndCallerCancel(t *testing.T) {
	c := New[int](10, time.Minute)
	boom := errors.New("boom")
	if _, err := c.Load(context.Background(), "k", func(context.Context) (int, error) { return 0, boom }); !errors.Is(err, boom) {
		t.Fatalf("err = %v", err)
	}
	if _, ok := c.Get("k"); ok {
		t.Fatal("error result was cached")
	}
	// The caller whose fill it is gives up: the fill goes on for the
	// others.
	ctx, cancel := context.WithCancel(context.Background())
	entered, release, gaveUp := make(chan struct{}), make(chan struct{}), make(chan error)
	var waiting atomic.Int32
	c.joined = func() { // the first caller gives up once a second waits
		if waiting.Add(1) == 2 {
			cancel()
		}
	}
	go func() {
		_, err := c.Load(ctx, "slow", func(ctx context.Context) (int, error) {
			close(entered)
			<-release
			return 7, ctx.Err()
		})
		gaveUp <- err
	}()
	go func() { <-gaveUp; close(release) }()
	<-entered
	if v, err := c.Load(context.Background(), "slow", nil); err != nil || v != 7 {
		t.Errorf("the shared fill = %d, %v when its first caller gave up; want 7", v, err)
	}
	if v, ok := c.Get("slow"); !ok || v != 7 {
		t.Errorf("shared fill = %d, %v", v, ok)
	}
	c.Add("a/1", 1)
	c.Add("a/2", 2)
	c.Add("b/1", 3)
	c.RemovePrefix("a/")
	if _, ok := c.Get("a/1"); ok {
		t.Error("RemovePrefix kept a/1")
	}
	if _, ok := c.Get("b/1"); !ok {
		t.Error("RemovePrefix dropped b/1")
	}
}

// A load that started before an Add must not overwrite the newer value,
// and a caller that comes after the Add must not get the older answer.
func TestLoadStartedBeforeAddDoesNotOverwriteIt(t *testing.T) {
	c := New[string](10, time.Minute)
	entered, release := make(chan struct{}), make(chan struct{})
	got := make(chan string)
	go func() {
		v, _ := c.Load(context.Background(), "k", func(ctx context.Context) (string, error) {
			close(entered)
			<-release
			return "old", nil
		})
		got <- v
	}()
	<-entered
	c.Add("k", "new")
	c.Remove("k")
	late, err := c.Load(context.Background(), "k", func(ctx context.Context) (string, error) { return "fresh", nil })
	if err != nil || late != "fresh" {
		t.Errorf("a load after the change got %q, %v; want fresh", late, err)
	}
	c.Add("k", "new")
	close(release)
	if v := <-got; v != "old" {
		t.Errorf("the first caller got %q", v)
	}
	if v, _ := c.Get("k"); v != "new" {
		t.Errorf("cached %q after a fill that predates the Add; want new", v)
	}
}
