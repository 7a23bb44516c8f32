package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/rmbd/rmbd/client"
)

// printer writes results as text or JSON.
type printer struct {
	w    *bufio.Writer
	json bool
	enc  *json.Encoder
}

func newPrinter(w io.Writer, asJSON bool) *printer {
	bw := bufio.NewWriterSize(w, 64<<10)
	return &printer{w: bw, json: asJSON, enc: json.NewEncoder(bw)}
}

func (p *printer) flush() { p.w.Flush() }

// has prints one line per key and returns exitAbsent if any is absent.
func (p *printer) has(keys []string, present []bool) int {
	code := exitOK
	for i, k := range keys {
		if !present[i] {
			code = exitAbsent
		}
		if p.json {
			p.enc.Encode(struct {
				Key     string `json:"key"`
				Present bool   `json:"present"`
			}{k, present[i]})
			continue
		}
		p.w.WriteString(k)
		if present[i] {
			p.w.WriteString("\ttrue\n")
		} else {
			p.w.WriteString("\tfalse\n")
		}
	}
	return code
}

func (p *printer) added(n int) {
	if p.json {
		p.enc.Encode(map[string]int{"added": n})
	}
}

func (p *printer) peer(target, node string, r client.PeerResult, classic bool) {
	if classic { // nobody answers a classic peer frame
		if p.json {
			p.enc.Encode(map[string]string{"node": node, "peer": target})
			return
		}
		fmt.Fprintf(p.w, "sent %s a classic peer frame for %s (classic nodes do not answer)\n", node, target)
		return
	}
	if p.json {
		p.enc.Encode(map[string]any{"node": node, "peer": target, "addr": r.Addr, "new": r.New})
		return
	}
	if r.New {
		fmt.Fprintf(p.w, "%s challenged %s: it pushes rows there once %s answers\n", node, r.Addr, r.Addr)
	} else {
		fmt.Fprintf(p.w, "%s already pushes its rows to %s\n", node, r.Addr)
	}
}

func (p *printer) pong(pg client.Pong) {
	if p.json {
		p.enc.Encode(map[string]any{
			"rtt_us": pg.RTT.Microseconds(), "name": pg.Name, "addr": pg.Addr,
			"protocol": pg.Version, "fingerprint": pg.Fingerprint.String(),
			"authenticated": pg.Authenticated, "build": pg.Build, "over_capacity": pg.OverCapacity, "fp_over_target": pg.FPHigh,
		})
		return
	}
	fmt.Fprintf(p.w, "pong from %s (%s) in %v, protocol %d, filter %v\n", pg.Name, pg.Addr, pg.RTT, pg.Version, pg.Fingerprint)
	if pg.Build != "" {
		fmt.Fprintf(p.w, "version %s\n", pg.Build)
	}
	if pg.OverCapacity {
		fmt.Fprintln(p.w, "filter: OVER CAPACITY: it holds more keys than it was sized for, and answers true for more absent keys")
	}
	if pg.FPHigh {
		fmt.Fprintln(p.w, "filter: FALSE POSITIVES over twice the rate it was sized for")
	}
	if pg.Authenticated {
		fmt.Fprintln(p.w, "cluster traffic: authenticated (cluster key set)")
	} else {
		fmt.Fprintln(p.w, "cluster traffic: UNAUTHENTICATED (no cluster key): anyone who reaches its ports can write to its filter")
	}
}

func (p *printer) stats(s []client.Stat) {
	if p.json {
		m := make(map[string]any, len(s))
		for _, st := range s {
			m[st.Name] = statValue(st)
		}
		p.enc.Encode(m)
		return
	}
	width := 0
	for _, st := range s {
		width = max(width, len(st.Name))
	}
	for _, st := range s {
		fmt.Fprintf(p.w, "%-*s %d\n", width, st.Name, statValue(st))
	}
}

// statValue is a stat's value: signed for the one that is (the clock's
// offset, sent as its two's complement).
func statValue(st client.Stat) any {
	if st.Name == "clock_offset_us" {
		return int64(st.Value)
	}
	return st.Value
}

