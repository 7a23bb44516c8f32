package node

import (
	"net/netip"
	"strconv"
	"strings"

	"github.com/rmbd/rmbd/filter"
	"github.com/rmbd/rmbd/resp"
	"github.com/rmbd/rmbd/store"
)

// The RESP commands: RedisBloom's argument order, replies and error
// strings wherever rmbd's semantics agree (docs/RESP.md lists where they
// differ). A command's key is a filter's name; "default" is the filter
// the node's flags make.

// respCmd is one command, described as COMMAND and COMMAND DOCS describe
// it.
type respCmd struct {
	name    string // lower case
	arity   int    // Redis's: exact when positive, at least -arity when negative
	flags   []string
	first   int // the first key's position, 0 for none
	last    int // the last key's: -1 every argument from first on
	step    int
	group   string
	summary string
	args    []respArg
	access  access // who may run it
	run     func(n *Node, rc *respConn, args [][]byte)
}

// respArg documents an argument (COMMAND DOCS, which redis-cli's hints
// are made from).
type respArg struct {
	name, typ, token string
	optional         bool
	multiple         bool
	sub              []respArg
}

// access is who may run a command: anyone who may connect, clients
// --allow lets add, --allow-read lets ask, or admins (loopback, members,
// --allow-admin), as for the node's own frames.
type access uint8

const (
	accessAny access = iota
	accessAdd
	accessRead
	accessAdmin
)

// respCommands is every command by name, respCommandList in order;
// filled by init (COMMAND, one of them, describes them all).
var (
	respCommands    map[string]*respCmd
	respCommandList []*respCmd
)

func init() {
	respCommandList = respTable()
	respCommands = map[string]*respCmd{}
	for _, c := range respCommandList {
		respCommands[c.name] = c
	}
}

