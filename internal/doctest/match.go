package doctest

import (
	"fmt"
	"regexp"
	"strings"
)

// Match reports whether got, a command's output, is what want shows: line
// by line, runs of blanks as one, "..." within a line for any text and a
// line "..." for any number of lines. The error says where they part.
func Match(want []string, got string) error {
	lines := strings.Split(strings.TrimRight(got, "\n"), "\n")
	if strings.TrimSpace(got) == "" {
		lines = nil
	}
	pats := make([]*regexp.Regexp, len(want))
	for i, w := range want {
		if strings.TrimSpace(w) != "..." {
			pats[i] = linePattern(w)
		}
	}
	if matchFrom(pats, lines) {
		return nil
	}
	return fmt.Errorf("the output is\n%s\nwhere the document shows\n%s", indent(lines), indent(want))
}

// matchFrom matches the lines against the patterns, a nil pattern standing
// for any number of lines.
func matchFrom(pats []*regexp.Regexp, lines []string) bool {
	if len(pats) == 0 {
		return len(lines) == 0
	}
	if pats[0] == nil {
		for skip := 0; skip <= len(lines); skip++ {
			if matchFrom(pats[1:], lines[skip:]) {
				return true
			}
		}
		return false
	}
	return len(lines) > 0 && pats[0].MatchString(normalize(lines[0])) && matchFrom(pats[1:], lines[1:])
}

// linePattern makes a documented line a pattern for a whole output line.
func linePattern(w string) *regexp.Regexp {
	parts := strings.Split(normalize(w), "...")
	for i, p := range parts {
		parts[i] = regexp.QuoteMeta(p)
	}
	return regexp.MustCompile("^" + strings.Join(parts, ".*") + "$")
}

// normalize makes every run of blanks one space and trims the ends.
func normalize(s string) string { return strings.Join(strings.Fields(s), " ") }

func indent(lines []string) string {
	if len(lines) == 0 {
		return "    (nothing)"
	}
	return "    " + strings.Join(lines, "\n    ")
}
