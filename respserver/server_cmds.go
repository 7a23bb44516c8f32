package respserver

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rmbd/rmbd/internal/version"
	"github.com/rmbd/rmbd/resp"
)

// Connection and server commands.

func (s *Server) respPing(rc *respConn, args [][]byte) {
	switch len(args) {
	case 1:
		rc.out = append(rc.out, "+PONG\r\n"...)
	case 2:
		rc.out = resp.AppendBulk(rc.out, args[1])
	default:
		s.respErr(rc, "ERR wrong number of arguments for 'ping' command")
	}
}

func (s *Server) respEcho(rc *respConn, args [][]byte) { rc.out = resp.AppendBulk(rc.out, args[1]) }

func (s *Server) respQuit(rc *respConn, _ [][]byte) {
	respOK(rc)
	rc.quit = true
}

func (s *Server) respSelect(rc *respConn, args [][]byte) {
	db, err := strconv.Atoi(string(args[1]))
	switch {
	case err != nil:
		s.respErr(rc, "ERR value is not an integer or out of range")
	case db != 0:
		s.respErr(rc, "ERR DB index is out of range")
	default:
		respOK(rc)
	}
}

// respAuth serves AUTH [username] password. The only user is "default";
// without --resp-password-file it needs no password, as Redis's default
// user: AUTH default <anything> succeeds, and AUTH <password> is the
// error Redis gives.
func (s *Server) respAuth(rc *respConn, args [][]byte) {
	if len(args) > 3 {
		s.respErr(rc, "ERR syntax error")
		return
	}
	if len(args) == 2 && len(s.cfg.Passwords) == 0 {
		s.respErr(rc, errNoPassword)
		return
	}
	user, pass := []byte("default"), args[1]
	if len(args) == 3 {
		user, pass = args[1], args[2]
	}
	if s.login(rc, user, pass) {
		respOK(rc)
	}
}

const errNoPassword = "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?"

// login checks a user and password, answering the error if they are
// wrong. With passwords, every check goes through the throttle
// (authlimit.go): it may wait, or be refused, and a connection that
// fails AuthLimits.PerConn times is closed.
func (s *Server) login(rc *respConn, user, pass []byte) bool {
	if len(s.cfg.Passwords) == 0 { // nothing to guess: the default user needs no password
		if string(user) != "default" {
			s.c.inc(cAuthFailed)
			s.respErr(rc, errWrongPass)
			return false
		}
		rc.authed = true
		return true
	}
	from := rc.cn.From.Addr()
	wait, ok := s.auth.admit(from)
	if !ok {
		s.c.inc(cAuthRefused)
		s.respErr(rc, errAuthThrottled)
		rc.quit, rc.hangUp = true, true
		return false
	}
	if wait > 0 {
		s.c.inc(cAuthDelayed)
		var woke bool
		s.outside(rc, func() { woke = s.auth.sleep(s.cfg.Context, wait) })
		if !woke { // shutting down
			s.auth.done(from, false)
			rc.quit = true
			return false
		}
	}
	right := s.respPassword(pass) && string(user) == "default"
	s.auth.done(from, !right)
	if !right {
		s.c.inc(cAuthFailed)
		s.respErr(rc, errWrongPass)
		if rc.fails++; rc.fails >= s.auth.lim.PerConn {
			rc.quit, rc.hangUp = true, true
		}
		return false
	}
	rc.authed = true
	return true
}

const (
	errWrongPass     = "WRONGPASS invalid username-password pair or user is disabled."
	errAuthThrottled = "ERR too many wrong passwords from this address of late: try again later"
)

// respHello serves HELLO [protover [AUTH username password] [SETNAME
// clientname]].
func (s *Server) respHello(rc *respConn, args [][]byte) {
	proto := rc.proto
	if len(args) > 1 {
		v, err := strconv.Atoi(string(args[1]))
		if err != nil {
			s.respErr(rc, "ERR Protocol version is not an integer or out of range")
			return
		}
		if v != 2 && v != 3 {
			s.respErr(rc, "NOPROTO unsupported protocol version")
			return
		}
		proto = v
	}
	var name []byte
	setName := false
	for i := 2; i < len(args); i++ {
		switch strings.ToUpper(string(args[i])) {
		case "AUTH":
			if i+2 >= len(args) {
				s.respErr(rc, "ERR Syntax error in HELLO option 'AUTH'")
				return
			}
			if !s.login(rc, args[i+1], args[i+2]) {
				return
			}
			i += 2
		case "SETNAME":
			if i+1 >= len(args) {
				s.respErr(rc, "ERR Syntax error in HELLO option 'SETNAME'")
				return
			}
			i++
			name, setName = args[i], true
		default:
			s.respErr(rc, "ERR Syntax error in HELLO option '"+string(truncate(args[i], 64))+"'")
			return
		}
	}
	if !rc.authed {
		s.respErr(rc, "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time")
		return
	}
	if setName {
		if !validClientName(name) {
			s.respErr(rc, errClientName)
			return
		}
		rc.name = string(name)
	}
	rc.proto = proto
	rc.out = appendHello(rc.out, proto, rc.id)
}