// respTable lists the commands.
func respTable() []*respCmd {
	key := respArg{name: "key", typ: "key"}
	item := respArg{name: "item", typ: "string"}
	items := respArg{name: "item", typ: "string", multiple: true}
	keys := respArg{name: "key", typ: "key", multiple: true}
	return []*respCmd{
		{name: "bf.reserve", arity: -4, flags: []string{"write", "denyoom"}, first: 1, last: 1, step: 1, group: "bf", access: accessAdmin,
			summary: "Creates a filter of the given capacity and false positive rate; rmbd filters do not grow (NONSCALING)",
			args: []respArg{key, {name: "error_rate", typ: "double"}, {name: "capacity", typ: "integer"},
				{name: "nonscaling", typ: "pure-token", token: "NONSCALING", optional: true}},
			run: (*Node).bfReserve},
		{name: "bf.add", arity: 3, flags: []string{"write", "denyoom", "fast"}, first: 1, last: 1, step: 1, group: "bf", access: accessAdd,
			summary: "Adds an item, creating the filter if it does not exist (--auto-create)", args: []respArg{key, item},
			run: (*Node).bfAdd},
		{name: "bf.madd", arity: -3, flags: []string{"write", "denyoom", "fast"}, first: 1, last: 1, step: 1, group: "bf", access: accessAdd,
			summary: "Adds items, creating the filter if it does not exist (--auto-create)", args: []respArg{key, items},
			run: (*Node).bfAdd},
		{name: "bf.insert", arity: -4, flags: []string{"write", "denyoom"}, first: 1, last: 1, step: 1, group: "bf", access: accessAdd,
			summary: "Adds items, creating the filter with the given sizing unless NOCREATE",
			args: []respArg{key, {name: "capacity", typ: "integer", token: "CAPACITY", optional: true},
				{name: "error", typ: "double", token: "ERROR", optional: true},
				{name: "nocreate", typ: "pure-token", token: "NOCREATE", optional: true},
				{name: "nonscaling", typ: "pure-token", token: "NONSCALING", optional: true},
				{name: "items", typ: "pure-token", token: "ITEMS"}, items},
			run: (*Node).bfInsert},
		{name: "bf.exists", arity: 3, flags: []string{"readonly", "fast"}, first: 1, last: 1, step: 1, group: "bf", access: accessRead,
			summary: "Whether an item may be in the filter", args: []respArg{key, item}, run: (*Node).bfExists},
		{name: "bf.mexists", arity: -3, flags: []string{"readonly", "fast"}, first: 1, last: 1, step: 1, group: "bf", access: accessRead,
			summary: "Whether each item may be in the filter", args: []respArg{key, items}, run: (*Node).bfExists},
		{name: "bf.info", arity: -2, flags: []string{"readonly", "fast"}, first: 1, last: 1, step: 1, group: "bf", access: accessRead,
			summary: "A filter's capacity, size, number of filters, items inserted (estimated) and expansion rate",
			args: []respArg{key, {name: "single_value", typ: "oneof", optional: true, sub: []respArg{
				{name: "capacity", typ: "pure-token", token: "CAPACITY"}, {name: "size", typ: "pure-token", token: "SIZE"},
				{name: "filters", typ: "pure-token", token: "FILTERS"}, {name: "items", typ: "pure-token", token: "ITEMS"},
				{name: "expansion", typ: "pure-token", token: "EXPANSION"}}}},
			run: (*Node).bfInfo},
		{name: "bf.card", arity: 2, flags: []string{"readonly", "fast"}, first: 1, last: 1, step: 1, group: "bf", access: accessRead,
			summary: "The number of items in a filter, estimated from its bits", args: []respArg{key}, run: (*Node).bfCard},

		{name: "del", arity: -2, flags: []string{"write"}, first: 1, last: -1, step: 1, group: "generic", access: accessAdmin,
			summary: "Drops filters, everywhere in the cluster", args: []respArg{keys}, run: (*Node).respDel},
		{name: "unlink", arity: -2, flags: []string{"write", "fast"}, first: 1, last: -1, step: 1, group: "generic", access: accessAdmin,
			summary: "Drops filters, everywhere in the cluster", args: []respArg{keys}, run: (*Node).respDel},
		{name: "exists", arity: -2, flags: []string{"readonly", "fast"}, first: 1, last: -1, step: 1, group: "generic", access: accessRead,
			summary: "How many of the keys name a filter", args: []respArg{keys}, run: (*Node).respExists},
		{name: "type", arity: 2, flags: []string{"readonly", "fast"}, first: 1, last: 1, step: 1, group: "generic", access: accessRead,
			summary: "MBbloom-- for a filter, none otherwise", args: []respArg{key}, run: (*Node).respType},
		{name: "scan", arity: -2, flags: []string{"readonly"}, group: "generic", access: accessRead,
			summary: "Iterates over the filters' names",
			args: []respArg{{name: "cursor", typ: "integer"}, {name: "pattern", typ: "pattern", token: "MATCH", optional: true},
				{name: "count", typ: "integer", token: "COUNT", optional: true}, {name: "type", typ: "string", token: "TYPE", optional: true}},
			run: (*Node).respScan},
		{name: "keys", arity: 2, flags: []string{"readonly"}, group: "generic", access: accessRead,
			summary: "The filters' names that match a pattern", args: []respArg{{name: "pattern", typ: "pattern"}}, run: (*Node).respKeys},
		{name: "dbsize", arity: 1, flags: []string{"readonly", "fast"}, group: "server", access: accessRead,
			summary: "The number of filters", run: (*Node).respDBSize},

		{name: "ping", arity: -1, flags: []string{"fast"}, group: "connection", summary: "PONG, or the message",
			args: []respArg{{name: "message", typ: "string", optional: true}}, run: (*Node).respPing},
		{name: "echo", arity: 2, flags: []string{"fast"}, group: "connection", summary: "The message",
			args: []respArg{{name: "message", typ: "string"}}, run: (*Node).respEcho},
		{name: "hello", arity: -1, flags: []string{"noauth", "fast"}, group: "connection",
			summary: "Chooses the protocol (2 or 3), authenticates, names the connection; answers what the server is",
			args: []respArg{{name: "arguments", typ: "block", optional: true, sub: []respArg{
				{name: "protover", typ: "integer"},
				{name: "username-password", typ: "block", token: "AUTH", optional: true, sub: []respArg{{name: "username", typ: "string"}, {name: "password", typ: "string"}}},
				{name: "clientname", typ: "string", token: "SETNAME", optional: true}}}},
			run: (*Node).respHello},
		{name: "auth", arity: -2, flags: []string{"noauth", "fast"}, group: "connection", summary: "Authenticates the connection (--resp-password-file)",
			args: []respArg{{name: "username", typ: "string", optional: true}, {name: "password", typ: "string"}}, run: (*Node).respAuth},
		{name: "select", arity: 2, flags: []string{"fast"}, group: "connection", summary: "Database 0, the only one",
			args: []respArg{{name: "index", typ: "integer"}}, run: (*Node).respSelect},
		{name: "client", arity: -2, flags: []string{}, group: "connection", summary: "SETNAME, GETNAME, SETINFO, ID",
			args: []respArg{{name: "subcommand", typ: "string"}, {name: "arg", typ: "string", optional: true, multiple: true}},
			run:  (*Node).respClient},
		{name: "quit", arity: -1, flags: []string{"noauth", "fast"}, group: "connection", summary: "Closes the connection", run: (*Node).respQuit},
		{name: "info", arity: -1, flags: []string{}, group: "server", access: accessRead,
			summary: "The server, clients, stats, keyspace and bloom sections",
			args:    []respArg{{name: "section", typ: "string", optional: true, multiple: true}}, run: (*Node).respInfo},
		{name: "command", arity: -1, flags: []string{}, group: "server", summary: "Describes the commands: COMMAND, COMMAND COUNT, COMMAND INFO, COMMAND DOCS",
			args: []respArg{{name: "subcommand", typ: "string", optional: true}, {name: "command-name", typ: "string", optional: true, multiple: true}},
			run:  (*Node).respCommandCmd},
	}
}

