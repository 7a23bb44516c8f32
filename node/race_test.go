//go:build race

package node_test

// raceEnabled: the race detector slows the long in-bubble tests tenfold.
const raceEnabled = true
