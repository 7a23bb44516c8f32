package respserver

import (
	"cmp"
	"errors"
	"slices"
	"strconv"
	"strings"

	"github.com/rmbd/rmbd/registry"
	"github.com/rmbd/rmbd/resp"
	"github.com/zeebo/xxh3"
)

// The key space: a key is a filter's name. Every filter, the default
// included, is of RedisBloom's type MBbloom--.

// respType is the type TYPE names for a filter.
const respType = "MBbloom--"

// respNames lists every filter's name, the default's first: those held
// here, and those placed on other members.
func (s *Server) respNames() []string {
	names := append([]string{registry.DefaultName}, s.reg.Names()...)
	if others := s.placedNames(); len(others) > 0 {
		names = append(names, others...)
		slices.Sort(names[1:])
	}
	return names
}

// respExistsName reports whether name is a filter's, held here or placed
// on other members.
func (s *Server) respExistsName(name []byte) bool {
	return len(s.reg.Lookup(name)) > 0 || s.placed(name)
}

// respDel serves DEL and UNLINK: it drops the named filters, everywhere
// in the cluster, and answers how many there were.
func (s *Server) respDel(rc *respConn, args [][]byte) {
	for _, k := range args[1:] {
		if string(k) == registry.DefaultName {
			s.respErr(rc, "ERR "+registry.ErrDefault.Error())
			return
		}
	}
	dropped := 0
	var errs []error
	for _, k := range args[1:] {
		if !s.respExistsName(k) {
			continue
		}
		var err error
		s.outside(rc, func() { err = s.b.Drop(string(k)) })
		if err != nil {
			errs = append(errs, err)
			continue
		}
		dropped++
	}
	if err := errors.Join(errs...); err != nil {
		s.respErr(rc, "ERR "+strings.ReplaceAll(err.Error(), "\n", "; "))
		return
	}
	rc.out = resp.AppendInt(rc.out, int64(dropped))
}

func (s *Server) respExists(rc *respConn, args [][]byte) {
	count := 0
	for _, k := range args[1:] {
		if s.respExistsName(k) {
			count++
		}
	}
	rc.out = resp.AppendInt(rc.out, int64(count))
}

func (s *Server) respType(rc *respConn, args [][]byte) {
	if s.respExistsName(args[1]) {
		rc.out = resp.AppendSimple(rc.out, respType)
		return
	}
	rc.out = resp.AppendSimple(rc.out, "none")
}

func (s *Server) respDBSize(rc *respConn, _ [][]byte) {
	rc.out = resp.AppendInt(rc.out, int64(len(s.respNames())))
}

func (s *Server) respKeys(rc *respConn, args [][]byte) {
	var match []string
	for _, name := range s.respNames() {
		if globMatch(args[1], []byte(name)) {
			match = append(match, name)
		}
	}
	rc.out = resp.AppendArray(rc.out, len(match))
	for _, name := range match {
		rc.out = resp.AppendBulkString(rc.out, name)
	}
}

// respScan serves SCAN. Names are visited in the order of their 64-bit
// hashes and the cursor is the hash to go on from, so that, as in Redis,
// a full iteration returns every filter that exists from its start to
// its end, whatever is created or dropped meanwhile, once.
func (s *Server) respScan(rc *respConn, args [][]byte) {
	q, errMsg := scanArgs(args)
	if errMsg != "" {
		s.respErr(rc, errMsg)
		return
	}
	page, next := s.scanPage(q)
	rc.out = resp.AppendArray(rc.out, 2)
	rc.out = resp.AppendBulkString(rc.out, strconv.FormatUint(next, 10))
	rc.out = resp.AppendArray(rc.out, len(page))
	for _, name := range page {
		rc.out = resp.AppendBulkString(rc.out, name)
	}
}

// scan is what a SCAN asks for.
type scan struct {
	cursor  uint64
	pattern []byte
	count   int
	typ     string
}