// respCommand runs one command and appends its reply to rc.out.
func (n *Node) respCommand(rc *respConn, args [][]byte) {
	var up [24]byte
	name := args[0]
	if len(name) <= len(up) {
		for i, c := range name {
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			up[i] = c
		}
		name = up[:len(name)]
	}
	c := rc.lastCmd
	if c == nil || rc.lastLen != len(name) || string(rc.lastName[:rc.lastLen]) != string(name) {
		c = respCommands[string(name)]
		if c != nil && len(name) <= len(rc.lastName) {
			rc.lastCmd, rc.lastLen = c, copy(rc.lastName[:], name)
		}
	}
	switch {
	case c == nil:
		n.respErr(rc, unknownCommand(args))
		return
	case !rc.authed && !c.has("noauth"):
		n.respErr(rc, "NOAUTH Authentication required.")
		return
	case c.arity > 0 && len(args) != c.arity, c.arity < 0 && len(args) < -c.arity:
		n.respErr(rc, "ERR wrong number of arguments for '"+c.name+"' command")
		return
	case !n.mayRun(c.access, rc.cn.from):
		n.c.inc(Forbidden)
		n.respErr(rc, "NOPERM this address may not run '"+c.name+"' ("+c.access.flag()+")")
		return
	}
	c.run(n, rc, args)
}

func (c *respCmd) has(flag string) bool {
	for _, f := range c.flags {
		if f == flag {
			return true
		}
	}
	return false
}

// unknownCommand is Redis's reply to a command it does not know.
func unknownCommand(args [][]byte) string {
	var b strings.Builder
	b.WriteString("ERR unknown command '")
	b.Write(truncate(args[0], 128))
	b.WriteString("', with args beginning with: ")
	for _, a := range args[1:min(len(args), 16)] {
		b.WriteByte('\'')
		b.Write(truncate(a, 128))
		b.WriteString("' ")
	}
	return b.String()
}

func truncate(b []byte, n int) []byte { return b[:min(len(b), n)] }

// mayRun reports whether a client at from may run a command of access a.
func (n *Node) mayRun(a access, from netip.AddrPort) bool {
	switch a {
	case accessAdd:
		return n.mayAdd(from)
	case accessRead:
		return n.mayRead(from)
	case accessAdmin:
		return n.mayAdmin(from, false)
	}
	return true
}

