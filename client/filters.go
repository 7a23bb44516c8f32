package client

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/rmbd/rmbd/filter"
	"github.com/rmbd/rmbd/wire"
)

// Filter returns a client for the node's filter called name: Add, AddNew
// and Has address it; everything else is as c. It shares c's connection
// (closing either closes both). "" and "default" are the filter the
// node's flags make, the one c addresses. Classic nodes hold one filter.
func (c *Client) Filter(name string) *Client {
	d := *c
	d.filter = name
	if name == wire.DefaultFilter {
		d.filter = ""
	}
	return &d
}

// FilterName returns the filter the client addresses ("default" for the
// node's own).
func (c *Client) FilterName() string {
	if c.filter == "" {
		return wire.DefaultFilter
	}
	return c.filter
}

// named wraps a batch for the filter the client addresses.
func (c *Client) named(frame []byte) ([]byte, error) {
	if c.filter == "" {
		return frame, nil
	}
	return wire.AppendNamed(nil, c.filter, frame)
}

// namedOverhead is what addressing a named filter adds to a frame.
func (c *Client) namedOverhead() int {
	if c.filter == "" {
		return 0
	}
	return wire.HeaderSize + 1 + len(c.filter)
}

// checkFilter refuses a filter name no node takes, before anything is
// sent.
func (c *Client) checkFilter() error {
	switch {
	case c.filter == "":
		return nil
	case c.o.classic:
		return errors.New("client: classic nodes hold one filter: no filter names")
	case !wire.ValidFilterName(c.filter):
		return fmt.Errorf("client: filter name %q: 1 to %d bytes of UTF-8, no control characters", c.filter, wire.MaxFilterName)
	}
	return nil
}

// FilterInfo describes a named filter.
type FilterInfo struct {
	Name     string
	Capacity uint64  // keys it was sized for (0: classic)
	FPRate   float64 // false-positive rate at capacity (0: classic)
	Bytes    uint64  // memory its bits take
	// Keys estimates the distinct keys it holds, and Fill the share of
	// its bits set, as of the node's last refresh (about a second).
	Keys        uint64
	Fill        float64
	Fingerprint filter.Fingerprint
	Generation  uint64    // 1 at first, one more after each drop and re-creation
	Created     time.Time // when the version that takes adds was created
	Origin      string    // the node that created it
	// Conflicts counts other versions of the name, created concurrently
	// with other sizing: has answers from them too.
	Conflicts int
	// Stages is how many stages the filter has (a growing filter opens
	// one each time the newest is full), 0 from a node that does not say
	// (then Bytes is its first stage's); StagesCapacity the keys they
	// hold together before the next opens. Expansion is how much larger
	// each stage is than the one before, 0 for a filter that does not
	// grow; NonScaling marks one made not to grow, which refuses adds
	// once full.
	Stages         int
	StagesCapacity uint64
	Expansion      int
	NonScaling     bool
	// Window is how long a windowed filter remembers a key (0: for good),
	// Slices how many slices of time it keeps them in; Capacity is then
	// the keys of one window, Keys those of the last window, and Stages
	// the slices held now.
	Window time.Duration
	Slices int
	// Replicas is how many members hold a filter placed on some of them
	// (0: every member), Owners those members, by name, and Here how the
	// node asked holds it; from a node that places filters
	// (Pong.Placement), else 0, nil and "".
	Replicas int
	Owners   []string
	Here     Held
}

// Held is how the node asked holds a filter (FilterInfo.Here).
type Held string

// How a node holds a filter; "" from a node that does not say.
const (
	// HeldReady: it holds the filter and answers for it.
	HeldReady Held = "ready"
	// HeldNot: the filter is placed on other members; the node knows it
	// from the catalog alone, and forwards its keys to them.
	HeldNot Held = "not held"
	// HeldFilling: the node came to own the filter (members came or
	// went) and its rows are coming from a member that held it: it takes
	// adds, and asks the other owners has.
	HeldFilling Held = "filling"
	// HeldLeaving: the node no longer owns the filter, and keeps it,
	// answering, for the handoff grace (--handoff-grace).
	HeldLeaving Held = "leaving"
)

var helds = [...]Held{wire.HeldNot: HeldNot, wire.HeldReady: HeldReady, wire.HeldFilling: HeldFilling, wire.HeldLeaving: HeldLeaving}

func infoOf(d wire.FilterDesc, flags uint8) FilterInfo {
	f := FilterInfo{Name: string(d.Name), Capacity: d.Capacity, FPRate: d.FPRate,
		Bytes: d.FP.SizeBytes(),
		Keys:  d.Keys, Fill: float64(d.FillPPM) / 1e6, Fingerprint: d.FP, Generation: d.Gen,
		Created: time.UnixMilli(d.Created), Origin: string(d.Origin), Conflicts: int(d.Conflicts)}
	if flags&wire.FiltersStages != 0 {
		f.Stages, f.Bytes, f.StagesCapacity = int(d.Stages), d.Bytes, d.StagesCapacity
		f.Expansion, f.NonScaling = int(d.Expansion), d.NonScaling
	}
	if flags&wire.FiltersWindows != 0 && d.Slices > 0 {
		f.Window, f.Slices = time.Duration(d.Window)*time.Millisecond, int(d.Slices)
	}
	if flags&wire.FiltersPlacement != 0 {
		f.Replicas, f.Here = int(d.Replicas), helds[d.Here] // a decoded Here is one of them
		for _, o := range d.Owners {
			f.Owners = append(f.Owners, string(o))
		}
	}
	return f
}