// appendHello appends HELLO's answer: what the server is.
func appendHello(b []byte, proto int, id int64) []byte {
	b = resp.AppendMap(b, proto, 7)
	b = resp.AppendBulkString(b, "server")
	b = resp.AppendBulkString(b, "rmbd")
	b = resp.AppendBulkString(b, "version")
	b = resp.AppendBulkString(b, version.String())
	b = resp.AppendBulkString(b, "proto")
	b = resp.AppendInt(b, int64(proto))
	b = resp.AppendBulkString(b, "id")
	b = resp.AppendInt(b, id)
	b = resp.AppendBulkString(b, "mode")
	b = resp.AppendBulkString(b, "standalone")
	b = resp.AppendBulkString(b, "role")
	b = resp.AppendBulkString(b, "master")
	b = resp.AppendBulkString(b, "modules")
	b = resp.AppendArray(b, 1)
	b = resp.AppendMap(b, proto, 2)
	b = resp.AppendBulkString(b, "name")
	b = resp.AppendBulkString(b, "bf")
	b = resp.AppendBulkString(b, "ver")
	return resp.AppendInt(b, 0)
}

const errClientName = "ERR Client names cannot contain spaces, newlines or special characters."

// validClientName: Redis's rule, printable ASCII without spaces.
func validClientName(b []byte) bool {
	for _, c := range b {
		if c < '!' || c > '~' {
			return false
		}
	}
	return true
}

// respClient serves CLIENT SETNAME, GETNAME, SETINFO and ID.
func (s *Server) respClient(rc *respConn, args [][]byte) {
	sub := strings.ToUpper(string(args[1]))
	arity := map[string]int{"SETNAME": 3, "GETNAME": 2, "SETINFO": 4, "ID": 2, "HELP": 2}
	want, known := arity[sub]
	switch {
	case !known:
		s.respErr(rc, "ERR unknown subcommand '"+string(truncate(args[1], 64))+"'. Try CLIENT HELP.")
		return
	case len(args) != want:
		s.respErr(rc, "ERR wrong number of arguments for 'client|"+strings.ToLower(sub)+"' command")
		return
	}
	switch sub {
	case "SETNAME":
		if !validClientName(args[2]) {
			s.respErr(rc, errClientName)
			return
		}
		rc.name = string(args[2])
		respOK(rc)
	case "GETNAME":
		if rc.name == "" {
			rc.out = resp.AppendNull(rc.out, rc.proto)
			return
		}
		rc.out = resp.AppendBulkString(rc.out, rc.name)
	case "SETINFO":
		attr := strings.ToUpper(string(args[2]))
		if attr != "LIB-NAME" && attr != "LIB-VER" {
			s.respErr(rc, "ERR Unrecognized option '"+string(truncate(args[2], 64))+"'")
			return
		}
		if !validClientName(args[3]) {
			s.respErr(rc, "ERR "+attr+" cannot contain spaces, newlines or special characters.")
			return
		}
		respOK(rc) // accepted, and not kept: nothing lists clients

	case "ID":
		rc.out = resp.AppendInt(rc.out, rc.id)
	case "HELP":
		s.respHelp(rc, "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
			"GETNAME", "    Return the name of the current connection.",
			"ID", "    Return the ID of the current connection.",
			"SETINFO <option> <value>", "    Set client meta attr. Options are:",
			"    * LIB-NAME: the client lib name.", "    * LIB-VER: the client lib version.",
			"SETNAME <name>", "    Assign the name <name> to the current connection.",
			"HELP", "    Print this help.")
	}
}

