package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/rmbd/rmbd/client"
	"golang.org/x/term"
)

// watch shows the node's figures every o.watch until ctx ends (Ctrl-C):
// rates per second over the last interval, and the filter's state. On a
// terminal the view is redrawn in place; otherwise, or with --json, one
// line per interval.
func watch(ctx context.Context, c *client.Client, o options, w io.Writer) error {
	f, ok := w.(*os.File)
	redraw := ok && term.IsTerminal(int(f.Fd())) && !o.json
	t := time.NewTicker(o.watch)
	defer t.Stop()
	var prev map[string]uint64
	var prevAt time.Time
	for {
		s, err := c.Stats(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil // interrupted
			}
			return err
		}
		now := time.Now()
		cur := make(map[string]uint64, len(s))
		for _, st := range s {
			cur[st.Name] = st.Value
		}
		v := view(cur, prev, now.Sub(prevAt))
		prev, prevAt = cur, now
		switch {
		case o.json:
			json.NewEncoder(w).Encode(v)
		case redraw:
			fmt.Fprint(w, "\033[H\033[2J")
			v.screen(w, o.addr, now)
		default:
			v.line(w, now)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// watchView is one refresh of the watch.
type watchView struct {
	AddsPerSec    float64 `json:"adds_per_s"`
	HasPerSec     float64 `json:"has_per_s"`
	SyncRowsIn    float64 `json:"sync_rows_in_per_s"`
	SyncRowsOut   float64 `json:"sync_rows_out_per_s"`
	Fill          float64 `json:"fill"`
	EstimatedKeys uint64  `json:"estimated_keys"`
	Capacity      uint64  `json:"capacity"`
	FPRate        float64 `json:"estimated_fp_rate"`
	Peers         uint64  `json:"peers"`
	OpenConns     uint64  `json:"tcp_open_conns"`
	Dropped       float64 `json:"dropped_per_s"`
	OverCapacity  bool    `json:"over_capacity"`
	first         bool
}

func view(cur, prev map[string]uint64, d time.Duration) watchView {
	rate := func(name string) float64 {
		if prev == nil || d <= 0 || cur[name] < prev[name] {
			return 0
		}
		return float64(cur[name]-prev[name]) / d.Seconds()
	}
	v := watchView{
		AddsPerSec: rate("adds"), HasPerSec: rate("has_queries"),
		SyncRowsIn: rate("sync_rows_merged"), SyncRowsOut: rate("sync_rows_sent"),
		EstimatedKeys: cur["estimated_keys"], Capacity: cur["capacity"],
		FPRate: float64(cur["estimated_fp_ppm"]) / 1e6, Peers: cur["peers"], OpenConns: cur["tcp_open_conns"],
		Dropped: rate("dropped"), OverCapacity: cur["over_capacity"] == 1, first: prev == nil,
	}
	if cur["total_bits"] > 0 {
		v.Fill = float64(cur["set_bits"]) / float64(cur["total_bits"])
	}
	return v
}

func (v watchView) screen(w io.Writer, addr string, now time.Time) {
	fmt.Fprintf(w, "rmbd %s — %s (Ctrl-C to stop)\n\n", addr, now.Format("15:04:05"))
	if v.first {
		fmt.Fprintf(w, "  (rates from the next refresh on)\n")
	}
	fmt.Fprintf(w, "  adds/s        %12.0f\n", v.AddsPerSec)
	fmt.Fprintf(w, "  has/s         %12.0f\n", v.HasPerSec)
	fmt.Fprintf(w, "  sync rows/s   %12.0f in %12.0f out\n", v.SyncRowsIn, v.SyncRowsOut)
	fmt.Fprintf(w, "  dropped/s     %12.0f\n", v.Dropped)
	fmt.Fprintf(w, "  fill          %11.2f%%\n", 100*v.Fill)
	keys := fmt.Sprintf("%12d", v.EstimatedKeys)
	if v.Capacity > 0 {
		keys += fmt.Sprintf(" of %d (%.0f%%)", v.Capacity, 100*float64(v.EstimatedKeys)/float64(v.Capacity))
	}
	fmt.Fprintf(w, "  est. keys     %s\n", keys)
	fmt.Fprintf(w, "  est. FP rate  %12.6f\n", v.FPRate)
	fmt.Fprintf(w, "  peers         %12d\n", v.Peers)
	fmt.Fprintf(w, "  TCP conns     %12d\n", v.OpenConns)
	if v.OverCapacity {
		fmt.Fprintf(w, "\n  WARNING: more keys than the filter was sized for\n")
	}
}

func (v watchView) line(w io.Writer, now time.Time) {
	warn := ""
	if v.OverCapacity {
		warn = " OVER CAPACITY"
	}
	fmt.Fprintf(w, "%s adds/s %.0f has/s %.0f sync_in/s %.0f sync_out/s %.0f dropped/s %.0f fill %.2f%% keys %d fp %.6f peers %d conns %d%s\n",
		now.Format("15:04:05"), v.AddsPerSec, v.HasPerSec, v.SyncRowsIn, v.SyncRowsOut, v.Dropped,
		100*v.Fill, v.EstimatedKeys, v.FPRate, v.Peers, v.OpenConns, warn)
}