// learnDetail records what a pong says the node describes of filters,
// and returns it as a filter request's detail: every pong, so that a node
// rolled back to an earlier build is asked as one.
func (c *Client) learnDetail(flags uint8) uint8 {
	var d uint8
	if flags&wire.PongStages != 0 {
		d |= wire.FilterDetailStages
	}
	if flags&wire.PongWindows != 0 {
		d |= wire.FilterDetailWindows
	}
	if flags&wire.PongPlacement != 0 {
		d |= wire.FilterDetailPlacement
	}
	c.stages.Store(int32(d) + 1)
	return d
}

// withDetail runs a describe or list asking for stages if the node says
// it gives them. One that times out so asked goes again without, the
// node asked anew next time: a node of an earlier build (rolled back, or
// another behind the same name) drops the request unanswered.
func withDetail[T any](ctx context.Context, c *Client, op func(detail uint8) (T, error)) (T, error) {
	d := c.detail(ctx)
	out, err := op(d)
	if d != 0 && errors.Is(err, ErrTimeout) {
		c.stages.Store(0)
		return op(0)
	}
	return out, err
}

// filterOp sends one filter request and returns the filters it answers.
func (c *Client) filterOp(ctx context.Context, op string, q wire.FilterRequest) ([]FilterInfo, bool, error) {
	b, err := c.ask(ctx, op, true, func(dst []byte, id uint32) ([]byte, error) {
		q.ReqID = id
		return wire.AppendFilterRequest(dst, q)
	})
	if err != nil {
		return nil, false, err
	}
	fs, err := wire.DecodeFilters(b)
	if err != nil {
		return nil, false, badReply(err)
	}
	var out []FilterInfo
	for d := range fs.All() {
		out = append(out, infoOf(d, fs.Flags))
	}
	return out, fs.Flags&wire.FiltersMore != 0, nil
}

// CreateFilter creates the named filter for capacity keys at fpRate,
// growing as the node's --expansion says, or finds it made with that
// sizing already; made with another sizing, the node refuses (a
// *ServerError naming both).
func (c *Client) CreateFilter(ctx context.Context, name string, capacity uint64, fpRate float64) (FilterInfo, error) {
	return c.CreateGrowingFilter(ctx, name, capacity, fpRate, DefaultExpansion)
}

// Expansions CreateGrowingFilter takes besides 1 to 32768.
const (
	// DefaultExpansion asks for the node's --expansion.
	DefaultExpansion = -1
	// NonScaling asks for a filter that does not grow: adds are refused
	// once it holds capacity keys.
	NonScaling = 0
)

// CreateGrowingFilter is CreateFilter for a filter that grows by
// expansion: once it holds capacity keys it opens a stage expansion
// times larger, and so on, the false-positive rate of them all staying
// under fpRate. NonScaling makes one that does not grow,
// DefaultExpansion one as the node's --expansion says.
func (c *Client) CreateGrowingFilter(ctx context.Context, name string, capacity uint64, fpRate float64, expansion int) (FilterInfo, error) {
	var growth uint32
	switch {
	case expansion == DefaultExpansion:
	case expansion < 0 || expansion >= math.MaxUint32:
		return FilterInfo{}, c.opErr("create", fmt.Errorf("expansion %d: it is 0 (does not grow) or more", expansion))
	default:
		growth = uint32(expansion) + 1
	}
	return c.oneFilter(ctx, "create", wire.FilterRequest{Op: wire.FilterOpCreate, Name: []byte(name),
		Layout: filter.Blocked, Capacity: capacity, FPRate: fpRate, Growth: growth})
}

// ErrNoWindows says the node makes no windowed filters: an earlier rmbd.
var ErrNoWindows = errors.New("the node makes no windowed filters (an earlier rmbd: upgrade it)")

// CreateWindowedFilter creates the named filter for capacity keys per
// window at fpRate: it answers for the keys added within the last window
// (and up to two slices more), kept in slices slices of time (0: the
// node's default of 10), and forgets older ones. A node that makes no
// windowed filters refuses it.
func (c *Client) CreateWindowedFilter(ctx context.Context, name string, capacity uint64, fpRate float64, window time.Duration, slices int) (FilterInfo, error) {
	switch {
	case window <= 0 || window%time.Millisecond != 0 || uint64(window.Milliseconds()) > math.MaxUint64/2:
		return FilterInfo{}, c.opErr("create", fmt.Errorf("window %v: it is a positive whole number of milliseconds", window))
	case slices < 0 || slices > math.MaxUint16:
		return FilterInfo{}, c.opErr("create", fmt.Errorf("slices %d: it is 0 (the node's default) or more", slices))
	}
	if c.detail(ctx)&wire.FilterDetailWindows == 0 { // an earlier node would drop the request as bad padding
		if _, err := c.Ping(ctx); err != nil {
			return FilterInfo{}, c.opErr("create", err)
		}
		return FilterInfo{}, c.opErr("create", ErrNoWindows)
	}
	return c.oneFilter(ctx, "create", wire.FilterRequest{Op: wire.FilterOpCreate, Name: []byte(name),
		Layout: filter.Blocked, Capacity: capacity, FPRate: fpRate, Window: uint64(window.Milliseconds()), Slices: uint16(slices)})
}

