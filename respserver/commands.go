package respserver

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/rmbd/rmbd/access"
	"github.com/rmbd/rmbd/filter"
	"github.com/rmbd/rmbd/gossip"
	"github.com/rmbd/rmbd/registry"
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
	access  access.Op // who may run it
	run     func(s *Server, rc *respConn, args [][]byte)
	// long runs the command when it comes in pieces (resp.Command.More):
	// nil for a command that takes no more than one piece.
	long func(s *Server, rc *respConn, cmd resp.Command)
	// control: the command runs at once inside a transaction, never
	// queued (MULTI, EXEC, DISCARD, WATCH, QUIT); noMulti: it is refused
	// there (multi.go).
	control, noMulti bool
}

// respArg documents an argument (COMMAND DOCS, which redis-cli's hints
// are made from).
type respArg struct {
	name, typ, token string
	optional         bool
	multiple         bool
	sub              []respArg
}

// commandTable is every command by name, and in order (COMMAND, one of
// them, describes them all).
type commandTable struct {
	byName map[string]*respCmd
	list   []*respCmd
}

func newCommandTable() commandTable {
	t := commandTable{list: respTable(), byName: map[string]*respCmd{}}
	for _, c := range t.list {
		t.byName[c.name] = c
	}
	return t
}

// respTable lists the commands.
func respTable() []*respCmd {
	key := respArg{name: "key", typ: "key"}
	item := respArg{name: "item", typ: "string"}
	items := respArg{name: "item", typ: "string", multiple: true}
	keys := respArg{name: "key", typ: "key", multiple: true}
	condition := respArg{name: "condition", typ: "oneof", optional: true, sub: []respArg{ // EXPIRE's and its kin's
		{name: "nx", typ: "pure-token", token: "NX"}, {name: "xx", typ: "pure-token", token: "XX"},
		{name: "gt", typ: "pure-token", token: "GT"}, {name: "lt", typ: "pure-token", token: "LT"}}}
	return []*respCmd{
		{name: "bf.reserve", arity: -4, flags: []string{"write", "denyoom"}, first: 1, last: 1, step: 1, group: "bf", access: access.Create,
			summary: "Creates a filter of the given capacity and false positive rate that grows by EXPANSION (the node's --expansion unless told), or not at all (NONSCALING); " +
				"with WINDOW (an rmbd extension), one that holds capacity items per window of so many seconds, in SLICES slices, and forgets older ones; " +
				"with REPLICAS (an rmbd extension), one on that many members of the cluster rather than on every one",
			args: []respArg{key, {name: "error_rate", typ: "double"}, {name: "capacity", typ: "integer"},
				{name: "expansion", typ: "integer", token: "EXPANSION", optional: true},
				{name: "nonscaling", typ: "pure-token", token: "NONSCALING", optional: true},
				{name: "window", typ: "double", token: "WINDOW", optional: true},
				{name: "slices", typ: "integer", token: "SLICES", optional: true},
				{name: "replicas", typ: "integer", token: "REPLICAS", optional: true}},
			run: (*Server).bfReserve},
		{name: "bf.add", arity: 3, flags: []string{"write", "denyoom", "fast"}, first: 1, last: 1, step: 1, group: "bf", access: access.Add,
			summary: "Adds an item, creating the filter if it does not exist (--auto-create)", args: []respArg{key, item},
			run: (*Server).bfAdd},
		{name: "bf.madd", arity: -3, flags: []string{"write", "denyoom", "fast"}, first: 1, last: 1, step: 1, group: "bf", access: access.Add,
			summary: "Adds items, creating the filter if it does not exist (--auto-create)", args: []respArg{key, items},
			run: (*Server).bfAdd, long: (*Server).bfAddLong},
		{name: "bf.insert", arity: -4, flags: []string{"write", "denyoom"}, first: 1, last: 1, step: 1, group: "bf", access: access.Add,
			summary: "Adds items, creating the filter with the given sizing unless NOCREATE",
			args: []respArg{key, {name: "capacity", typ: "integer", token: "CAPACITY", optional: true},
				{name: "error", typ: "double", token: "ERROR", optional: true},
				{name: "expansion", typ: "integer", token: "EXPANSION", optional: true},
				{name: "nocreate", typ: "pure-token", token: "NOCREATE", optional: true},
				{name: "nonscaling", typ: "pure-token", token: "NONSCALING", optional: true},
				{name: "items", typ: "pure-token", token: "ITEMS"}, items},
			run: (*Server).bfInsert, long: (*Server).bfInsertLong},
		{name: "bf.exists", arity: 3, flags: []string{"readonly", "fast"}, first: 1, last: 1, step: 1, group: "bf", access: access.Read,
			summary: "Whether an item may be in the filter", args: []respArg{key, item}, run: (*Server).bfExists},
		{name: "bf.mexists", arity: -3, flags: []string{"readonly", "fast"}, first: 1, last: 1, step: 1, group: "bf", access: access.Read,
			summary: "Whether each item may be in the filter", args: []respArg{key, items}, run: (*Server).bfExists,
			long: (*Server).bfExistsLong},
		{name: "bf.info", arity: -2, flags: []string{"readonly", "fast"}, first: 1, last: 1, step: 1, group: "bf", access: access.Read,
			summary: "A filter's capacity, size, number of filters, items inserted (estimated) and expansion rate; of a filter on some members, its replicas, owners and how this member holds it",
			args: []respArg{key, {name: "single_value", typ: "oneof", optional: true, sub: []respArg{
				{name: "capacity", typ: "pure-token", token: "CAPACITY"}, {name: "size", typ: "pure-token", token: "SIZE"},
				{name: "filters", typ: "pure-token", token: "FILTERS"}, {name: "items", typ: "pure-token", token: "ITEMS"},
				{name: "expansion", typ: "pure-token", token: "EXPANSION"}}}},
			run: (*Server).bfInfo},
		{name: "bf.scandump", noMulti: true, arity: 3, flags: []string{"readonly"}, first: 1, last: 1, step: 1, group: "bf", access: access.Read,
			summary: "Begins or goes on with a dump of a filter: the next iterator and a chunk of rmbd's dump format, [0, \"\"] at the end",
			args:    []respArg{key, {name: "iterator", typ: "integer"}}, run: (*Server).bfScanDump},
		{name: "bf.loadchunk", arity: 4, flags: []string{"write", "denyoom"}, first: 1, last: 1, step: 1, group: "bf", access: access.Admin,
			summary: "Loads a chunk BF.SCANDUMP gave, in order: the first makes the filter as it was dumped",
			args:    []respArg{key, {name: "iterator", typ: "integer"}, {name: "data", typ: "string"}}, run: (*Server).bfLoadChunk},
		{name: "bf.card", arity: 2, flags: []string{"readonly", "fast"}, first: 1, last: 1, step: 1, group: "bf", access: access.Read,
			summary: "The number of items in a filter, estimated from its bits", args: []respArg{key}, run: (*Server).bfCard},

		{name: "del", arity: -2, flags: []string{"write"}, first: 1, last: -1, step: 1, group: "generic", access: access.Admin,
			summary: "Drops filters, everywhere in the cluster", args: []respArg{keys}, run: (*Server).respDel},
		{name: "unlink", arity: -2, flags: []string{"write", "fast"}, first: 1, last: -1, step: 1, group: "generic", access: access.Admin,
			summary: "Drops filters, everywhere in the cluster", args: []respArg{keys}, run: (*Server).respDel},
		{name: "exists", arity: -2, flags: []string{"readonly", "fast"}, first: 1, last: -1, step: 1, group: "generic", access: access.Read,
			summary: "How many of the keys name a filter", args: []respArg{keys}, run: (*Server).respExists,
			long: (*Server).respExistsLong},
		{name: "type", arity: 2, flags: []string{"readonly", "fast"}, first: 1, last: 1, step: 1, group: "generic", access: access.Read,
			summary: "MBbloom-- for a filter, none otherwise", args: []respArg{key}, run: (*Server).respType},
		{name: "scan", noMulti: true, arity: -2, flags: []string{"readonly"}, group: "generic", access: access.Read,
			summary: "Iterates over the filters' names",
			args: []respArg{{name: "cursor", typ: "integer"}, {name: "pattern", typ: "pattern", token: "MATCH", optional: true},
				{name: "count", typ: "integer", token: "COUNT", optional: true}, {name: "type", typ: "string", token: "TYPE", optional: true}},
			run: (*Server).respScan},
		{name: "keys", noMulti: true, arity: 2, flags: []string{"readonly"}, group: "generic", access: access.Read,
			summary: "The filters' names that match a pattern", args: []respArg{{name: "pattern", typ: "pattern"}}, run: (*Server).respKeys},
		{name: "expire", arity: -3, flags: []string{"write", "fast"}, first: 1, last: 1, step: 1, group: "generic", access: access.Admin,
			summary: "Drops the filter everywhere in the cluster after so many seconds",
			args:    []respArg{key, {name: "seconds", typ: "integer"}, condition}, run: (*Server).respExpire},
		{name: "pexpire", arity: -3, flags: []string{"write", "fast"}, first: 1, last: 1, step: 1, group: "generic", access: access.Admin,
			summary: "Drops the filter everywhere in the cluster after so many milliseconds",
			args:    []respArg{key, {name: "milliseconds", typ: "integer"}, condition}, run: (*Server).respExpire},
		{name: "expireat", arity: -3, flags: []string{"write", "fast"}, first: 1, last: 1, step: 1, group: "generic", access: access.Admin,
			summary: "Drops the filter everywhere in the cluster at a Unix time",
			args:    []respArg{key, {name: "unix-time-seconds", typ: "integer"}, condition}, run: (*Server).respExpire},
		{name: "pexpireat", arity: -3, flags: []string{"write", "fast"}, first: 1, last: 1, step: 1, group: "generic", access: access.Admin,
			summary: "Drops the filter everywhere in the cluster at a Unix time in milliseconds",
			args:    []respArg{key, {name: "unix-time-milliseconds", typ: "integer"}, condition}, run: (*Server).respExpire},
		{name: "persist", arity: 2, flags: []string{"write", "fast"}, first: 1, last: 1, step: 1, group: "generic", access: access.Admin,
			summary: "Takes the filter's deadline off", args: []respArg{key}, run: (*Server).respPersist},
		{name: "ttl", arity: 2, flags: []string{"readonly", "fast"}, first: 1, last: 1, step: 1, group: "generic", access: access.Read,
			summary: "Seconds until the filter is dropped: -1 never, -2 no filter", args: []respArg{key}, run: (*Server).respTTL},
		{name: "pttl", arity: 2, flags: []string{"readonly", "fast"}, first: 1, last: 1, step: 1, group: "generic", access: access.Read,
			summary: "Milliseconds until the filter is dropped: -1 never, -2 no filter", args: []respArg{key}, run: (*Server).respTTL},
		{name: "expiretime", arity: 2, flags: []string{"readonly", "fast"}, first: 1, last: 1, step: 1, group: "generic", access: access.Read,
			summary: "The Unix time the filter is dropped at: -1 never, -2 no filter", args: []respArg{key}, run: (*Server).respTTL},
		{name: "pexpiretime", arity: 2, flags: []string{"readonly", "fast"}, first: 1, last: 1, step: 1, group: "generic", access: access.Read,
			summary: "The Unix time in milliseconds the filter is dropped at: -1 never, -2 no filter", args: []respArg{key}, run: (*Server).respTTL},
		{name: "config", noMulti: true, arity: -2, flags: []string{"admin", "noscript", "loading", "stale"}, group: "server", access: access.Read,
			summary: "GET answers the common keys from the node's flags; SET is refused",
			args:    []respArg{{name: "subcommand", typ: "string"}, {name: "parameter", typ: "string", optional: true, multiple: true}},
			run:     (*Server).respConfig},
		{name: "dbsize", arity: 1, flags: []string{"readonly", "fast"}, group: "server", access: access.Read,
			summary: "The number of filters", run: (*Server).respDBSize},

		{name: "ping", arity: -1, flags: []string{"fast"}, group: "connection", summary: "PONG, or the message",
			args: []respArg{{name: "message", typ: "string", optional: true}}, run: (*Server).respPing},
		{name: "echo", arity: 2, flags: []string{"fast"}, group: "connection", summary: "The message",
			args: []respArg{{name: "message", typ: "string"}}, run: (*Server).respEcho},
		{name: "hello", noMulti: true, arity: -1, flags: []string{"noauth", "fast"}, group: "connection",
			summary: "Chooses the protocol (2 or 3), authenticates, names the connection; answers what the server is",
			args: []respArg{{name: "arguments", typ: "block", optional: true, sub: []respArg{
				{name: "protover", typ: "integer"},
				{name: "username-password", typ: "block", token: "AUTH", optional: true, sub: []respArg{{name: "username", typ: "string"}, {name: "password", typ: "string"}}},
				{name: "clientname", typ: "string", token: "SETNAME", optional: true}}}},
			run: (*Server).respHello},
		{name: "auth", noMulti: true, arity: -2, flags: []string{"noauth", "fast"}, group: "connection", summary: "Authenticates the connection (--resp-password-file)",
			args: []respArg{{name: "username", typ: "string", optional: true}, {name: "password", typ: "string"}}, run: (*Server).respAuth},
		{name: "select", arity: 2, flags: []string{"fast"}, group: "connection", summary: "Database 0, the only one",
			args: []respArg{{name: "index", typ: "integer"}}, run: (*Server).respSelect},
		{name: "client", arity: -2, flags: []string{}, group: "connection", summary: "SETNAME, GETNAME, SETINFO, ID, HELP",
			args: []respArg{{name: "subcommand", typ: "string"}, {name: "arg", typ: "string", optional: true, multiple: true}},
			run:  (*Server).respClient},
		{name: "quit", arity: -1, flags: []string{"noauth", "fast"}, group: "connection", summary: "Closes the connection", run: (*Server).respQuit,
			control: true},
		{name: "info", noMulti: true, arity: -1, flags: []string{}, group: "server", access: access.Read,
			summary: "The server, clients, memory, stats, keyspace and bloom sections",
			args:    []respArg{{name: "section", typ: "string", optional: true, multiple: true}}, run: (*Server).respInfo},
		{name: "multi", arity: 1, flags: []string{"noscript", "loading", "stale", "fast", "allow_busy"}, group: "transactions",
			summary: "Starts a transaction: the commands that follow are queued until EXEC", run: (*Server).respMulti, control: true},
		{name: "exec", arity: 1, flags: []string{"noscript", "loading", "stale", "skip_slowlog"}, group: "transactions",
			summary: "Runs the queued commands, no other client's between them, and answers their replies", run: (*Server).respExec, control: true},
		{name: "discard", arity: 1, flags: []string{"noscript", "loading", "stale", "fast", "allow_busy"}, group: "transactions",
			summary: "Forgets the queued commands", run: (*Server).respDiscard, control: true},
		{name: "watch", arity: -2, flags: []string{"noscript", "loading", "stale", "fast", "allow_busy"}, first: 1, last: -1, step: 1, group: "transactions",
			summary: "Not supported: every add anywhere in the cluster changes a filter", args: []respArg{keys}, run: (*Server).respWatch, control: true},
		{name: "unwatch", arity: 1, flags: []string{"noscript", "loading", "stale", "fast", "allow_busy"}, group: "transactions",
			summary: "OK: nothing is watched", run: (*Server).respUnwatch},
		{name: "command", noMulti: true, arity: -1, flags: []string{}, group: "server", summary: "Describes the commands: COMMAND, COMMAND COUNT, COMMAND INFO, COMMAND DOCS",
			args: []respArg{{name: "subcommand", typ: "string", optional: true}, {name: "command-name", typ: "string", optional: true, multiple: true}},
			run:  (*Server).respCommandCmd},
	}
}

