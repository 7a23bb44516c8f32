package client

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/rmbd/rmbd/wire"
)

// Cluster talks to a cluster through one of its members, the seed, and
// sends the keys of a filter placed on some members (CreatePlacedFilter)
// straight to the first of its owners it can reach, saving the hop the
// seed would forward them through. Any member answers for any filter,
// so every answer is the one the seed would give; going to an owner only
// makes it cheaper, and, the same owner taking a client's adds and
// answering its has, lets a has see an add at once, before the owners
// have replicated it.
//
// It learns the members' data addresses from the seed (Members, an
// admin's request: loopback, --allow-admin or WithClusterKeys), and a
// filter's owners by describing it the first time its keys go; both
// are asked again in the background once a few seconds old, and at
// once when an owner does not answer. The keys of the default filter,
// of a filter on every member, of one whose owners are not known or
// cannot be reached, and every key when the seed does not list its
// members, go to the seed, which forwards them where needed.
//
// A Cluster is safe for concurrent use.
type Cluster struct {
	seed  *Client
	opts  []Option
	self  string        // the seed's name, as the members know it
	every time.Duration // how long what was learnt holds
	life  context.Context
	stop  context.CancelFunc
	bg    sync.WaitGroup // background refreshes

	mu      sync.Mutex
	members map[string]string // alive members' data addresses, by name; nil: no placement
	asked   time.Time         // when the members were last asked
	asking  bool              // the members are being asked
	filters map[string]*where // by filter name
	conns   map[string]*Client
	down    map[string]time.Time // members' addresses a request failed to, and when
	closed  bool
}

// where is what a Cluster learnt of where a filter lives.
type where struct {
	owners []string  // nil: every member, or not known (the seed)
	at     time.Time // when it was learnt
	asking bool      // it is being asked
}

// clusterRefresh is how long a Cluster goes by what it learnt of the
// members and of a filter's owners before asking again.
const clusterRefresh = 5 * time.Second

// maxLearnt bounds the filters a Cluster remembers the owners of; past
// it, the keys of a new name go to the seed until older entries expire.
const maxLearnt = 4096

// NewCluster connects to the member at seed (HOST:PORT), with opts for
// it and every member, pings it and asks it for the members.
func NewCluster(ctx context.Context, seed string, opts ...Option) (*Cluster, error) {
	c, err := Dial(ctx, seed, opts...)
	if err != nil {
		return nil, err
	}
	if c.o.classic {
		c.Close()
		return nil, &OpError{"dial", seed, errors.New("client: classic nodes place no filters: no cluster to talk to")}
	}
	p, err := c.Ping(ctx)
	if err != nil {
		c.Close()
		return nil, err
	}
	life, stop := context.WithCancel(context.Background())
	cl := &Cluster{seed: c, opts: opts, self: p.Name, every: clusterRefresh, life: life, stop: stop,
		filters: map[string]*where{}, conns: map[string]*Client{}, down: map[string]time.Time{}}
	if p.Placement {
		cl.asking = true
		cl.askMembers(ctx)
	}
	return cl, nil
}

// Seed returns the client of the seed: for every request but a filter's
// keys.
func (cl *Cluster) Seed() *Client { return cl.seed }

// Close closes the connections to the members and waits for the
// refreshes running.
func (cl *Cluster) Close() error {
	cl.mu.Lock()
	if cl.closed {
		cl.mu.Unlock()
		return nil
	}
	cl.closed = true
	conns := cl.conns
	cl.conns = map[string]*Client{}
	cl.mu.Unlock()
	cl.stop()
	cl.bg.Wait()
	for _, c := range conns {
		c.Close()
	}
	return cl.seed.Close()
}

// Refresh asks the seed now for the members and for the owners of every
// filter whose keys went so far.
func (cl *Cluster) Refresh(ctx context.Context) error {
	cl.mu.Lock()
	names := make([]string, 0, len(cl.filters))
	for name := range cl.filters {
		names = append(names, name)
	}
	cl.asking = true
	cl.mu.Unlock()
	err := cl.askMembers(ctx)
	for _, name := range names {
		cl.learn(ctx, name)
	}
	return err
}

// ClusterFilter is a filter of a Cluster's: its keys go to an owner.
type ClusterFilter struct {
	cl   *Cluster
	name string
}

// Filter returns the filter called name ("" and "default": the seed's
// own).
func (cl *Cluster) Filter(name string) *ClusterFilter { return &ClusterFilter{cl, name} }

