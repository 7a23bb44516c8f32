//go:build race

package node

// raceEnabled: the race detector slows every atomic load tenfold or more.
const raceEnabled = true