// respInfo serves INFO [section ...]: server, clients, memory, stats,
// keyspace and bloom, all of them by default ("all", "everything" and "default"
// say the same).
func (s *Server) respInfo(rc *respConn, args [][]byte) {
	sections := []string{"server", "clients", "memory", "stats", "keyspace", "bloom"}
	want := map[string]bool{}
	for _, a := range args[1:] {
		sec := strings.ToLower(string(a))
		if sec == "all" || sec == "everything" || sec == "default" {
			for _, x := range sections {
				want[x] = true
			}
		}
		want[sec] = true
	}
	var b strings.Builder
	for _, sec := range sections {
		if len(args) > 1 && !want[sec] {
			continue
		}
		if b.Len() > 0 {
			b.WriteString("\r\n")
		}
		s.infoSection(&b, sec)
	}
	rc.out = resp.AppendVerbatim(rc.out, rc.proto, b.String())
}

// infoSection writes one section of INFO, Redis's "# Name" and
// "field:value" lines.
func (s *Server) infoSection(b *strings.Builder, section string) {
	line := func(k string, v any) { fmt.Fprintf(b, "%s:%v\r\n", k, v) }
	st := s.b.Info()
	own := s.Counts()
	switch section {
	case "server":
		b.WriteString("# Server\r\n")
		line("redis_version", RedisVersion) // the Redis whose commands rmbd follows
		line("rmbd_version", version.String())
		line("redis_mode", "standalone")
		line("process_id", os.Getpid())
		line("tcp_port", s.Addr().Port())
		line("listen", st.Listen)
		line("node_name", st.Name)
		line("profile", st.Profile)
		up := time.Duration(0)
		if !st.Started.IsZero() {
			up = time.Since(st.Started)
		}
		line("uptime_in_seconds", int64(up.Seconds()))
		line("uptime_in_days", int64(up.Hours()/24))
	case "clients":
		b.WriteString("# Clients\r\n")
		line("connected_clients", st.OpenConns)
		line("maxclients", st.MaxConns)
		line("max_clients_per_source", st.MaxConnsPerSource)
	case "memory":
		b.WriteString("# Memory\r\n")
		s.memoryInfo(line)
	case "stats":
		b.WriteString("# Stats\r\n")
		line("total_connections_received", st.ConnsReceived)
		line("total_commands_processed", own.Commands)
		line("total_error_replies", own.Errors)
		line("total_protocol_errors", own.ProtocolErrors)
		line("rejected_connections", st.Rejected)
		line("evicted_clients", st.Evicted)
		line("keys_added", st.Adds)
		line("keys_added_new", st.AddsNew)
		line("keys_asked", st.Asked)
		line("keys_found", st.Found)
	case "keyspace":
		b.WriteString("# Keyspace\r\n")
		line("db0", fmt.Sprintf("keys=%d,expires=0,avg_ttl=0", len(s.respNames())))
	case "bloom":
		b.WriteString("# Bloom\r\n")
		for _, name := range s.respNames() {
			d, ok := s.respFilter([]byte(name), false)
			if !ok {
				continue
			}
			line("filter_"+infoName(name), fmt.Sprintf("capacity=%d,size=%d,versions=%d,items=%d", d.capacity, d.bytes, d.versions, d.keys))
		}
	}
}

// infoName makes a filter's name fit an INFO field: what is not a
// letter, digit, '-', '.' or '_' becomes '_'.
func infoName(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '-' || r == '.' || r == '_' || ('0' <= r && r <= '9') || ('a' <= r && r <= 'z') || ('A' <= r && r <= 'Z') {
			return r
		}
		return '_'
	}, s)
}

