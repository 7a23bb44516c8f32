package client

import (
	"time"

	"github.com/rmbd/rmbd/auth"
	"github.com/rmbd/rmbd/wire"
)

// Option configures Dial.
type Option func(*options)

type options struct {
	tcp         bool
	classic     bool
	timeout     time.Duration
	retry       time.Duration
	maxDatagram int
	window      int
	keys        []auth.Key
}

func defaults() options {
	return options{
		timeout:     5 * time.Second,
		retry:       50 * time.Millisecond,
		maxDatagram: wire.MaxDatagram,
		window:      64,
	}
}

// WithTCP talks over one pipelined TCP connection instead of UDP.
func WithTCP() Option { return func(o *options) { o.tcp = true } }

// WithClassic speaks only the original rmbd's classic frames. See the
// package doc for what that gives up.
func WithClassic() Option { return func(o *options) { o.classic = true } }

// WithTimeout bounds each call whose context has no deadline (default 5s).
func WithTimeout(d time.Duration) Option { return func(o *options) { o.timeout = d } }

// WithRetryInterval is the first pause before a UDP request is sent again
// (default 50ms); each further pause doubles, up to 250ms.
func WithRetryInterval(d time.Duration) Option { return func(o *options) { o.retry = d } }

// WithMaxDatagram bounds the UDP datagrams the client sends (default
// 1,400 bytes, safe on any path).
func WithMaxDatagram(n int) Option { return func(o *options) { o.maxDatagram = n } }

// WithWindow bounds the requests one call keeps in flight (default 64).
func WithWindow(n int) Option { return func(o *options) { o.window = n } }

// WithClusterKeys seals the requests admins make (peer, filter requests,
// stats, members) with the cluster's keys, the first signing, and opens
// the node's sealed answers: a client holding the key is an admin
// wherever it connects from. Adds, has and ping go plain; without a key
// only peer needs one (from an admin address).
func WithClusterKeys(keys ...auth.Key) Option { return func(o *options) { o.keys = keys } }
