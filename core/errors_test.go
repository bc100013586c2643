package core

import (
	"context"
	"errors"
	"fmt"
	"testing"
)

func TestKindOf(t *testing.T) {
	nf := E(NotFound, "store: file", errors.New("no row"))
	for _, c := range []struct {
		err  error
		want Kind
	}{
		{nil, Other},
		{errors.New("plain"), Other},
		{nf, NotFound},
		{fmt.Errorf("lookup: %w", nf), NotFound},
		{E(Other, "outer", nf), NotFound}, // Other does not hide a kind below it
		{E(Database, "store: x", context.DeadlineExceeded), Database},
		{fmt.Errorf("x: %w", context.DeadlineExceeded), Timeout},
		{errors.Join(errors.New("a"), Errorf(Exists, "taken")), Exists},
	} {
		if got := KindOf(c.err); got != c.want {
			t.Errorf("KindOf(%v) = %v; want %v", c.err, got, c.want)
		}
	}
	if !Is(NotFound, nf) || Is(NotFound, nil) {
		t.Error("Is")
	}
	if got := nf.Error(); got != "store: file: no row" {
		t.Errorf("Error() = %q", got)
	}
	if got := E(NoSpace, "place", nil).Error(); got != "place: no space" {
		t.Errorf("Error() = %q", got)
	}
}