// flag names the flag that grants a.
func (a access) flag() string {
	switch a {
	case accessAdd:
		return "--allow"
	case accessRead:
		return "--allow-read"
	}
	return "--allow-admin"
}

// respErr appends an error reply.
func (n *Node) respErr(rc *respConn, msg string) {
	n.c.inc(RESPErrors)
	rc.out = resp.AppendError(rc.out, msg)
}

// respOK appends +OK.
func respOK(rc *respConn) { rc.out = append(rc.out, "+OK\r\n"...) }

// errNotFound is RedisBloom's reply for a filter that does not exist.
const errNotFound = "ERR not found"

func (n *Node) bfReserve(rc *respConn, args [][]byte) {
	if len(args) > 7 {
		n.respErr(rc, "ERR wrong number of arguments for 'bf.reserve' command")
		return
	}
	fpRate, err := strconv.ParseFloat(string(args[2]), 64)
	if err != nil {
		n.respErr(rc, "ERR bad error rate")
		return
	}
	if !(fpRate > 0 && fpRate < 1) { // NaN too
		n.respErr(rc, "ERR (0 < error rate range < 1) ")
		return
	}
	capacity, err := strconv.ParseInt(string(args[3]), 10, 64)
	if err != nil {
		n.respErr(rc, "ERR bad capacity")
		return
	}
	if capacity <= 0 {
		n.respErr(rc, "ERR (capacity should be larger than 0)")
		return
	}
	for _, a := range args[4:] {
		switch strings.ToUpper(string(a)) {
		case "NONSCALING":
		case "EXPANSION":
			n.respErr(rc, errExpansion)
			return
		default:
			n.respErr(rc, "ERR unknown argument '"+string(truncate(a, 64))+"' (BF.RESERVE key error_rate capacity [NONSCALING])")
			return
		}
	}
	name := string(args[1])
	if name == DefaultFilter || len(n.named.lookup(args[1])) > 0 {
		n.respErr(rc, "ERR item exists")
		return
	}
	if _, err := n.createNamed(name, filter.Blocked, uint64(capacity), fpRate); err != nil {
		n.respErr(rc, "ERR "+err.Error())
		return
	}
	respOK(rc)
}

// errExpansion refuses EXPANSION: rmbd filters keep their size.
const errExpansion = "ERR rmbd filters do not grow: EXPANSION is not supported (reserve the capacity you need; NONSCALING is accepted)"

// addTarget returns the filter adds to name go to, and its store (nil in
// memory); for a named filter, held (which the caller lets go of after the
// add: a drop waits for it).
func (n *Node) addTarget(rc *respConn, name []byte) (f *filter.Filter, st *store.Store, held *namedFilter, err error) {
	if string(name) == DefaultFilter {
		return n.f, n.st, nil, nil
	}
	var nf *namedFilter
	if vs := n.named.lookupCached(&rc.lookup, name); len(vs) > 0 {
		nf = vs[0]
	} else if nf, err = n.namedFor(name); err != nil {
		return nil, nil, nil, err
	}
	nf.mu.RLock()
	if nf.dropped {
		nf.mu.RUnlock()
		return nil, nil, nil, errDropped
	}
	return nf.f, nf.st, nf, nil
}

// release lets go of a filter addTarget held.
func release(nf *namedFilter) {
	if nf != nil {
		nf.mu.RUnlock()
	}
}

var errDropped = errorString("ERR the filter was dropped while adding; try again")

type errorString string

func (e errorString) Error() string { return string(e) }

// respAdd adds keys to f (kept in st) and returns, per key, whether it
// changed the filter, as bits in rc.bits.
func (n *Node) respAdd(rc *respConn, f *filter.Filter, st *store.Store, keys [][]byte) []byte {
	need := (len(keys) + 7) / 8
	if cap(rc.bits) < need {
		rc.bits = make([]byte, need)
	}
	bits := rc.bits[:need]
	clear(bits)
	fresh := 0
	if st != nil {
		fresh = addLogged(rc.w, f, st, keys, bits)
		rc.waits.add(rc.w.syncLog, rc.w.syncPos)
		rc.w.syncLog, rc.w.syncPos = nil, 0
	} else {
		for i, k := range keys {
			if f.Add(k) {
				bits[i/8] |= 1 << (i % 8)
				fresh++
			}
		}
	}
	rc.counts.added += uint64(len(keys))
	rc.counts.addedNew += uint64(fresh)
	return bits
}

