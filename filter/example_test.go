package filter_test

import (
	"fmt"

	"github.com/rmbd/rmbd/filter"
)

func Example() {
	a, err := filter.New(filter.Config{Layout: filter.Blocked, Capacity: 10_000, FPRate: 0.01})
	if err != nil {
		panic(err)
	}
	b, _ := filter.NewFromFingerprint(a.Fingerprint(), 0)

	a.Add([]byte("alice"))
	b.Add([]byte("bob"))

	// Replicate: copy every row of b and OR it into a.
	rows, _ := b.CopyRows(nil, 0, b.Rows())
	changed, _ := a.MergeRows(b.Fingerprint(), 0, rows, nil)

	fmt.Println(a.Has([]byte("alice")), a.Has([]byte("bob")), a.Has([]byte("carol")), len(changed))
	// Output: true true false 1
}