// Name returns the filter's name.
func (f *ClusterFilter) Name() string { return f.cl.seed.Filter(f.name).FilterName() }

// MaxKeyLen is Client.MaxKeyLen of the filter.
func (f *ClusterFilter) MaxKeyLen() int { return f.cl.seed.Filter(f.name).MaxKeyLen() }

// Add is Client.Add to the filter, on an owner.
func (f *ClusterFilter) Add(ctx context.Context, keys ...string) error {
	_, err := f.do(ctx, func(ctx context.Context, c *Client) ([]bool, error) { return nil, c.Add(ctx, keys...) })
	return err
}

// AddNew is Client.AddNew to the filter, on an owner. A request sent
// again to the seed after an owner failed reports false for the keys
// the owner added before it did.
func (f *ClusterFilter) AddNew(ctx context.Context, keys ...string) ([]bool, error) {
	return f.do(ctx, func(ctx context.Context, c *Client) ([]bool, error) { return c.AddNew(ctx, keys...) })
}

// Has is Client.Has of the filter, asking an owner.
func (f *ClusterFilter) Has(ctx context.Context, keys ...string) ([]bool, error) {
	return f.do(ctx, func(ctx context.Context, c *Client) ([]bool, error) { return c.Has(ctx, keys...) })
}

// do runs op against an owner of the filter, given at most half the
// time left, and, if the owner cannot serve it, against the seed: every
// request is idempotent.
func (f *ClusterFilter) do(ctx context.Context, op func(ctx context.Context, c *Client) ([]bool, error)) ([]bool, error) {
	cl := f.cl
	ctx, cancel := cl.seed.withTimeout(ctx)
	defer cancel()
	if c, addr := cl.target(ctx, f.name); c != nil {
		deadline, _ := ctx.Deadline()
		octx, ocancel := context.WithTimeout(ctx, time.Until(deadline)/2)
		out, err := op(octx, c.Filter(f.name))
		ocancel()
		if err == nil || !cl.failed(ctx, f.name, addr, err) {
			return out, err
		}
	}
	return op(ctx, cl.seed.Filter(f.name))
}

// target returns the client of the first owner of the filter name that
// is not known to be down, and its address; nil when the keys go to the
// seed. The first use of a name describes it; a stale entry, or stale
// members, are asked again in the background.
func (cl *Cluster) target(ctx context.Context, name string) (*Client, string) {
	if name == "" || name == wire.DefaultFilter || cl.seed.Filter(name).checkFilter() != nil {
		return nil, "" // the seed's own, or a name the seed's client refuses
	}
	cl.mu.Lock()
	if len(cl.members) < 2 || cl.closed {
		cl.mu.Unlock()
		return nil, "" // no placement, or a member alone: the seed holds everything
	}
	if !cl.asking && time.Since(cl.asked) >= cl.every {
		cl.asking = true
		cl.spawn(func(ctx context.Context) { cl.askMembers(ctx) })
	}
	w := cl.filters[name]
	switch {
	case w == nil && len(cl.filters) >= maxLearnt && !cl.forget():
		cl.mu.Unlock()
		return nil, ""
	case w == nil:
		cl.filters[name] = &where{asking: true}
		cl.mu.Unlock()
		cl.learn(ctx, name)
		cl.mu.Lock()
		w = cl.filters[name]
	case !w.asking && time.Since(w.at) >= cl.every:
		w.asking = true
		cl.spawn(func(ctx context.Context) { cl.learn(ctx, name) })
	}
	addr, seed := cl.ownerAddr(w)
	cl.mu.Unlock()
	if addr == "" || seed {
		return nil, ""
	}
	c, err := cl.conn(ctx, addr)
	if err != nil {
		cl.markDown(addr)
		return nil, ""
	}
	return c, addr
}

// ownerAddr returns the address of w's first owner that is not down, and
// whether that owner is the seed. Callers hold cl.mu.
func (cl *Cluster) ownerAddr(w *where) (string, bool) {
	if w == nil {
		return "", false
	}
	for _, o := range w.owners {
		if o == cl.self {
			return "", true
		}
		addr, ok := cl.members[o]
		if !ok {
			continue
		}
		if t, ok := cl.down[addr]; ok && time.Since(t) < cl.every {
			continue
		}
		return addr, false
	}
	return "", false
}

