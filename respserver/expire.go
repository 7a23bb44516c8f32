package respserver

import (
	"errors"
	"math"
	"strings"
	"time"

	"github.com/rmbd/rmbd/gossip"
	"github.com/rmbd/rmbd/registry"
	"github.com/rmbd/rmbd/resp"
)

// Filters that expire: EXPIRE and its family set a filter's deadline,
// which the catalog replicates; at it every member drops the filter.
// Replies as Redis's: 1 when set, 0 when there is no filter (or its
// deadline has come) or a condition (NX, XX, GT, LT) says no; TTL and
// PTTL -2 for no filter, -1 for none set. Times are the node's clock, in
// milliseconds, as Redis's.

// expireUnit is how one EXPIRE-family command reads its time argument.
type expireUnit struct {
	ms       int64 // milliseconds in one unit
	absolute bool  // a Unix time, not a time from now
}

var expireUnits = map[string]expireUnit{
	"expire":    {1000, false},
	"pexpire":   {1, false},
	"expireat":  {1000, true},
	"pexpireat": {1, true},
}

// respExpire serves EXPIRE, PEXPIRE, EXPIREAT and PEXPIREAT.
func (s *Server) respExpire(rc *respConn, args [][]byte) {
	cmd := strings.ToLower(string(args[0]))
	u := expireUnits[cmd]
	cond, msg := expireCondition(args[3:]) // Redis reads the options first
	if msg != "" {
		s.respErr(rc, msg)
		return
	}
	n, ok := redisInt(args[2])
	if !ok {
		s.respErr(rc, "ERR value is not an integer or out of range")
		return
	}
	now := time.Now().UnixMilli()
	base := now
	if u.absolute {
		base = 0
	}
	if n > math.MaxInt64/u.ms || n < math.MinInt64/u.ms || n*u.ms > 0 && base > math.MaxInt64-n*u.ms {
		s.respErr(rc, "ERR invalid expire time in '"+cmd+"' command")
		return
	}
	name := string(args[1])
	if name == registry.DefaultName {
		s.respErr(rc, "ERR "+registry.ErrDefault.Error())
		return
	}
	at := base + n*u.ms
	s.setDeadline(rc, name, time.UnixMilli(max(at, 1)), func(current time.Time) bool { return cond(current, at) })
}

// expireCondition reads EXPIRE's NX, XX, GT and LT: whether a deadline
// (Unix ms) may replace the current one (the zero time: none, which counts
// as later than any).
func expireCondition(opts [][]byte) (func(current time.Time, next int64) bool, string) {
	var nx, xx, gt, lt bool
	for _, o := range opts {
		switch strings.ToUpper(string(o)) {
		case "NX":
			nx = true
		case "XX":
			xx = true
		case "GT":
			gt = true
		case "LT":
			lt = true
		default:
			return nil, "ERR Unsupported option " + string(o)
		}
	}
	switch {
	case nx && (xx || gt || lt):
		return nil, "ERR NX and XX, GT or LT options at the same time are not compatible"
	case gt && lt:
		return nil, "ERR GT and LT options at the same time are not compatible"
	}
	return func(current time.Time, next int64) bool {
		none := current.IsZero()
		switch {
		case nx:
			return none
		case xx && none, gt && none:
			return false
		case gt:
			return next > current.UnixMilli()
		case lt:
			return none || next < current.UnixMilli()
		}
		return true
	}, ""
}

// redisInt reads an integer as Redis does: no sign but a minus, no leading
// zero, no -0.
func redisInt(b []byte) (int64, bool) {
	s := string(b)
	digits := strings.TrimPrefix(s, "-")
	if digits == "" || len(digits) > 19 || digits[0] == '0' && (len(digits) > 1 || s != digits) {
		return 0, false
	}
	var n uint64
	for _, c := range []byte(digits) {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + uint64(c-'0')
	}
	switch {
	case s != digits && n <= 1<<63:
		return -int64(n), true
	case s == digits && n < 1<<63:
		return int64(n), true
	}
	return 0, false
}

// respPersist serves PERSIST: 1 if it took a deadline off the filter.
func (s *Server) respPersist(rc *respConn, args [][]byte) {
	s.setDeadline(rc, string(args[1]), time.Time{}, func(current time.Time) bool { return !current.IsZero() })
}

// setDeadline sets name's deadline through the node, everywhere, if cond
// holds of the current one, and answers 1; 0 if there is no filter or
// cond says no.
func (s *Server) setDeadline(rc *respConn, name string, deadline time.Time, cond func(time.Time) bool) {
	var err error
	s.outside(rc, func() { err = s.b.SetDeadline(name, deadline, cond) })
	switch {
	case errors.Is(err, registry.ErrNotSet), errors.Is(err, gossip.ErrNotFound):
		rc.out = resp.AppendInt(rc.out, 0)
	case err != nil:
		s.respErr(rc, "ERR "+strings.ReplaceAll(err.Error(), "\n", "; "))
	default:
		rc.out = resp.AppendInt(rc.out, 1)
	}
}

// respTTL serves TTL, PTTL, EXPIRETIME and PEXPIRETIME.
func (s *Server) respTTL(rc *respConn, args [][]byte) {
	deadline, ok := s.reg.Deadline(string(args[1]))
	left := deadline.UnixMilli() - time.Now().UnixMilli()
	var v int64
	switch cmd := strings.ToLower(string(args[0])); {
	case !ok:
		v = -2
	case deadline.IsZero():
		v = -1
	case cmd == "ttl":
		v = (left + 500) / 1000
	case cmd == "pttl":
		v = left
	case cmd == "expiretime":
		v = deadline.Unix()
	default:
		v = deadline.UnixMilli()
	}
	if ok && !deadline.IsZero() && v < 0 {
		v = 0 // due, and about to be dropped
	}
	rc.out = resp.AppendInt(rc.out, v)
}