// bfAdd serves BF.ADD (one item, one answer) and BF.MADD (an array).
func (n *Node) bfAdd(rc *respConn, args [][]byte) {
	f, st, held, err := n.addTarget(rc, args[1])
	if err != nil {
		n.respAddErr(rc, err)
		return
	}
	n.respAdded(rc, f, st, args[2:], len(args[0]) != len("bf.add"))
	release(held)
}

// respAdded adds keys and appends the answers: one boolean, or an array.
func (n *Node) respAdded(rc *respConn, f *filter.Filter, st *store.Store, keys [][]byte, multi bool) {
	bits := n.respAdd(rc, f, st, keys)
	if !multi {
		rc.out = resp.AppendBool(rc.out, rc.proto, bits[0]&1 != 0)
		return
	}
	rc.out = resp.AppendArray(rc.out, len(keys))
	for i := range keys {
		rc.out = resp.AppendBool(rc.out, rc.proto, bits[i/8]&(1<<(i%8)) != 0)
	}
}

// respAddErr answers an add that found no filter to add to.
func (n *Node) respAddErr(rc *respConn, err error) {
	if e, ok := err.(errorString); ok {
		n.respErr(rc, string(e))
		return
	}
	if !n.cfg.AutoCreate {
		n.respErr(rc, errNotFound+" (--auto-create is off: BF.RESERVE the filter first)")
		return
	}
	n.respErr(rc, "ERR "+err.Error())
}

func (n *Node) bfInsert(rc *respConn, args [][]byte) {
	capacity, fpRate, create := n.cfg.Capacity, n.cfg.FPRate, n.cfg.AutoCreate
	explicit := false
	i := 2
	for ; i < len(args); i++ {
		opt := strings.ToUpper(string(args[i]))
		if opt == "ITEMS" {
			break
		}
		switch opt {
		case "NOCREATE":
			create = false
		case "NONSCALING":
		case "EXPANSION":
			n.respErr(rc, errExpansion)
			return
		case "CAPACITY", "ERROR":
			if i+1 == len(args) {
				n.respErr(rc, "ERR wrong number of arguments for 'bf.insert' command")
				return
			}
			i++
			v := string(args[i])
			if opt == "CAPACITY" {
				c, err := strconv.ParseInt(v, 10, 64)
				if err != nil {
					n.respErr(rc, "Bad capacity")
					return
				}
				if c < 1 {
					n.respErr(rc, "Bad argument received")
					return
				}
				capacity = uint64(c)
			} else {
				e, err := strconv.ParseFloat(v, 64)
				if err != nil {
					n.respErr(rc, "Bad error rate")
					return
				}
				if !(e > 0 && e < 1) { // NaN too
					n.respErr(rc, "Bad argument received")
					return
				}
				fpRate = e
			}
			explicit = true
		default:
			n.respErr(rc, "Unknown argument received")
			return
		}
	}
	if i+1 >= len(args) {
		n.respErr(rc, "ERR wrong number of arguments for 'bf.insert' command")
		return
	}
	name := args[1]
	if string(name) != DefaultFilter && len(n.named.lookup(name)) == 0 {
		if !create {
			if n.cfg.AutoCreate {
				n.respErr(rc, errNotFound)
			} else {
				n.respErr(rc, errNotFound+" (--auto-create is off: BF.RESERVE the filter first)")
			}
			return
		}
		layout := filter.Blocked
		if n.cfg.Profile == ProfileClassic && !explicit {
			layout = filter.Classic
		}
		if _, err := n.createNamed(string(name), layout, capacity, fpRate); err != nil {
			n.respErr(rc, "ERR "+err.Error())
			return
		}
	}
	f, st, held, err := n.addTarget(rc, name)
	if err != nil {
		n.respAddErr(rc, err)
		return
	}
	n.respAdded(rc, f, st, args[i+1:], true)
	release(held)
}

