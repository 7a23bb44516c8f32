package respserver

import (
	"fmt"
	"os"
	"runtime/metrics"
	"strconv"
	"strings"

	"github.com/rmbd/rmbd/resp"
)

// What Redis users' tools ask of any server, answered from rmbd's own
// settings: CONFIG GET of the common keys (redis-benchmark asks for save
// and appendonly), CLIENT HELP, INFO memory, and the expiry commands,
// refused with the reason.

// RedisVersion is the Redis version whose commands and replies rmbd
// follows: INFO server's redis_version, beside rmbd_version.
const RedisVersion = "7.2.0"

// configValues returns CONFIG GET's keys and values, from the node's
// settings: every key Redis has that rmbd has a setting for.
func (s *Server) configValues() [][2]string {
	st := s.b.Info()
	_, maxMem := s.reg.Memory()
	appendonly, fsync := "no", "no"
	if st.DataDir {
		appendonly, fsync = "yes", st.Fsync
	}
	host, port := st.RESPListen, "0"
	if i := strings.LastIndexByte(host, ':'); i >= 0 {
		host, port = host[:i], host[i+1:]
	}
	return [][2]string{
		{"maxmemory", strconv.FormatInt(max(maxMem, 0), 10)},
		{"maxmemory-policy", "noeviction"},
		{"save", ""}, // no snapshots: the data directory's log and checkpoints
		{"appendonly", appendonly},
		{"appendfsync", fsync},
		{"databases", "1"},
		{"maxclients", strconv.Itoa(st.MaxConns)},
		{"timeout", strconv.FormatInt(int64(s.cfg.IdleTimeout.Seconds()), 10)},
		{"bind", strings.Trim(host, "[]")},
		{"port", port},
		{"protected-mode", "no"},
		{"requirepass", ""}, // never shown, as Redis does to those who may not see it
	}
}

// respConfig serves CONFIG GET pattern [pattern ...] and CONFIG HELP;
// CONFIG SET and the rest are refused: rmbd's settings are its flags.
func (s *Server) respConfig(rc *respConn, args [][]byte) {
	switch sub := strings.ToUpper(string(args[1])); {
	case sub == "GET" && len(args) >= 3:
		var found [][2]string
		for _, kv := range s.configValues() {
			for _, p := range args[2:] {
				if globMatch([]byte(strings.ToLower(string(p))), []byte(kv[0])) {
					found = append(found, kv)
					break
				}
			}
		}
		rc.out = resp.AppendMap(rc.out, rc.proto, len(found))
		for _, kv := range found {
			rc.out = resp.AppendBulkString(rc.out, kv[0])
			rc.out = resp.AppendBulkString(rc.out, kv[1])
		}
	case sub == "GET":
		s.respErr(rc, "ERR wrong number of arguments for 'config|get' command")
	case sub == "HELP":
		s.respHelp(rc, "CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
			"GET <pattern>", "    Return parameters matching the glob-like <pattern> and their values,",
			"    from the node's flags (rmbd --help).",
			"HELP", "    Print this help.")
	case sub == "SET" || sub == "RESETSTAT" || sub == "REWRITE":
		s.respErr(rc, "ERR CONFIG "+sub+" is not supported: rmbd's settings are its flags (rmbd --help); CONFIG GET reads them")
	default:
		s.respErr(rc, "ERR unknown subcommand '"+string(truncate(args[1], 64))+"'. Try CONFIG HELP.")
	}
}

// respHelp answers a HELP subcommand: lines of text, as Redis does.
func (s *Server) respHelp(rc *respConn, lines ...string) {
	rc.out = resp.AppendArray(rc.out, len(lines))
	for _, l := range lines {
		rc.out = resp.AppendSimple(rc.out, l)
	}
}

// memoryInfo writes INFO memory: the process's resident memory, the
// filters' bytes and their bound (maxmemory; rmbd never evicts), the
// buffers lent to connections and their bound.
func (s *Server) memoryInfo(line func(string, any)) {
	used, limit := s.reg.Memory()
	rss := residentBytes()
	line("used_memory", rss)
	line("used_memory_human", human(rss))
	line("used_memory_rss", rss)
	line("used_memory_rss_human", human(rss))
	line("used_memory_filters", used)
	line("used_memory_filters_human", human(used))
	line("used_memory_go_heap", goHeap())
	line("maxmemory", max(limit, 0))
	line("maxmemory_human", human(uint64(max(limit, 0))))
	line("maxmemory_policy", "noeviction")
	bs := s.cfg.Buffers.Stats()
	line("mem_buffers_lent", bs.Lent)
	line("mem_buffers_peak", bs.Peak)
}

// residentBytes returns the process's resident set (Linux), or the
// memory the Go runtime holds from the OS elsewhere.
func residentBytes() uint64 {
	if b, err := os.ReadFile("/proc/self/statm"); err == nil {
		if f := strings.Fields(string(b)); len(f) > 1 {
			if pages, err := strconv.ParseUint(f[1], 10, 64); err == nil {
				return pages * uint64(os.Getpagesize())
			}
		}
	}
	s := []metrics.Sample{{Name: "/memory/classes/total:bytes"}, {Name: "/memory/classes/heap/released:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64() - s[1].Value.Uint64()
}

// goHeap returns the bytes of live and not yet collected heap objects.
func goHeap() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// human writes bytes as Redis's *_human fields do: 1.50M.
func human(n uint64) string {
	const units = "BKMGTP"
	v, u := float64(n), 0
	for v >= 1024 && u < len(units)-1 {
		v /= 1024
		u++
	}
	if u == 0 {
		return fmt.Sprintf("%dB", n)
	}
	return fmt.Sprintf("%.2f%c", v, units[u])
}
