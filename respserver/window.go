package respserver

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/rmbd/rmbd/gossip"
	"github.com/rmbd/rmbd/registry"
)

// window is BF.RESERVE's WINDOW and SLICES options, an rmbd extension: a
// filter that holds capacity items per window and forgets older ones.
type window struct {
	length time.Duration
	slices int
}

// option reads WINDOW's seconds (a decimal: 0.5 is 500 ms) or SLICES's
// count, or returns the error to answer.
func (w *window) option(name string, v []byte) string {
	if strings.EqualFold(name, "SLICES") {
		n, err := strconv.ParseInt(string(v), 10, 64)
		if err != nil || n < 1 || n > gossip.MaxSlices {
			return fmt.Sprintf("ERR bad slices (1 to %d)", gossip.MaxSlices)
		}
		w.slices = int(n)
		return ""
	}
	secs, err := strconv.ParseFloat(string(v), 64)
	most := gossip.MaxWindow.Seconds()
	if err != nil || !(secs >= 0.001 && secs <= most) || math.IsNaN(secs) { // whole milliseconds: 0.0001 is no window
		return fmt.Sprintf("ERR bad window (seconds, at least 0.001 and at most %v)", most)
	}
	w.length = time.Duration(math.Round(secs*1000)) * time.Millisecond
	return ""
}

// apply makes s windowed as the options say; a windowed filter does not
// grow, so EXPANSION is refused beside WINDOW and NONSCALING is implied.
func (w window) apply(s *registry.Sizing, g growth) string {
	switch {
	case w.length == 0 && w.slices != 0:
		return "ERR SLICES needs a WINDOW"
	case w.length == 0:
		return ""
	case g.set:
		return "ERR a filter with a WINDOW does not expand (its capacity is per window)"
	}
	s.Window, s.Slices, s.Expansion = w.length, w.slices, 0
	if err := s.Check(); err != nil {
		return "ERR " + err.Error()
	}
	return ""
}
