package fusefs

import (
	"context"
	"strings"
	"testing"

	"github.com/mogilefs-go/mogilefs-go/core"
	"github.com/mogilefs-go/mogilefs-go/core/client"
)

type classList []client.DomainClasses

func (l classList) DomainsWithClasses(context.Context) ([]client.DomainClasses, error) { return l, nil }

func TestCheckClass(t *testing.T) {
	l := classList{
		{Name: "photos", Classes: []core.Class{{Name: "default"}, {Name: "thumbs"}}},
		{Name: "files", Classes: []core.Class{{Name: "default"}}},
	}
	ctx := context.Background()
	if lacking, err := CheckClass(ctx, l, "thumbs"); err != nil || len(lacking) != 1 || lacking[0] != "files" {
		t.Errorf("CheckClass(thumbs) = %v, %v", lacking, err)
	}
	if _, err := CheckClass(ctx, l, "nope"); err == nil || !strings.Contains(err.Error(), "class nope does not exist in any domain (files, photos)") {
		t.Errorf("CheckClass(nope) = %v", err)
	}
	if lacking, err := CheckClass(ctx, l, ""); err != nil || lacking != nil {
		t.Errorf("no class = %v, %v", lacking, err)
	}
	if _, err := CheckClass(ctx, classList{}, "x"); err == nil {
		t.Error("a class accepted with no domains at all")
	}
}
