package fusefs

import (
	"context"

	"bazil.org/fuse"
)

// requestStack is the stack a request's goroutine is grown to before it
// is served. bazil.org/fuse serves each request on a goroutine of its
// own, which starts with a small stack; a request that goes to the
// tracker or a storage node (net/http, the protocol client) outgrows it
// several times, and each growth copies the stack and adjusts every frame
// on it, which at that depth cost a sixth of the mount's CPU in a profile
// of touch. Growing it once while the goroutine has one frame copies
// nearly nothing. The technique is CockroachDB's growstack.
const requestStack = 16 << 10

// growStack makes the calling goroutine's stack at least requestStack
// deep.
//
//go:noinline
func growStack() {
	var buf [requestStack]byte
	keep(buf[:])
}

// keep is a call that growStack's buffer must exist for (not escaping,
// it stays on the stack).
//
//go:noinline
func keep([]byte) {}

// requestContext is the server's per-request hook (fs.Config.WithContext):
// it runs on the request's goroutine before the request is handled, and
// grows the stack of the requests that may reach the network. Requests
// answered from memory (GETATTR, FORGET, most LOOKUPs) are left as they
// are: a deeper stack costs them more than it saves.
func requestContext(ctx context.Context, req fuse.Request) context.Context {
	switch req.(type) {
	case *fuse.CreateRequest, *fuse.FlushRequest, *fuse.ReleaseRequest,
		*fuse.FsyncRequest, *fuse.RemoveRequest, *fuse.RenameRequest,
		*fuse.MkdirRequest, *fuse.SetattrRequest, *fuse.OpenRequest,
		*fuse.ReadRequest, *fuse.WriteRequest, *fuse.LookupRequest,
		*fuse.SymlinkRequest, *fuse.SetxattrRequest:
		growStack()
	}
	return ctx
}
