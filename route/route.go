// Package route serves a request for a filter placed on some members
// (package placement) from any member: it decides which members to ask,
// in what order, and when the answer is good enough.
//
// A has asks one member: this node when it owns the filter and holds its
// rows, else the members in rank order — owners first, then those that
// held the filter before the last change of membership — skipping those
// that answer they do not hold it, or are still filling it. Rows only
// grow, so any one that answers is right about every add acknowledged
// to it and to the W−1 others a writer waited for.
//
// An add goes to W owners at once — this node first when it is one —
// and is acknowledged once W of them have it; an owner that fails is
// replaced by the next in rank, so that a member down does not refuse
// writes while W members still answer. The others get the rows by
// replication.
//
// Requests a member forwards carry wire.FlagForwarded: the member asked
// serves them itself, or answers wire.CodeNotHere; it never forwards them
// again.
package route

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/rmbd/rmbd/internal/mutate"
	"github.com/rmbd/rmbd/wire"
)

// Member is a member to ask: its name and data address, and whether it
// is this node.
type Member struct {
	Name string
	Addr netip.AddrPort
	Self bool
}

// Forwarder sends a request to a member and returns its answer
// (package forward).
type Forwarder interface {
	Do(ctx context.Context, addr netip.AddrPort, name string, req, dst []byte) ([]byte, error)
}

// Local serves a request here: it appends the answer to dst, or reports
// false when this node does not hold the filter's rows (for a has: holds
// them ready).
type Local func(dst []byte) ([]byte, bool)

// Plan is one request to route.
type Plan struct {
	// Filter is the filter's name.
	Filter string
	// Members are the members alive, ranked for the filter.
	Members []Member
	// Owners is how many of the first Members own the filter.
	Owners int
	// Quorum is how many owners an acknowledged add waits for (at least
	// 1, at most Owners).
	Quorum int
	// Tries bounds the members asked beyond the owners (for a has, the
	// members in all; for an add, the replacements of owners that failed).
	Tries int
	// Unreached, when not nil, is told of each member a forward did not
	// reach (not those that answered no), so that the caller asks it last
	// for a while.
	Unreached func(m Member)
}

// ErrUnanswered reports a request no member served; it wraps each
// member's failure.
var ErrUnanswered = errors.New("no owner answered")

// Has serves a has batch (req, flagged forwarded by the caller) and
// appends the answer to dst: this node's, when it owns the filter and
// holds it ready, else the first member's in rank order that does.
func Has(ctx context.Context, p Plan, local Local, fwd Forwarder, req, dst []byte) ([]byte, error) {
	for _, m := range p.Members[:min(p.Owners, len(p.Members))] {
		if m.Self {
			if out, ok := local(dst); ok {
				return out, nil
			}
		}
	}
	var fails failures
	for i, m := range p.Members {
		if i >= max(p.Owners, p.Tries) {
			break
		}
		if m.Self {
			continue // asked above, or not held here: rows held beyond the owners may be stale
		}
		out, err := ask(ctx, fwd, m, p.Filter, req, dst)
		if err == nil {
			return out, nil
		}
		fails.add(p, m, err)
	}
	return dst, fails.err(p.Filter, 1)
}

