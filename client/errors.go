package client

import (
	"errors"
	"fmt"

	"github.com/rmbd/rmbd/wire"
)

// Errors a Client returns, usually wrapped in an *OpError.
var (
	// ErrKeyTooLong: the key does not fit a frame of the chosen transport.
	ErrKeyTooLong = errors.New("client: key too long")
	// ErrUnreachable: nothing answers at the node's address.
	ErrUnreachable = errors.New("client: node unreachable")
	// ErrTimeout: no answer before the context's deadline or the timeout.
	ErrTimeout = errors.New("client: timed out")
	// ErrClosed: the Client was closed.
	ErrClosed = errors.New("client: closed")
	// ErrProtocol: the node answered something that is not a valid reply.
	ErrProtocol = errors.New("client: bad reply")
)

// OpError says which operation against which node failed, and why.
type OpError struct {
	Op   string // "add", "has", "peer", "ping", "stats", "dial"
	Addr string
	Err  error
}

// Error renders e.g. "has 127.0.0.1:8000: client: timed out".
func (e *OpError) Error() string { return fmt.Sprintf("%s %s: %v", e.Op, e.Addr, e.Err) }

// Unwrap returns the cause.
func (e *OpError) Unwrap() error { return e.Err }

// Timeout reports whether the operation timed out.
func (e *OpError) Timeout() bool { return errors.Is(e.Err, ErrTimeout) }

// ServerError is an error frame a node answered with.
type ServerError struct {
	Code uint16
	Msg  string
}

// Error renders the node's message and code, e.g. "node refused
// (forbidden): peer: this address may not ask (--allow-admin)".
func (e *ServerError) Error() string {
	if e.Msg == "" { // cut to fit the request's size (UDP)
		if hint := codeHints[e.Code]; hint != "" {
			return fmt.Sprintf("node refused (%s): %s", wire.CodeName(e.Code), hint)
		}
		return fmt.Sprintf("node refused (%s)", wire.CodeName(e.Code))
	}
	return fmt.Sprintf("node refused (%s): %s", wire.CodeName(e.Code), e.Msg)
}

// codeHints say what a code means when the node's own message did not
// fit the reply (a small request over UDP).
var codeHints = map[uint16]string{
	wire.CodeProtected:  "it answers loopback alone: give it a cluster key or allow rules, or start it with --protected-mode=no",
	wire.CodeUnwritable: "it cannot write its log to disk; acknowledged adds are refused until it can",
}
