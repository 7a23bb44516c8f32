package flagusage

import (
	"strings"
	"testing"

	"github.com/spf13/pflag"
	"github.com/stretchr/testify/assert"
)

func TestUsageAlignsHelpAndDropsBoolSuffix(t *testing.T) {
	fs := pflag.NewFlagSet("x", pflag.ContinueOnError)
	fs.String("address", "a", "where")
	fs.Bool("tcp", false, "use TCP")
	u := Usage(fs)
	assert.NotContains(t, u, "[=true|false]")
	lines := strings.Split(strings.TrimSuffix(u, "\n"), "\n")
	want := strings.Index(lines[0], "where")
	assert.Equal(t, want, strings.Index(lines[1], "use TCP"))
	assert.Equal(t, want, strings.Index(lines[2], "show this help"))
	assert.True(t, strings.HasPrefix(lines[2], "  -h, --help "))
}