// bfExists serves BF.EXISTS and BF.MEXISTS: true for a key any live
// version of the filter holds; false for every key of a filter that does
// not exist.
func (n *Node) bfExists(rc *respConn, args [][]byte) {
	keys := args[2:]
	multi := len(args[0]) != len("bf.exists")
	if multi {
		rc.out = resp.AppendArray(rc.out, len(keys))
	}
	hits := 0
	if string(args[1]) == DefaultFilter {
		for _, k := range keys {
			v := n.f.Has(k)
			if v {
				hits++
			}
			rc.out = resp.AppendBool(rc.out, rc.proto, v)
		}
	} else {
		vs := n.named.lookupCached(&rc.lookup, args[1])
		for _, k := range keys {
			v := false
			for _, nf := range vs {
				if nf.f.Has(k) {
					v = true
					break
				}
			}
			if v {
				hits++
			}
			rc.out = resp.AppendBool(rc.out, rc.proto, v)
		}
	}
	rc.counts.asked += uint64(len(keys))
	rc.counts.found += uint64(hits)
}

// freshStatsBytes is the largest filter BF.INFO and BF.CARD count afresh
// (about 0.3 ms); a larger one's figures are the background refresh's
// (about a second old).
const freshStatsBytes = 4 << 20

// respFilter describes the filter called name; with fresh, counting a
// filter up to freshStatsBytes afresh.
func (n *Node) respFilter(name []byte, fresh bool) (desc filterDesc, ok bool) {
	var f *filter.Filter
	var cached *filter.Stats
	if string(name) == DefaultFilter {
		f = n.f
		desc = filterDesc{versions: 1}
		if n.cfg.Profile != ProfileClassic {
			desc.capacity = n.cfg.Capacity
		}
		cached = &n.cachedFilterStats().Stats
	} else {
		vs := n.named.lookup(name)
		if len(vs) == 0 {
			return desc, false
		}
		f = vs[0].f
		desc = filterDesc{versions: len(vs), capacity: vs[0].v.Def.Capacity}
		cached = vs[0].stats.Load()
	}
	desc.bytes = f.SizeBytes()
	if (fresh && f.SizeBytes() <= freshStatsBytes) || cached == nil {
		s := f.Stats()
		cached = &s
	}
	desc.keys = uint64(cached.EstimatedKeys)
	return desc, true
}

// filterDesc is what BF.INFO says of a filter.
type filterDesc struct {
	capacity, bytes, keys uint64
	versions              int
}

func (n *Node) bfInfo(rc *respConn, args [][]byte) {
	if len(args) > 3 {
		n.respErr(rc, "ERR wrong number of arguments for 'bf.info' command")
		return
	}
	d, ok := n.respFilter(args[1], true)
	if !ok {
		n.respErr(rc, errNotFound)
		return
	}
	fields := []struct {
		name, arg string
		v         int64
	}{
		{"Capacity", "CAPACITY", int64(d.capacity)},
		{"Size", "SIZE", int64(d.bytes)},
		{"Number of filters", "FILTERS", int64(d.versions)},
		{"Number of items inserted", "ITEMS", int64(d.keys)},
		// rmbd filters do not grow. RedisBloom answers null for a
		// NONSCALING filter, which go-redis cannot read: 0 says the same.
		{"Expansion rate", "EXPANSION", 0},
	}
	value := func(v int64) { rc.out = resp.AppendInt(rc.out, v) }
	if len(args) == 3 {
		for _, f := range fields {
			if strings.EqualFold(string(args[2]), f.arg) {
				rc.out = resp.AppendArray(rc.out, 1)
				value(f.v)
				return
			}
		}
		n.respErr(rc, "Invalid information value")
		return
	}
	rc.out = resp.AppendMap(rc.out, rc.proto, len(fields))
	for _, f := range fields {
		rc.out = resp.AppendSimple(rc.out, f.name)
		value(f.v)
	}
}

func (n *Node) bfCard(rc *respConn, args [][]byte) {
	d, _ := n.respFilter(args[1], true)
	rc.out = resp.AppendInt(rc.out, int64(d.keys))
}
