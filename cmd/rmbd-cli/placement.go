package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/rmbd/rmbd/client"
)

// Filters placed on some members: create --replicas R, where info and
// list say they live, members how many each holds, and add and has
// --cluster sending keys to an owner.

// checkReplicas refuses create's --replicas where it cannot go.
func checkReplicas(o options) error {
	switch {
	case o.replicas == 0:
		return nil
	case o.replicas < 0 || o.replicas > 255:
		return fmt.Errorf("--replicas %d: a filter lives on 1 to 255 members", o.replicas)
	case o.window != "":
		return errors.New("--replicas and --window do not go together: a windowed filter lives on every member (each keeps its slices of time)")
	case o.layout == "classic":
		return errors.New("--replicas goes with the blocked layout, not classic")
	}
	return nil
}

// keyer adds and asks keys: of a node's filter, or of a filter of the
// cluster (--cluster), on one of its owners.
type keyer interface {
	Add(ctx context.Context, keys ...string) error
	Has(ctx context.Context, keys ...string) ([]bool, error)
	MaxKeyLen() int
}

// helds says how the node asked holds a filter, as info shows it.
var helds = map[client.Held]string{
	client.HeldReady:   "ready",
	client.HeldNot:     "no: its keys are forwarded to the owners, who count them",
	client.HeldFilling: "filling: it came to own the filter, and its rows are coming from a member that held it; has asks the other owners meanwhile",
	client.HeldLeaving: "leaving: it no longer owns the filter, and keeps it, answering, for the handoff grace",
}

// placementLines are info's lines on a placed filter: where it lives and
// how the node asked holds it.
func placementLines(f client.FilterInfo) string {
	if f.Replicas == 0 {
		return ""
	}
	return fmt.Sprintf("replicas        %d (now %s)\nheld here       %s\n", f.Replicas, owners(f), helds[f.Here])
}

// owners lists a placed filter's owners.
func owners(f client.FilterInfo) string {
	if len(f.Owners) == 0 {
		return "no member yet"
	}
	return strings.Join(f.Owners, ", ")
}

// placed reports whether any of fs is placed on some members.
func placed(fs []client.FilterInfo) bool {
	for _, f := range fs {
		if f.Replicas > 0 {
			return true
		}
	}
	return false
}

// owned counts, per member, the placed filters it owns; nil when the
// node places none (or does not list them to this client).
func owned(ctx context.Context, c *client.Client) map[string]int {
	fs, err := c.Filters(ctx)
	if err != nil || !placed(fs) {
		return nil
	}
	out := map[string]int{}
	for _, f := range fs {
		for _, o := range f.Owners {
			out[o]++
		}
	}
	return out
}