// respCommand runs one command and appends its reply to rc.out. A
// command in pieces is run by its long form, which reads the pieces; one
// without is refused, its pieces skipped by the reader.
func (s *Server) respCommand(rc *respConn, cmd resp.Command) {
	args := cmd.Args
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
		c = s.cmds.byName[string(name)]
		if c != nil && len(name) <= len(rc.lastName) {
			rc.lastCmd, rc.lastLen = c, copy(rc.lastName[:], name)
		}
	}
	msg := s.refusal(rc, c, cmd)
	switch {
	case rc.tx.on && msg != "":
		s.txRefuse(rc, msg)
	case rc.tx.on && c.noMulti:
		s.txRefuse(rc, "ERR Command not allowed inside a transaction")
	case rc.tx.on && !c.control:
		s.queue(rc, args)
	case msg != "":
		s.respErr(rc, msg)
	case cmd.More > 0:
		c.long(s, rc, cmd)
	default:
		c.run(s, rc, args)
	}
}

// refusal returns the error for a command c that may not run as it came,
// or "".
func (s *Server) refusal(rc *respConn, c *respCmd, cmd resp.Command) string {
	total := len(cmd.Args) + cmd.More
	switch {
	case c == nil:
		return unknownCommand(cmd.Args)
	case !rc.authed && !c.has("noauth"):
		return "NOAUTH Authentication required."
	case c.arity > 0 && total != c.arity, c.arity < 0 && total < -c.arity:
		return "ERR wrong number of arguments for '" + c.name + "' command"
	case !s.cfg.Policy.Allows(c.access, rc.cn.From.Addr(), false):
		s.c.inc(cForbidden)
		return "NOPERM this address may not run '" + c.name + "' (" + c.access.Flag() + ")"
	case cmd.More > 0 && c.long == nil:
		return s.tooLong(c.name)
	case cmd.More > 0 && rc.tx.on:
		return "ERR '" + c.name + "' in pieces (more than " + strconv.Itoa(len(cmd.Args)) + " arguments) cannot be queued in a transaction: send it outside MULTI"
	}
	return ""
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

// respErr appends an error reply.
func (s *Server) respErr(rc *respConn, msg string) {
	s.c.inc(cErrors)
	rc.out = resp.AppendError(rc.out, msg)
}

// respOK appends +OK.
func respOK(rc *respConn) { rc.out = append(rc.out, "+OK\r\n"...) }

// errNotFound is RedisBloom's reply for a filter that does not exist.
const errNotFound = "ERR not found"

func (s *Server) bfReserve(rc *respConn, args [][]byte) {
	if len(args) > 13 {
		s.respErr(rc, "ERR wrong number of arguments for 'bf.reserve' command")
		return
	}
	fpRate, err := strconv.ParseFloat(string(args[2]), 64)
	if err != nil {
		s.respErr(rc, "ERR bad error rate")
		return
	}
	if !(fpRate > 0 && fpRate < 1) { // NaN too
		s.respErr(rc, "ERR (0 < error rate range < 1) ")
		return
	}
	capacity, err := strconv.ParseInt(string(args[3]), 10, 64)
	if err != nil {
		s.respErr(rc, "ERR bad capacity")
		return
	}
	if capacity <= 0 {
		s.respErr(rc, "ERR (capacity should be larger than 0)")
		return
	}
	sizing := registry.Sizing{Layout: filter.Blocked, Capacity: uint64(capacity), FPRate: fpRate, Expansion: s.cfg.Sizing.Expansion}
	var g growth
	var w window
	for i := 4; i < len(args); i++ {
		switch strings.ToUpper(string(args[i])) {
		case "NONSCALING":
			g.nonScaling = true
		case "REPLICAS":
			if i++; i == len(args) {
				s.respErr(rc, "ERR wrong number of arguments for 'bf.reserve' command")
				return
			}
			var msg string
			if sizing.Replicas, msg = replicasOption(args[i]); msg != "" {
				s.respErr(rc, msg)
				return
			}
		case "EXPANSION":
			if i++; i == len(args) {
				s.respErr(rc, "ERR wrong number of arguments for 'bf.reserve' command")
				return
			}
			if msg := g.expansion(args[i]); msg != "" {
				s.respErr(rc, msg)
				return
			}
		case "WINDOW", "SLICES":
			if i++; i == len(args) {
				s.respErr(rc, "ERR wrong number of arguments for 'bf.reserve' command")
				return
			}
			if msg := w.option(string(args[i-1]), args[i]); msg != "" {
				s.respErr(rc, msg)
				return
			}
		default:
			s.respErr(rc, "ERR unknown argument '"+string(truncate(args[i], 64))+"' (BF.RESERVE key error_rate capacity [EXPANSION expansion] [NONSCALING] [WINDOW seconds [SLICES n]] [REPLICAS r])")
			return
		}
	}
	if sizing.Replicas > 0 && w.length > 0 {
		s.respErr(rc, "ERR a filter with a WINDOW lives on every member: REPLICAS goes without it")
		return
	}
	if msg := g.apply(&sizing); msg != "" {
		s.respErr(rc, msg)
		return
	}
	if msg := w.apply(&sizing, g); msg != "" {
		s.respErr(rc, msg)
		return
	}
	if s.respExistsName(args[1]) {
		s.respErr(rc, "ERR item exists")
		return
	}
	s.outside(rc, func() {
		_, err = s.b.Create(string(args[1]), sizing, rc.cn.From.Addr())
	})
	if err != nil {
		s.respErr(rc, "ERR "+err.Error())
		return
	}
	respOK(rc)
}

// growth is the EXPANSION and NONSCALING options of BF.RESERVE and
// BF.INSERT.
type growth struct {
	nonScaling bool
	x          uint32
	set        bool
}

// expansion reads EXPANSION's value, or returns RedisBloom's error.
func (g *growth) expansion(v []byte) string {
	x, err := strconv.ParseInt(string(v), 10, 64)
	if err != nil || x < 1 {
		return "ERR bad expansion"
	}
	if x > gossip.MaxExpansion {
		return fmt.Sprintf("ERR expansion is at most %d", gossip.MaxExpansion)
	}
	g.x, g.set = uint32(x), true
	return ""
}

// apply sets s's expansion as the options say (unset: the node's).
func (g growth) apply(s *registry.Sizing) string {
	switch {
	case g.nonScaling && g.set:
		return "ERR Nonscaling filters cannot expand"
	case g.nonScaling:
		s.Expansion = 0
	case g.set:
		s.Expansion = g.x
	}
	return ""
}

// addTarget returns the filter adds to name go to.
func (s *Server) addTarget(rc *respConn, name []byte) (*registry.Filter, error) {
	if f := s.lookup(rc, name).Winner(); f != nil {
		return f, nil
	}
	var f *registry.Filter
	var err error
	s.outside(rc, func() { f, err = s.b.FilterFor(name, rc.cn.From.Addr()) }) // it may create the filter
	return f, err
}

// respAdd adds keys to f and returns, per key, whether it changed the
// filter, as bits in rc.bits.
func (s *Server) respAdd(rc *respConn, f *registry.Filter, keys [][]byte) ([]byte, error) {
	need := (len(keys) + 7) / 8
	if cap(rc.bits) < need {
		rc.bits = make([]byte, need)
	}
	bits := rc.bits[:need]
	clear(bits)
	fresh, wait, err := f.Add(keys, bits, &rc.sc)
	if err != nil {
		return nil, err
	}
	rc.waits.Add(wait)
	rc.counts.added += uint64(len(keys))
	rc.counts.addedNew += uint64(fresh)
	return bits, nil
}

// bfAdd serves BF.ADD (one item, one answer) and BF.MADD (an array).
func (s *Server) bfAdd(rc *respConn, args [][]byte) {
	if s.placed(args[1]) {
		s.placedAdded(rc, args[1], args[2:], len(args[0]) != len("bf.add"))
		return
	}
	f, err := s.addTarget(rc, args[1])
	if err != nil {
		s.respAddErr(rc, err)
		return
	}
	s.respAdded(rc, f, args[2:], len(args[0]) != len("bf.add"))
}

// respAdded adds keys and appends the answers: one boolean, or an array.
func (s *Server) respAdded(rc *respConn, f *registry.Filter, keys [][]byte, multi bool) {
	bits, err := s.respAdd(rc, f, keys)
	if err != nil {
		s.respAddErr(rc, err)
		return
	}
	start := len(rc.out)
	if multi {
		rc.out = resp.AppendArray(rc.out, len(keys))
		for i := range keys {
			rc.out = resp.AppendBool(rc.out, rc.proto, bits[i/8]&(1<<(i%8)) != 0)
		}
	} else {
		rc.out = resp.AppendBool(rc.out, rc.proto, bits[0]&1 != 0)
	}
	if rc.waits.Len() > 0 { // the reply waits for the disk (--fsync always)
		rc.acks = append(rc.acks, [2]int{start, len(rc.out)})
	}
}

// misconf is the reply to adds the node cannot keep: its data directory
// cannot be written (why), as Redis answers writes it cannot persist.
func misconf(why error) string {
	return "MISCONF the add is not kept: " + store.Cause(why) + ": the data directory cannot be written; " +
		"adds are refused until it can (the node retries on its own), reads go on"
}

// unkept turns the replies gathered to adds that wait for the disk into
// MISCONF errors: the log could not be written (why).
func (s *Server) unkept(rc *respConn, why error) {
	if len(rc.acks) == 0 {
		return
	}
	msg := resp.AppendError(nil, misconf(why))
	out := make([]byte, 0, len(rc.out))
	last := 0
	for _, a := range rc.acks {
		out = append(append(out, rc.out[last:a[0]]...), msg...)
		last = a[1]
	}
	out = append(out, rc.out[last:]...)
	rc.out = append(rc.out[:0], out...)
	s.c.add(cErrors, uint64(len(rc.acks)))
	rc.acks = rc.acks[:0]
}

// respAddErr answers an add that found no filter to add to, or one it
// cannot keep.
func (s *Server) respAddErr(rc *respConn, err error) {
	if errors.Is(err, store.ErrUnwritable) {
		s.respErr(rc, misconf(err))
		return
	}
	if errors.Is(err, registry.ErrNonScaling) {
		s.respErr(rc, "ERR "+registry.ErrNonScaling.Error()) // RedisBloom's words
		return
	}
	if errors.Is(err, registry.ErrDropped) || errors.Is(err, registry.ErrFull) || errors.Is(err, registry.ErrClock) {
		s.respErr(rc, "ERR "+err.Error())
		return
	}
	if !s.cfg.AutoCreate {
		s.respErr(rc, errNotFound+" (--auto-create is off: BF.RESERVE the filter first)")
		return
	}
	s.respErr(rc, "ERR "+err.Error())
}

// insertOpts is what BF.INSERT's options ask for.
type insertOpts struct {
	sizing   registry.Sizing
	create   bool
	explicit bool // a sizing given: blocked, whatever the node's profile
	items    int  // where the items begin
}

// bfInsert serves BF.INSERT key [CAPACITY c] [ERROR e] [NOCREATE]
// [NONSCALING] ITEMS item...: it creates the filter unless NOCREATE,
// then adds.
func (s *Server) bfInsert(rc *respConn, args [][]byte) {
	f, items, ok := s.insertTarget(rc, args, len(args))
	switch {
	case !ok:
	case f == nil:
		s.placedAdded(rc, args[1], args[items:], true)
	default:
		s.respAdded(rc, f, args[items:], true)
	}
}

// insertTarget reads BF.INSERT's options from args, the first of total
// arguments, and creates the filter they ask for: the filter to add to
// (nil for a filter placed on some members, whose adds go through the
// node) and where the items begin in args; ok false with the error
// answered.
func (s *Server) insertTarget(rc *respConn, args [][]byte, total int) (f *registry.Filter, items int, ok bool) {
	o, errMsg := s.insertOptions(args, total)
	if errMsg != "" {
		s.respErr(rc, errMsg)
		return nil, 0, false
	}
	name := args[1]
	if s.placed(name) {
		return nil, o.items, true
	}
	if len(s.reg.Lookup(name)) == 0 {
		if !o.create {
			if s.cfg.AutoCreate {
				s.respErr(rc, errNotFound)
			} else {
				s.respErr(rc, errNotFound+" (--auto-create is off: BF.RESERVE the filter first)")
			}
			return nil, 0, false
		}
		if s.cfg.Sizing.Layout == filter.Classic && !o.explicit {
			o.sizing = registry.Sizing{Layout: filter.Classic}
		}
		var err error
		s.outside(rc, func() { _, err = s.b.Create(string(name), o.sizing, rc.cn.From.Addr()) })
		if err != nil {
			s.respErr(rc, "ERR "+err.Error())
			return nil, 0, false
		}
	}
	f, err := s.addTarget(rc, name)
	if err != nil {
		s.respAddErr(rc, err)
		return nil, 0, false
	}
	return f, o.items, true
}

// insertOptions reads BF.INSERT's options from args, the first of total
// arguments, or returns RedisBloom's error for them.
func (s *Server) insertOptions(args [][]byte, total int) (insertOpts, string) {
	o := insertOpts{sizing: registry.Sizing{Layout: filter.Blocked, Capacity: s.cfg.Sizing.Capacity, FPRate: s.cfg.Sizing.FPRate,
		Expansion: s.cfg.Sizing.Expansion}, create: s.cfg.AutoCreate}
	var g growth
	const arity = "ERR wrong number of arguments for 'bf.insert' command"
	i := 2
	for ; i < len(args); i++ {
		opt := strings.ToUpper(string(args[i]))
		switch {
		case opt == "ITEMS":
			if i+1 >= total {
				return o, arity
			}
			o.items = i + 1
			if msg := g.apply(&o.sizing); msg != "" {
				return o, msg
			}
			o.explicit = o.explicit || g.set || g.nonScaling
			return o, ""
		case opt == "NOCREATE":
			o.create = false
		case opt == "NONSCALING":
			g.nonScaling = true
		case opt == "EXPANSION":
			if i++; i == len(args) {
				return o, arity
			}
			if msg := g.expansion(args[i]); msg != "" {
				return o, msg
			}
		case opt != "CAPACITY" && opt != "ERROR":
			return o, "Unknown argument received"
		case i+1 == len(args):
			return o, arity
		default:
			i++
			if msg := o.size(opt, string(args[i])); msg != "" {
				return o, msg
			}
		}
	}
	return o, arity
}

// size takes a CAPACITY or ERROR option's value.
func (o *insertOpts) size(opt, v string) string {
	o.explicit = true
	if opt == "CAPACITY" {
		c, err := strconv.ParseInt(v, 10, 64)
		switch {
		case err != nil:
			return "Bad capacity"
		case c < 1:
			return "Bad argument received"
		}
		o.sizing.Capacity = uint64(c)
		return ""
	}
	e, err := strconv.ParseFloat(v, 64)
	switch {
	case err != nil:
		return "Bad error rate"
	case !(e > 0 && e < 1): // NaN too
		return "Bad argument received"
	}
	o.sizing.FPRate = e
	return ""
}

// bfExists serves BF.EXISTS and BF.MEXISTS: true for a key any live
// version of the filter holds; false for every key of a filter that does
// not exist.
func (s *Server) bfExists(rc *respConn, args [][]byte) {
	keys := args[2:]
	multi := len(args[0]) != len("bf.exists")
	if s.placed(args[1]) {
		s.placedExists(rc, args[1], keys, multi)
		return
	}
	if multi {
		rc.out = resp.AppendArray(rc.out, len(keys))
	}
	hits := 0
	vs := s.lookup(rc, args[1])
	for _, k := range keys {
		v := vs.Has(k)
		if v {
			hits++
		}
		rc.out = resp.AppendBool(rc.out, rc.proto, v)
	}
	rc.counts.asked += uint64(len(keys))
	rc.counts.found += uint64(hits)
}

// freshStatsBytes is the largest filter BF.INFO and BF.CARD count afresh
// (about 0.3 ms); a larger one's figures are the background refresh's
// (about a second old).
const freshStatsBytes = 4 << 20

// respFilter describes the filter called name; with fresh, counting a
// filter up to freshStatsBytes afresh. A filter placed on other members
// is described from the catalog, with no items: its owners count them.
func (s *Server) respFilter(name []byte, fresh bool) (desc filterDesc, ok bool) {
	vs := s.reg.Lookup(name)
	f := vs.Winner()
	if f == nil {
		return s.placedDesc(name)
	}
	desc = filterDesc{versions: len(vs), stages: len(f.Segments()), capacity: f.Capacity(), bytes: f.Bytes(),
		expansion: f.Version().Def.Expansion}
	if fresh && f.Bytes() <= freshStatsBytes {
		desc.keys = uint64(f.ReadStats().EstimatedKeys)
	} else {
		desc.keys = uint64(s.reg.StatsNow(f).EstimatedKeys)
	}
	return desc, true
}

// filterDesc is what BF.INFO says of a filter.
type filterDesc struct {
	capacity, bytes, keys uint64
	versions, stages      int
	expansion             uint32
}

func (s *Server) bfInfo(rc *respConn, args [][]byte) {
	if len(args) > 3 {
		s.respErr(rc, "ERR wrong number of arguments for 'bf.info' command")
		return
	}
	d, ok := s.respFilter(args[1], true)
	if !ok {
		s.respErr(rc, errNotFound)
		return
	}
	fields := []struct {
		name, arg string
		v         int64
	}{
		{"Capacity", "CAPACITY", int64(d.capacity)},
		{"Size", "SIZE", int64(d.bytes)},
		{"Number of filters", "FILTERS", int64(d.stages)},
		{"Number of items inserted", "ITEMS", int64(d.keys)},
		// RedisBloom answers null for a NONSCALING filter, which go-redis
		// cannot read: 0 says the same.
		{"Expansion rate", "EXPANSION", int64(d.expansion)},
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
		s.respErr(rc, "Invalid information value")
		return
	}
	w, placed := s.placement(args[1])
	n := len(fields)
	if placed {
		n += 3
	}
	rc.out = resp.AppendMap(rc.out, rc.proto, n)
	for _, f := range fields {
		rc.out = resp.AppendSimple(rc.out, f.name)
		value(f.v)
	}
	if placed { // rmbd's: RedisBloom's clients skip fields they do not know
		rc.out = resp.AppendSimple(rc.out, "Replicas")
		value(int64(w.replicas))
		rc.out = resp.AppendSimple(rc.out, "Owners")
		rc.out = resp.AppendArray(rc.out, len(w.owners))
		for _, o := range w.owners {
			rc.out = resp.AppendBulkString(rc.out, o)
		}
		rc.out = resp.AppendSimple(rc.out, "Here")
		rc.out = resp.AppendSimple(rc.out, w.here)
	}
}

func (s *Server) bfCard(rc *respConn, args [][]byte) {
	d, _ := s.respFilter(args[1], true)
	rc.out = resp.AppendInt(rc.out, int64(d.keys))
}