// respCommandCmd serves COMMAND, COMMAND COUNT, COMMAND INFO [name...],
// COMMAND DOCS [name...] and COMMAND LIST.
func (s *Server) respCommandCmd(rc *respConn, args [][]byte) {
	all := s.cmds.list
	pick := func(names [][]byte) []*respCmd {
		if len(names) == 0 {
			return all
		}
		var out []*respCmd
		for _, a := range names {
			out = append(out, s.cmds.byName[strings.ToLower(string(a))]) // nil: unknown
		}
		return out
	}
	if len(args) == 1 {
		rc.out = resp.AppendArray(rc.out, len(all))
		for _, c := range all {
			rc.out = appendCommandInfo(rc.out, rc.proto, c)
		}
		return
	}
	switch strings.ToUpper(string(args[1])) {
	case "COUNT":
		rc.out = resp.AppendInt(rc.out, int64(len(all)))
	case "LIST":
		rc.out = resp.AppendArray(rc.out, len(all))
		for _, c := range all {
			rc.out = resp.AppendBulkString(rc.out, c.name)
		}
	case "INFO":
		cs := pick(args[2:])
		rc.out = resp.AppendArray(rc.out, len(cs))
		for _, c := range cs {
			if c == nil {
				rc.out = resp.AppendNull(rc.out, rc.proto)
				continue
			}
			rc.out = appendCommandInfo(rc.out, rc.proto, c)
		}
	case "DOCS":
		cs := slices.DeleteFunc(pick(args[2:]), func(c *respCmd) bool { return c == nil })
		rc.out = resp.AppendMap(rc.out, rc.proto, len(cs))
		for _, c := range cs {
			rc.out = resp.AppendBulkString(rc.out, c.name)
			rc.out = appendCommandDocs(rc.out, rc.proto, c)
		}
	default:
		s.respErr(rc, "ERR unknown subcommand '"+string(truncate(args[1], 64))+"'. Try COMMAND HELP.")
	}
}

// appendCommandInfo appends c as COMMAND INFO describes a command: name,
// arity, flags, first key, last key, step, ACL categories, tips, key
// specifications, subcommands.
func appendCommandInfo(b []byte, proto int, c *respCmd) []byte {
	b = resp.AppendArray(b, 10)
	b = resp.AppendBulkString(b, c.name)
	b = resp.AppendInt(b, int64(c.arity))
	b = resp.AppendSet(b, proto, len(c.flags))
	for _, f := range c.flags {
		b = resp.AppendSimple(b, f)
	}
	b = resp.AppendInt(b, int64(c.first))
	b = resp.AppendInt(b, int64(c.last))
	b = resp.AppendInt(b, int64(c.step))
	b = resp.AppendSet(b, proto, 1)
	b = resp.AppendSimple(b, "@"+c.group)
	b = resp.AppendArray(b, 0) // tips
	b = resp.AppendArray(b, 0) // key specifications
	return resp.AppendArray(b, 0)
}

// appendCommandDocs appends c's documentation: summary, since, group and
// arguments, which redis-cli turns into hints.
func appendCommandDocs(b []byte, proto int, c *respCmd) []byte {
	pairs := 3
	if len(c.args) > 0 {
		pairs++
	}
	b = resp.AppendMap(b, proto, pairs)
	b = resp.AppendBulkString(b, "summary")
	b = resp.AppendBulkString(b, c.summary)
	b = resp.AppendBulkString(b, "since")
	b = resp.AppendBulkString(b, "1.0.0")
	b = resp.AppendBulkString(b, "group")
	b = resp.AppendBulkString(b, strings.TrimPrefix(c.group, "@"))
	if len(c.args) > 0 {
		b = resp.AppendBulkString(b, "arguments")
		b = appendArgDocs(b, proto, c.args)
	}
	return b
}

func appendArgDocs(b []byte, proto int, args []respArg) []byte {
	b = resp.AppendArray(b, len(args))
	for _, a := range args {
		var flags []string
		if a.optional {
			flags = append(flags, "optional")
		}
		if a.multiple {
			flags = append(flags, "multiple")
		}
		pairs := 3
		if a.token != "" {
			pairs++
		}
		if len(flags) > 0 {
			pairs++
		}
		if len(a.sub) > 0 {
			pairs++
		}
		b = resp.AppendMap(b, proto, pairs)
		b = resp.AppendBulkString(b, "name")
		b = resp.AppendBulkString(b, a.name)
		b = resp.AppendBulkString(b, "type")
		b = resp.AppendBulkString(b, a.typ)
		b = resp.AppendBulkString(b, "display_text")
		b = resp.AppendBulkString(b, a.name)
		if a.token != "" {
			b = resp.AppendBulkString(b, "token")
			b = resp.AppendBulkString(b, a.token)
		}
		if len(flags) > 0 {
			b = resp.AppendBulkString(b, "flags")
			b = resp.AppendArray(b, len(flags))
			for _, f := range flags {
				b = resp.AppendSimple(b, f)
			}
		}
		if len(a.sub) > 0 {
			b = resp.AppendBulkString(b, "arguments")
			b = appendArgDocs(b, proto, a.sub)
		}
	}
	return b
}
