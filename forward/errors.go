package forward

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// Sentinel errors. Do wraps each in an *Error naming the member.
var (
	// ErrBusy refuses a forward when MaxInFlight forwards already wait on
	// the member: the caller answers busy rather than queue.
	ErrBusy = errors.New("forward: too many forwards in flight")
	// ErrClosed fails every forward once Close was called.
	ErrClosed = errors.New("forward: forwarder closed")
	// ErrTimeout fails a forward that had no answer by its deadline.
	ErrTimeout = errors.New("forward: no answer in time")
	// ErrConnClosed fails the forwards waiting on a connection that
	// closed or failed (the cause is wrapped too).
	ErrConnClosed = errors.New("forward: connection closed")
	// ErrBadReply fails the forwards of a connection whose member sent a
	// frame that did not decode or could not be opened, or the one
	// forward whose answer was not an answer to its request.
	ErrBadReply = errors.New("forward: reply did not decode")
	// ErrRequest refuses a request that is not an extended request frame
	// carrying a request id, or that cannot be addressed to the name.
	ErrRequest = errors.New("forward: not a forwardable request")
	// ErrIdle closes a connection that no forward used for IdleTimeout;
	// forwards never see it (they dial again).
	ErrIdle = errors.New("forward: connection idle")
)

// Error is a failed forward: the member, the step that failed (dial,
// write, read, wait, reply, request, admit, idle) and why.
type Error struct {
	Addr netip.AddrPort
	Op   string
	Err  error
}

// Error renders e.g. "forward to 10.0.0.2:7000: dial: connection refused".
// A sentinel of this package is rendered without its "forward: " prefix,
// which the message already starts with.
func (e *Error) Error() string {
	return fmt.Sprintf("forward to %v: %s: %s", e.Addr, e.Op, strings.TrimPrefix(e.Err.Error(), "forward: "))
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Timeout reports whether the forward failed for want of time: its own
// deadline, its context's, or a dial or write that timed out.
func (e *Error) Timeout() bool {
	var t interface{ Timeout() bool }
	return errors.Is(e.Err, ErrTimeout) || errors.Is(e.Err, context.DeadlineExceeded) ||
		errors.As(e.Err, &t) && t.Timeout()
}
