package fusefs

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/mogilefs-go/mogilefs-go/core/client"
)

// ClassLister lists the domains and their classes (core/client.Tracker).
type ClassLister interface {
	DomainsWithClasses(ctx context.Context) ([]client.DomainClasses, error)
}

// CheckClass is run before mounting with --class: a class that no domain
// has is refused (every write would fail), and the domains that lack it
// are returned, for a warning (writes there fail with EINVAL).
func CheckClass(ctx context.Context, l ClassLister, class string) (lacking []string, err error) {
	if class == "" {
		return nil, nil
	}
	doms, err := l.DomainsWithClasses(ctx)
	if err != nil {
		return nil, err
	}
	var have []string
	for _, d := range doms {
		found := false
		for _, c := range d.Classes {
			found = found || c.Name == class
		}
		if found {
			have = append(have, d.Name)
		} else {
			lacking = append(lacking, d.Name)
		}
	}
	sort.Strings(lacking)
	if len(have) == 0 {
		if len(lacking) == 0 {
			return nil, fmt.Errorf("class %s does not exist: there are no domains (mogadm domain add, then mogadm class add DOMAIN %s)", class, class)
		}
		return nil, fmt.Errorf("class %s does not exist in any domain (%s); add it with mogadm class add DOMAIN %s", class, strings.Join(lacking, ", "), class)
	}
	return lacking, nil
}
