package storage

import (
	"errors"
	"fmt"
	"sync"
	"syscall"
)

// copyBufs holds 1 MiB buffers for streaming request bodies to disk.
var copyBufs = sync.Pool{New: func() any { b := make([]byte, 1<<20); return &b }}

// errNoSpace: the device is full.
var errNoSpace = errors.New("mogstored: no space left on device")

func mapNoSpace(err error) error {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return fmt.Errorf("%w: %v", errNoSpace, err)
	}
	return err
}

// deviceGates lets one low-priority (fsck) digest run per device at a time.
type deviceGates struct {
	mu    sync.Mutex
	gates map[string]chan struct{} // guarded by mu; device name -> 1-slot semaphore
}

func newDeviceGates() *deviceGates { return &deviceGates{gates: map[string]chan struct{}{}} }

func (g *deviceGates) get(dev string) chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	c, ok := g.gates[dev]
	if !ok {
		c = make(chan struct{}, 1)
		g.gates[dev] = c
	}
	return c
}
