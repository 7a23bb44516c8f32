package node

import (
	"fmt"

	"github.com/rmbd/rmbd/registry"
)

// Health and capacity: whether the node serves, whether it is ready to
// be sent traffic, and whether its filters still answer as they were
// sized (each filter's alarms, package registry).

// Health says whether the node serves and whether it is ready.
type Health struct {
	// Serving: the node is running and not shutting down.
	Serving bool
	// Ready: serving, its filters loaded, and, with Join, joined to the
	// cluster and the first pull from it done.
	Ready bool
	// Why says what readiness waits for ("" when ready).
	Why string
}

// Health reports whether the node serves and is ready.
func (n *Node) Health() Health {
	select {
	case <-n.life.ready:
	default:
		return Health{Why: "starting"}
	}
	if n.life.ctx.Err() != nil {
		return Health{Why: "shutting down"}
	}
	h := Health{Serving: true}
	switch {
	case len(n.cfg.Join) > 0 && n.repl.Members() == 0:
		h.Why = "joining: no member of the cluster reached yet"
	case len(n.cfg.Join) > 0 && !n.repairs.joined.Load():
		h.Why = "joining: the first pull from the cluster is not done"
	case n.unwritable() != "":
		h.Why = n.unwritable()
	case n.reg.ClockNote() != "":
		h.Why = n.reg.ClockNote()
	default:
		h.Ready = true
	}
	return h
}

// unwritable says which filter's data directory cannot be written, and
// why; "" while every one can.
func (n *Node) unwritable() string {
	u := n.reg.Unwritable()
	if len(u) == 0 {
		return ""
	}
	return fmt.Sprintf("cannot write the data directory (filter %s, %d in all): %v; acknowledged adds are refused until it can", u[0].Filter.Name(), len(u), u[0].Err)
}

// alarmsOf returns f's capacity alarms as of the last refresh.
func alarmsOf(f *registry.Filter) Alarms {
	if st := f.Stats(); st != nil {
		return st.Alarms
	}
	return Alarms{}
}