// forget drops the entries learnt longer ago than the refresh, and
// reports whether that made room. Callers hold cl.mu.
func (cl *Cluster) forget() bool {
	for name, w := range cl.filters {
		if !w.asking && time.Since(w.at) >= cl.every {
			delete(cl.filters, name)
		}
	}
	return len(cl.filters) < maxLearnt
}

// failed reports whether a request an owner at addr failed with err
// goes to the seed: not when the caller's context ended, nor when the
// owner answered what the seed would (the request's or the filter's
// own refusal). An owner that did not answer is left alone for a while,
// and the members asked again; the filter's owners are asked again.
func (cl *Cluster) failed(ctx context.Context, name, addr string, err error) bool {
	var se *ServerError
	switch {
	case ctx.Err() != nil, errors.Is(err, ErrKeyTooLong):
		return false // (ErrClosed: a member gone, its client closed; the seed's says if the Cluster is)
	case errors.As(err, &se):
		if se.Code == wire.CodeRefused || se.Code == wire.CodeTooLarge || se.Code == wire.CodeBadFrame {
			return false
		}
	default:
		cl.markDown(addr)
	}
	cl.mu.Lock()
	if w := cl.filters[name]; w != nil && !w.asking {
		w.at = time.Time{} // stale: asked again on the next use
	}
	cl.mu.Unlock()
	return true
}

// markDown leaves the member at addr alone for a while, and has the
// members asked again.
func (cl *Cluster) markDown(addr string) {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	cl.down[addr] = time.Now()
	if !cl.asking {
		cl.asking = true
		cl.spawn(func(ctx context.Context) { cl.askMembers(ctx) })
	}
}

// conn returns the client of the member at addr, dialled the first time.
func (cl *Cluster) conn(ctx context.Context, addr string) (*Client, error) {
	cl.mu.Lock()
	c := cl.conns[addr]
	cl.mu.Unlock()
	if c != nil {
		return c, nil
	}
	c, err := Dial(ctx, addr, cl.opts...) // over TCP, a connection: not under the lock
	if err != nil {
		return nil, err
	}
	cl.mu.Lock()
	defer cl.mu.Unlock()
	if cl.closed {
		c.Close()
		return nil, ErrClosed
	}
	if other := cl.conns[addr]; other != nil {
		c.Close()
		return other, nil
	}
	cl.conns[addr] = c
	return c, nil
}

// spawn runs f in the background, bounded by the seed's timeout and
// ended by Close. Callers hold cl.mu.
func (cl *Cluster) spawn(f func(ctx context.Context)) {
	if cl.closed {
		return
	}
	cl.bg.Add(1)
	go func() {
		defer cl.bg.Done()
		ctx, cancel := context.WithTimeout(cl.life, cl.seed.o.timeout)
		defer cancel()
		f(ctx)
	}()
}

// askMembers asks the seed for the members. A seed that refuses (the
// client is not an admin there) leaves every key to it; one that does
// not answer leaves the members as they were known. Members gone have
// their connections closed.
func (cl *Cluster) askMembers(ctx context.Context) error {
	ms, err := cl.seed.Members(ctx)
	var gone []*Client
	cl.mu.Lock()
	cl.asking, cl.asked = false, time.Now()
	var se *ServerError
	switch {
	case err == nil:
		cl.members = map[string]string{}
		for _, m := range ms {
			if m.State == "alive" && m.DataAddr != "" {
				cl.members[m.Name] = m.DataAddr
			}
		}
	case errors.As(err, &se):
		cl.members = map[string]string{}
	}
	for addr, c := range cl.conns {
		if !cl.listed(addr) {
			delete(cl.conns, addr)
			gone = append(gone, c)
		}
	}
	for addr, t := range cl.down {
		if time.Since(t) >= cl.every {
			delete(cl.down, addr)
		}
	}
	cl.mu.Unlock()
	for _, c := range gone {
		c.Close()
	}
	return err
}

// listed reports whether addr is a member's. Callers hold cl.mu.
func (cl *Cluster) listed(addr string) bool {
	for _, a := range cl.members {
		if a == addr {
			return true
		}
	}
	return false
}

// learn describes the filter name and records its owners; a filter on
// every member, or one that could not be described, has none: its keys
// go to the seed until it is asked again.
func (cl *Cluster) learn(ctx context.Context, name string) {
	f, err := cl.seed.DescribeFilter(ctx, name)
	w := &where{at: time.Now()}
	if err == nil && f.Replicas > 0 {
		w.owners = f.Owners
	}
	cl.mu.Lock()
	cl.filters[name] = w
	cl.mu.Unlock()
}
