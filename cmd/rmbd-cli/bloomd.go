package main

import (
	"fmt"
	"strings"

	"github.com/rmbd/rmbd/client"
)

// bloomd's verbs, where they mean what rmbd-cli's do (docs/COMING_FROM.md):
// check NAME KEY and multi NAME KEY... ask (has), set NAME KEY and bulk
// NAME KEY... add; list takes a prefix. The answers are rmbd-cli's.
var bloomdVerbs = map[string]struct {
	cmd  string
	many bool
}{"check": {"has", false}, "multi": {"has", true}, "set": {"add", false}, "bulk": {"add", true}}

// bloomdVerb turns a bloomd verb into rmbd-cli's command, the filter it
// names into o.filter.
func bloomdVerb(cmd string, rest []string, o *options) (string, []string, error) {
	v, ok := bloomdVerbs[cmd]
	if !ok {
		return cmd, rest, nil
	}
	switch {
	case o.filter != "":
		return "", nil, fmt.Errorf("%s names its filter first (%s NAME KEY); -f is for add and has", cmd, cmd)
	case len(rest) < 2 || !v.many && len(rest) > 2:
		what := "one KEY"
		if v.many {
			what = "KEYs"
		}
		return "", nil, fmt.Errorf("%s takes a filter NAME and %s (bloomd's %s: rmbd-cli -f NAME %s)", cmd, what, cmd, v.cmd)
	}
	o.filter, o.oneKey = rest[0], !v.many
	return v.cmd, rest[1:], nil
}

// withPrefix keeps the filters whose names begin with the prefix list was
// given, if any.
func withPrefix(fs []client.FilterInfo, args []string) []client.FilterInfo {
	if len(args) == 0 {
		return fs
	}
	var out []client.FilterInfo
	for _, f := range fs {
		if strings.HasPrefix(f.Name, args[0]) {
			out = append(out, f)
		}
	}
	return out
}
