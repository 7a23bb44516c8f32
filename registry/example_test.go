package registry_test

import (
	"fmt"
	"time"

	"github.com/rmbd/rmbd/filter"
	"github.com/rmbd/rmbd/registry"
	"github.com/rmbd/rmbd/store"
)

func Example() {
	reg, err := registry.Open(registry.Config{Node: "n1", Default: registry.Sizing{Layout: filter.Blocked, Capacity: 1000, FPRate: 0.01},
		MaxFilters: 16, TombstoneTTL: time.Hour})
	if err != nil {
		panic(err)
	}
	defer reg.Close()

	// A mutation decides and returns a plan; Apply does the I/O, outside
	// any lock, and publishes the filter.
	plan, err := reg.Create("users", registry.Sizing{Layout: filter.Blocked, Capacity: 10_000, FPRate: 0.001})
	if err != nil {
		panic(err)
	}
	users := reg.Apply(plan).Filter
	fresh, _, _ := users.Add([][]byte{[]byte("alice"), []byte("bob")}, make([]byte, 1), &store.Scratch{})

	vs := reg.Lookup([]byte("users")) // lock-free
	fmt.Println(fresh, vs.Has([]byte("alice")), vs.Has([]byte("carol")), len(plan.Broadcast), reg.Names())
	// Output: 2 true false 1 [users]
}
