package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/rmbd/rmbd/client"
)

// Filters that expire: expire NAME DURATION, persist NAME, ttl NAME.

// expireCmd runs expire, persist or ttl on the filter called name.
func expireCmd(ctx context.Context, c *client.Client, cmd string, rest []string, out *printer) error {
	f := c.Filter(rest[0])
	var deadline time.Time
	var ttl time.Duration
	var err error
	switch cmd {
	case "expire":
		if ttl, err = parseTTL(rest[1]); err != nil {
			return err
		}
		deadline, err = f.Expire(ctx, ttl)
	case "persist":
		err = f.Persist(ctx)
	default:
		deadline, ttl, err = f.Deadline(ctx)
	}
	if err == nil {
		out.expiry(rest[0], deadline, ttl, cmd == "expire")
	}
	return err
}

// parseTTL reads a time from now: a Go duration (90s, 36h, 1h30m) or a
// number of days (7d).
func parseTTL(s string) (time.Duration, error) {
	if d, ok := parseDays(s); ok {
		return d, nil
	}
	return 0, fmt.Errorf("expire takes a time from now, e.g. 90s, 36h or 7d, not %q", s)
}

// parseDays reads a positive duration as time.ParseDuration does, or as
// days: 7d.
func parseDays(s string) (time.Duration, bool) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		if n, err := strconv.ParseFloat(days, 64); err == nil && n > 0 && n < 100*365 {
			return time.Duration(n * float64(24*time.Hour)), true
		}
	} else if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return d, true
	}
	return 0, false
}

// expiry prints when a filter expires: at deadline, ttl from now by the
// node's clock.
func (p *printer) expiry(name string, deadline time.Time, ttl time.Duration, set bool) {
	if p.json {
		var at any
		if !deadline.IsZero() {
			at = deadline.UTC()
		}
		p.enc.Encode(map[string]any{"name": name, "expires": at})
		return
	}
	switch {
	case deadline.IsZero() && set:
		fmt.Fprintf(p.w, "%s dropped: its deadline had come\n", name)
	case deadline.IsZero():
		fmt.Fprintf(p.w, "%s never expires\n", name)
	default:
		fmt.Fprintf(p.w, "%s expires at %s (in %s)\n", name, deadline.UTC().Format(time.RFC3339), ttl.Round(time.Second))
	}
}
