// Package flagusage renders a pflag set's usage with a -h/--help line
// aligned to the others. pflag would print a hidden-free help flag as
// "--help[=true|false]"; the commands hide it and add this line instead.
package flagusage

import (
	"regexp"
	"strings"

	"github.com/spf13/pflag"
)

// descCol finds where descriptions start in pflag's usage lines.
var descCol = regexp.MustCompile(`(?m)^( +(?:-\w, )?--\S+(?: \S+)? +)\S`)

// Usage returns fs's flag usages followed by an aligned help line. Bool
// flags lose pflag's "[=true|false]" suffix: they are set by naming them.
func Usage(fs *pflag.FlagSet) string {
	const suffix = "[=true|false]"
	u := strings.ReplaceAll(fs.FlagUsages(), suffix, strings.Repeat(" ", len(suffix)))
	col := 24
	if m := descCol.FindStringSubmatch(u); m != nil {
		col = len(m[1])
	}
	head := "  -h, --help"
	return u + head + strings.Repeat(" ", max(1, col-len(head))) + "show this help\n"
}
