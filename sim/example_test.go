package sim_test

import (
	"fmt"
	"strings"

	"github.com/rmbd/rmbd/sim"
)

// A seed draws a whole history; Keep leaves only some of its faults (a
// shrunk replay). sim.Run runs one inside a testing/synctest bubble (see
// TestSim).
func ExampleNewPlan() {
	p := sim.NewPlan(42)
	fmt.Println(strings.SplitN(p.String(), "\n", 2)[0])
	fmt.Println(len(p.Keep([]int{0}).Faults), "fault kept:", p.Faults[0])
	// Output:
	// seed 42: 3 members, fsync [everysec everysec always], keyed true, 17s, tombstones kept 11s, 278 requests
	// 1 fault kept: isolate@4.7s n1 for 3.55s
}