// Add serves an add batch (req, flagged forwarded by the caller) on
// Quorum owners at once and appends the answer to dst: this node's when
// it is one of them, else the first owner's. An owner that fails is
// replaced by the next member in rank.
func Add(ctx context.Context, p Plan, local Local, fwd Forwarder, req, dst []byte) ([]byte, error) {
	want := max(1, min(p.Quorum, p.Owners))
	if mutate.QuorumOfOne {
		want = 1
	}
	order := ownersFirst(p)
	order = order[:min(len(order), p.Owners+p.Tries)]
	type result struct {
		m   Member
		out []byte
		err error
	}
	results := make(chan result, len(order))
	var fails failures
	var answer []byte
	got, inflight, next := 0, 0, 0
	for {
		for got+inflight < want && next < len(order) { // ask as many more as are missing
			m := order[next]
			next++
			if !m.Self {
				inflight++
				go func() {
					out, err := ask(ctx, fwd, m, p.Filter, req, nil)
					results <- result{m, out, err}
				}()
				continue
			}
			if out, ok := local(dst); ok {
				answer, dst, got = out, out, got+1
			} else {
				fails.add(p, m, errors.New("not held here"))
			}
		}
		if inflight == 0 {
			break
		}
		r := <-results
		inflight--
		switch {
		case r.err != nil:
			fails.add(p, r.m, r.err)
		case answer == nil:
			answer, got = append(dst, r.out...), got+1
		default:
			got++
		}
	}
	if got < want {
		return dst, fails.err(p.Filter, want-got)
	}
	return answer, nil
}

// ownersFirst orders the members an add goes to: this node first when
// it owns the filter, then the other owners, then the rest in rank.
func ownersFirst(p Plan) []Member {
	out := make([]Member, 0, len(p.Members))
	owner := false
	for _, m := range p.Members[:min(p.Owners, len(p.Members))] {
		if m.Self {
			out, owner = append(out, m), true
		}
	}
	for _, m := range p.Members {
		if !m.Self || !owner {
			out = append(out, m)
		}
	}
	return out
}

// ask forwards req to m and returns its answer; an error frame in answer
// is an error (ErrNotHere for wire.CodeNotHere).
func ask(ctx context.Context, fwd Forwarder, m Member, filter string, req, dst []byte) ([]byte, error) {
	start := len(dst)
	out, err := fwd.Do(ctx, m.Addr, filter, req, dst)
	if err != nil {
		return dst, err
	}
	ans := out[start:]
	if len(ans) == 0 || wire.Type(ans[0]) != wire.TypeError {
		return out, nil
	}
	e, err := wire.DecodeError(ans)
	switch {
	case err != nil:
		return dst, fmt.Errorf("an error frame that did not decode: %w", err)
	case e.Code == wire.CodeNotHere:
		return dst, ErrNotHere
	}
	return out, &Refusal{Code: e.Code, Msg: string(e.Msg), Frame: ans}
}

// ErrNotHere is a member's answer that it does not hold the filter (or,
// for a has, is still filling it).
var ErrNotHere = errors.New("does not hold the filter (yet)")

// Refusal is a member's error frame: the request reached it and it said
// no (the filter is full, its disk cannot be written…). Its frame is
// relayed as it is when no other member serves the request.
type Refusal struct {
	Code  uint16
	Msg   string
	Frame []byte
}

func (r *Refusal) Error() string { return fmt.Sprintf("%s: %s", wire.CodeName(r.Code), r.Msg) }

// failures are the members that did not serve a request, and why.
type failures struct {
	who  []string
	errs []error
}

func (f *failures) add(p Plan, m Member, err error) {
	f.who = append(f.who, fmt.Sprintf("%s (%v): %v", m.Name, m.Addr, err))
	f.errs = append(f.errs, err)
	var no *Refusal
	if p.Unreached != nil && !m.Self && !errors.Is(err, ErrNotHere) && !errors.As(err, &no) {
		p.Unreached(m)
	}
}

// err reports the failures, short of need answers.
func (f *failures) err(filter string, need int) error {
	if len(f.who) == 0 {
		return fmt.Errorf("filter %s: %w: no member holds it", filter, ErrUnanswered)
	}
	return &unanswered{msg: fmt.Sprintf("filter %s: %v (%d more needed): %s", filter, ErrUnanswered, need, strings.Join(f.who, "; ")),
		errs: append([]error{ErrUnanswered}, f.errs...)}
}

// unanswered is a request no member served: it says why each failed,
// once, and wraps each failure.
type unanswered struct {
	msg  string
	errs []error
}

func (u *unanswered) Error() string   { return u.msg }
func (u *unanswered) Unwrap() []error { return u.errs }
