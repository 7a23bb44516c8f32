//go:build race

package store

// raceEnabled: the race detector slows byte loops tenfold or more.
const raceEnabled = true