// ErrNoPlacement says the node places no filters on some members: an
// earlier rmbd.
var ErrNoPlacement = errors.New("the node places no filters on some members (an earlier rmbd: upgrade it)")

// CreatePlacedFilter is CreateGrowingFilter for a filter placed on
// replicas members of the cluster (1 to 255) rather than on every one,
// which every member computes alike: any member answers for it,
// forwarding its keys to them (Cluster sends them there itself). A node
// alone holds every filter it places. A node that does not place filters
// refuses it.
func (c *Client) CreatePlacedFilter(ctx context.Context, name string, capacity uint64, fpRate float64, expansion, replicas int) (FilterInfo, error) {
	var growth uint32
	switch {
	case replicas < 1 || replicas > math.MaxUint8:
		return FilterInfo{}, c.opErr("create", fmt.Errorf("replicas %d: a filter lives on 1 to %d members", replicas, math.MaxUint8))
	case expansion == DefaultExpansion:
	case expansion < 0 || expansion >= math.MaxUint32:
		return FilterInfo{}, c.opErr("create", fmt.Errorf("expansion %d: it is 0 (does not grow) or more", expansion))
	default:
		growth = uint32(expansion) + 1
	}
	if c.detail(ctx)&wire.FilterDetailPlacement == 0 { // an earlier node would drop the request as bad padding
		if _, err := c.Ping(ctx); err != nil {
			return FilterInfo{}, c.opErr("create", err)
		}
		return FilterInfo{}, c.opErr("create", ErrNoPlacement)
	}
	return c.oneFilter(ctx, "create", wire.FilterRequest{Op: wire.FilterOpCreate, Name: []byte(name),
		Layout: filter.Blocked, Capacity: capacity, FPRate: fpRate, Growth: growth, Replicas: uint8(replicas)})
}

// oneFilter sends a filter request answered by one filter's description.
func (c *Client) oneFilter(ctx context.Context, op string, q wire.FilterRequest) (FilterInfo, error) {
	fs, _, err := c.filterOp(ctx, op, q)
	if err == nil && len(fs) != 1 {
		err = badReply(fmt.Errorf("%d filters describe one", len(fs)))
	}
	if err != nil {
		return FilterInfo{}, c.opErr(op, err)
	}
	return fs[0], nil
}

// CreateClassicFilter creates the named filter with the classic layout
// (the original rmbd's 5×400 bits), or finds it made so already.
func (c *Client) CreateClassicFilter(ctx context.Context, name string) (FilterInfo, error) {
	return c.oneFilter(ctx, "create", wire.FilterRequest{Op: wire.FilterOpCreate, Name: []byte(name), Layout: filter.Classic})
}

// DropFilter drops the named filter: its keys are gone.
func (c *Client) DropFilter(ctx context.Context, name string) error {
	_, _, err := c.filterOp(ctx, "drop", wire.FilterRequest{Op: wire.FilterOpDrop, Name: []byte(name)})
	return c.opErr("drop", err)
}

// DescribeFilter describes the named filter ("default": the node's own).
func (c *Client) DescribeFilter(ctx context.Context, name string) (FilterInfo, error) {
	return withDetail(ctx, c, func(detail uint8) (FilterInfo, error) {
		return c.oneFilter(ctx, "info", wire.FilterRequest{Op: wire.FilterOpInfo, Name: []byte(name), Detail: detail})
	})
}

// detail is what a describe or list asks for: stages, windows and
// placement, of a node that gives them.
func (c *Client) detail(ctx context.Context) uint8 {
	if v := c.stages.Load(); v > 0 {
		return uint8(v - 1)
	}
	d := *c
	d.filter = "" // the node's own filter: one that exists
	if _, err := d.Ping(ctx); err != nil {
		return 0 // the request that follows says why
	}
	return uint8(max(c.stages.Load()-1, 0))
}

// Filters lists the node's filters by name, the default among them.
func (c *Client) Filters(ctx context.Context) ([]FilterInfo, error) {
	return withDetail(ctx, c, func(detail uint8) ([]FilterInfo, error) {
		var all []FilterInfo
		after := ""
		for {
			fs, more, err := c.filterOp(ctx, "list", wire.FilterRequest{Op: wire.FilterOpList, Name: []byte(after), Detail: detail})
			if err != nil {
				return nil, c.opErr("list", err)
			}
			all = append(all, fs...)
			if !more || len(fs) == 0 {
				return all, nil
			}
			after = fs[len(fs)-1].Name
		}
	})
}
