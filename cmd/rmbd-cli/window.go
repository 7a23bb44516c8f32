package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/rmbd/rmbd/client"
)

// windowOf reads create's --window and --slices: 0 without a window.
func windowOf(o options, expansionSet bool) (time.Duration, error) {
	switch {
	case o.window == "" && o.slices != 0:
		return 0, errors.New("--slices goes with --window")
	case o.window == "":
		return 0, nil
	case expansionSet:
		return 0, errors.New("--window and --expansion do not go together: a windowed filter does not grow, its capacity is per window")
	case o.layout == "classic":
		return 0, errors.New("--window goes with the blocked layout, not classic")
	case o.slices < 0:
		return 0, fmt.Errorf("--slices %d: it is 0 (the node's default) or more", o.slices)
	}
	d, ok := parseDays(o.window)
	if !ok || d%time.Millisecond != 0 {
		return 0, fmt.Errorf("--window takes a length of time, e.g. 90s, 24h or 7d, in whole milliseconds, not %q", o.window)
	}
	return d, nil
}

// windowLine says how a windowed filter forgets, as info and create
// show it.
func windowLine(f client.FilterInfo) string {
	slice := f.Window / time.Duration(f.Slices)
	return fmt.Sprintf("%v in %d slices of %v: keys are forgotten %v to %v after they were added",
		f.Window, f.Slices, slice, f.Window, f.Window+2*slice)
}