// scanArgs reads SCAN cursor [MATCH pattern] [COUNT count] [TYPE type],
// or returns Redis's error for them.
func scanArgs(args [][]byte) (scan, string) {
	q := scan{count: 10}
	var err error
	if q.cursor, err = strconv.ParseUint(string(args[1]), 10, 64); err != nil {
		return q, "ERR invalid cursor"
	}
	for i := 2; i < len(args); i += 2 {
		if i+1 == len(args) {
			return q, "ERR syntax error"
		}
		switch strings.ToUpper(string(args[i])) {
		case "MATCH":
			q.pattern = args[i+1]
		case "COUNT":
			c, err := strconv.Atoi(string(args[i+1]))
			if err != nil {
				return q, "ERR value is not an integer or out of range"
			}
			if c < 1 {
				return q, "ERR syntax error"
			}
			q.count = c
		case "TYPE":
			q.typ = string(args[i+1])
		default:
			return q, "ERR syntax error"
		}
	}
	return q, ""
}

// scanPage returns the names of q's page that match, and the cursor to go
// on from (0: done).
func (s *Server) scanPage(q scan) ([]string, uint64) {
	type hashed struct {
		h    uint64
		name string
	}
	var all []hashed
	for _, name := range s.respNames() {
		if h := xxh3.HashString(name); h >= q.cursor {
			all = append(all, hashed{h, name})
		}
	}
	slices.SortFunc(all, func(a, b hashed) int {
		return cmp.Or(cmp.Compare(a.h, b.h), strings.Compare(a.name, b.name))
	})
	// Names sharing a hash go in the same answer, so that the cursor
	// passes all of them at once.
	end := min(q.count, len(all))
	for end < len(all) && end > 0 && all[end].h == all[end-1].h {
		end++
	}
	next := uint64(0)
	if end < len(all) {
		next = all[end].h
	}
	var out []string
	for _, e := range all[:end] {
		if (q.pattern == nil || globMatch(q.pattern, []byte(e.name))) && (q.typ == "" || strings.EqualFold(q.typ, respType)) {
			out = append(out, e.name)
		}
	}
	return out, next
}

// globMatch reports whether s matches Redis's glob pattern p: * any run,
// ? any byte, [abc], [^abc] and [a-z] classes, \ to escape. It backtracks
// only to the last *, so it takes time linear in len(p) × len(s) at worst.
func globMatch(p, s []byte) bool {
	pi, si := 0, 0
	starP, starS := -1, 0
	for si < len(s) {
		if pi < len(p) {
			switch p[pi] {
			case '*':
				starP, starS = pi, si
				pi++
				continue
			case '?':
				pi++
				si++
				continue
			case '[':
				if ok, next := globClass(p, pi, s[si]); ok {
					pi, si = next, si+1
					continue
				}
			case '\\':
				if pi+1 < len(p) && p[pi+1] == s[si] {
					pi, si = pi+2, si+1
					continue
				}
			default:
				if p[pi] == s[si] {
					pi++
					si++
					continue
				}
			}
		}
		if starP < 0 {
			return false
		}
		starS++
		pi, si = starP+1, starS
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}

// globClass matches c against the class opening at p[at] ('['), and
// returns where the pattern goes on after it.
func globClass(p []byte, at int, c byte) (bool, int) {
	i := at + 1
	not := i < len(p) && p[i] == '^'
	if not {
		i++
	}
	match := false
	for ; i < len(p) && p[i] != ']'; i++ {
		switch {
		case p[i] == '\\' && i+1 < len(p):
			i++
			match = match || p[i] == c
		case i+2 < len(p) && p[i+1] == '-' && p[i+2] != ']':
			lo, hi := p[i], p[i+2]
			if lo > hi {
				lo, hi = hi, lo
			}
			match = match || (lo <= c && c <= hi)
			i += 2
		default:
			match = match || p[i] == c
		}
	}
	if i < len(p) {
		i++ // the closing ]
	}
	return match != not, i
}