// members prints the cluster; owned, if not nil, counts the placed
// filters each member owns.
func (p *printer) members(node string, ms []client.Member, owned map[string]int) {
	if len(ms) == 0 { // a node with membership lists itself first
		if p.json {
			p.enc.Encode(map[string]any{"node": node, "membership": false})
			return
		}
		fmt.Fprintf(p.w, "%s runs without cluster membership (no --join or --gossip-listen): it has no members (rmbd-cli peers lists its static peers)\n", node)
		return
	}
	if p.json {
		for _, m := range ms {
			o := map[string]any{"name": m.Name, "gossip": m.GossipAddr, "data": m.DataAddr,
				"state": m.State, "age_s": m.Age.Seconds(), "fingerprint_match": m.FingerprintMatch, "fingerprint": m.Fingerprint.String()}
			if m.LastSync >= 0 {
				o["last_sync_ms"] = m.LastSync.Milliseconds()
			}
			if owned != nil {
				o["placed_filters"] = owned[m.Name]
			}
			p.enc.Encode(o)
		}
		return
	}
	tw := tabwriter.NewWriter(p.w, 0, 4, 2, ' ', 0)
	head := "NAME\tGOSSIP\tDATA\tSTATE\tFOR\tLAST SYNC\tFILTER"
	if owned != nil {
		head += "\tPLACED"
	}
	fmt.Fprintln(tw, head)
	for i, m := range ms {
		match := "same"
		if !m.FingerprintMatch {
			match = "DIFFERENT: " + m.Fingerprint.String()
		}
		last := "never"
		switch {
		case i == 0:
			last = "(this node)"
		case m.LastSync >= 0:
			last = m.LastSync.Round(time.Millisecond).String() + " ago"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s", m.Name, m.GossipAddr, m.DataAddr, m.State, m.Age, last, match)
		if owned != nil {
			fmt.Fprintf(tw, "\t%d", owned[m.Name])
		}
		fmt.Fprintln(tw)
	}
	tw.Flush()
}

// filters prints filters: a table for list, the fields of one otherwise.
func (p *printer) filters(what string, fs []client.FilterInfo) {
	if p.json {
		for _, f := range fs {
			m := map[string]any{"name": f.Name, "capacity": f.Capacity, "fp_rate": f.FPRate, "bytes": f.Bytes,
				"estimated_keys": f.Keys, "fill": f.Fill, "generation": f.Generation, "created": f.Created.UTC().Format(time.RFC3339),
				"origin": f.Origin, "conflicts": f.Conflicts, "fingerprint": f.Fingerprint.String()}
			if f.Created.UnixMilli() == 0 {
				m["created"] = nil // made by the node's flags
			}
			switch {
			case f.Window > 0:
				m["window_ms"], m["slices"], m["slices_held"] = f.Window.Milliseconds(), f.Slices, f.Stages
			case f.Stages > 0:
				m["stages"], m["stages_capacity"], m["expansion"], m["nonscaling"] = f.Stages, f.StagesCapacity, f.Expansion, f.NonScaling
			}
			if f.Here != "" { // a node that places filters
				m["replicas"], m["here"] = f.Replicas, f.Here
				if f.Replicas > 0 {
					m["owners"] = f.Owners
				}
			}
			p.enc.Encode(m)
		}
		return
	}
	if what == "list" {
		tw := tabwriter.NewWriter(p.w, 0, 4, 2, ' ', 0)
		some := placed(fs)
		head := "NAME\tCAPACITY\tFP RATE\tSTAGES\tEST. KEYS\tFILL\tBYTES"
		if some {
			head += "\tON\tHERE"
		}
		fmt.Fprintln(tw, head)
		for _, f := range fs {
			if f.Here == client.HeldNot { // the owners count its keys
				fmt.Fprintf(tw, "%s\t%d\t%v\t-\t-\t-\t-", f.Name, f.Capacity, f.FPRate)
			} else {
				fmt.Fprintf(tw, "%s\t%d\t%v\t%s\t%d\t%.2f%%\t%d", f.Name, f.Capacity, f.FPRate, stages(f), f.Keys, 100*f.Fill, f.Bytes)
			}
			switch {
			case some && f.Replicas > 0:
				fmt.Fprintf(tw, "\t%s\t%s", strings.Join(f.Owners, ","), f.Here)
			case some:
				fmt.Fprintf(tw, "\tall\t%s", f.Here)
			}
			fmt.Fprintln(tw)
		}
		tw.Flush()
		return
	}
	for _, f := range fs {
		switch {
		case what == "created" && f.Window > 0:
			fmt.Fprintf(p.w, "created %s: capacity %d per window of %v at fp-rate %v\n", f.Name, f.Capacity, f.Window, f.FPRate)
			continue
		case what == "created" && f.Replicas > 0:
			fmt.Fprintf(p.w, "created %s: capacity %d at fp-rate %v, on %d of the members (now %s)\n", f.Name, f.Capacity, f.FPRate, f.Replicas, owners(f))
			continue
		case what == "created":
			fmt.Fprintf(p.w, "created %s: capacity %d at fp-rate %v, %d bytes\n", f.Name, f.Capacity, f.FPRate, f.Bytes)
			continue
		}
		fmt.Fprintf(p.w, "name            %s\ncapacity        %d\nfp rate         %v\n", f.Name, f.Capacity, f.FPRate)
		switch {
		case f.Window > 0:
			fmt.Fprintf(p.w, "window          %s\nslices          %d held now\n", windowLine(f), f.Stages)
		case f.Stages > 0:
			fmt.Fprintf(p.w, "growth          %s\nstages          %d, for %d keys together\n", growth(f), f.Stages, f.StagesCapacity)
		}
		if f.Here != client.HeldNot {
			fmt.Fprintf(p.w, "bytes           %d\nestimated keys  %d\nfill            %.2f%%\n", f.Bytes, f.Keys, 100*f.Fill)
		}
		p.w.WriteString(placementLines(f))
		created := f.Created.UTC().Format(time.RFC3339) + " by " + f.Origin
		if f.Created.UnixMilli() == 0 {
			created = "by " + f.Origin + "'s flags (the node's own filter)"
		}
		fmt.Fprintf(p.w, "generation      %d\ncreated         %s\nfilter          %v\n", f.Generation, created, f.Fingerprint)
		if f.Conflicts > 0 {
			fmt.Fprintf(p.w, "CONFLICT        %d other version(s) of the name, created concurrently with other sizing, still answer has\n", f.Conflicts)
		}
	}
}

// stages is a filter's stages for list: "-" from a node that does not
// say.
func stages(f client.FilterInfo) string {
	if f.Stages == 0 {
		return "-"
	}
	return fmt.Sprint(f.Stages)
}

// growth says how a filter grows, as info shows it.
func growth(f client.FilterInfo) string {
	switch {
	case f.Expansion > 0:
		return fmt.Sprintf("expansion %d: a full filter opens a stage %d times larger", f.Expansion, f.Expansion)
	case f.NonScaling:
		return "NONSCALING: adds are refused once it is full"
	case f.Capacity == 0:
		return "none (classic)"
	}
	return "none: it takes adds past its capacity (and alarms)"
}

// peers prints the node's push targets.
func (p *printer) peers(node string, ps []client.Peer) {
	if p.json {
		for _, x := range ps {
			p.enc.Encode(map[string]any{"addr": x.Addr, "member": x.Member, "verified": x.Verified, "missed": x.Missed, "acked_rounds": x.AckedRounds})
		}
		return
	}
	if len(ps) == 0 {
		fmt.Fprintf(p.w, "%s pushes its rows to nobody: no static peer (--peer, rmbd-cli peer) and no member\n", node)
		return
	}
	tw := tabwriter.NewWriter(p.w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PEER\tKIND\tSTATE\tLAST ACK")
	for _, x := range ps {
		kind, state, last := "static", "verified", "never"
		if x.Member {
			kind = "member"
		}
		if !x.Verified {
			state = "challenged: no rows until it answers"
		}
		if x.AckedRounds >= 0 {
			last = fmt.Sprintf("%d rounds ago", x.AckedRounds)
		}
		if x.Missed > 0 {
			last += fmt.Sprintf(" (%d missed)", x.Missed)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", x.Addr, kind, state, last)
	}
	tw.Flush()
}

func (p *printer) dropped(name string) {
	if p.json {
		p.enc.Encode(map[string]string{"dropped": name})
		return
	}
	fmt.Fprintf(p.w, "dropped %s\n", name)
}
