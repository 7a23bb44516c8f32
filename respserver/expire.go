package respserver

import (
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/rmbd/rmbd/registry"
	"github.com/rmbd/rmbd/resp"
)

// Filters that expire: EXPIRE and its family set a filter's deadline,
// which the catalog replicates; at it every member drops the filter.
// Replies as Redis's: 1 when set, 0 when there is no filter or a
// condition (NX, XX, GT, LT) says no; TTL and PTTL -2 for no filter, -1
// for none set.

// expireUnit is how one EXPIRE-family command reads its time argument.
type expireUnit struct {
	unit     time.Duration
	absolute bool // a Unix time, not a time from now
}

var expireUnits = map[string]expireUnit{
	"expire":    {time.Second, false},
	"pexpire":   {time.Millisecond, false},
	"expireat":  {time.Second, true},
	"pexpireat": {time.Millisecond, true},
}

// respExpire serves EXPIRE, PEXPIRE, EXPIREAT and PEXPIREAT.
func (s *Server) respExpire(rc *respConn, args [][]byte) {
	cmd := strings.ToLower(string(args[0]))
	u := expireUnits[cmd]
	n, err := strconv.ParseInt(string(args[2]), 10, 64)
	if err != nil {
		s.respErr(rc, "ERR value is not an integer or out of range")
		return
	}
	now := time.Now()
	if n > math.MaxInt64/int64(u.unit) || n < math.MinInt64/int64(u.unit) {
		s.respErr(rc, "ERR invalid expire time in '"+cmd+"' command")
		return
	}
	deadline := now.Add(time.Duration(n) * u.unit)
	if u.absolute {
		deadline = time.Unix(0, 0).Add(time.Duration(n) * u.unit)
	}
	cond, msg := expireCondition(args[3:])
	if msg != "" {
		s.respErr(rc, msg)
		return
	}
	name := string(args[1])
	if name == registry.DefaultName {
		s.respErr(rc, "ERR "+registry.ErrDefault.Error())
		return
	}
	current, ok := s.reg.Deadline(name)
	if !ok || !cond(current, deadline) {
		rc.out = resp.AppendInt(rc.out, 0)
		return
	}
	s.setDeadline(rc, name, deadline)
}

// expireCondition reads EXPIRE's NX, XX, GT and LT: whether a deadline
// may replace the current one (the zero time: none, which counts as
// later than any).
func expireCondition(opts [][]byte) (func(current, next time.Time) bool, string) {
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
	return func(current, next time.Time) bool {
		none := current.IsZero()
		switch {
		case nx:
			return none
		case xx && none, gt && none:
			return false
		case gt:
			return next.After(current)
		case lt:
			return none || next.Before(current)
		}
		return true
	}, ""
}

// respPersist serves PERSIST: 1 if it took a deadline off the filter.
func (s *Server) respPersist(rc *respConn, args [][]byte) {
	name := string(args[1])
	if current, ok := s.reg.Deadline(name); !ok || current.IsZero() {
		rc.out = resp.AppendInt(rc.out, 0)
		return
	}
	s.setDeadline(rc, name, time.Time{})
}

// setDeadline sets name's deadline through the node, everywhere, and
// answers 1.
func (s *Server) setDeadline(rc *respConn, name string, deadline time.Time) {
	var err error
	s.outside(rc, func() { err = s.b.SetDeadline(name, deadline) })
	if err != nil {
		s.respErr(rc, "ERR "+strings.ReplaceAll(err.Error(), "\n", "; "))
		return
	}
	rc.out = resp.AppendInt(rc.out, 1)
}

// respTTL serves TTL, PTTL, EXPIRETIME and PEXPIRETIME.
func (s *Server) respTTL(rc *respConn, args [][]byte) {
	deadline, ok := s.reg.Deadline(string(args[1]))
	var v int64
	switch cmd := strings.ToLower(string(args[0])); {
	case !ok:
		v = -2
	case deadline.IsZero():
		v = -1
	case cmd == "ttl":
		v = (time.Until(deadline).Milliseconds() + 500) / 1000
	case cmd == "pttl":
		v = time.Until(deadline).Milliseconds()
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
