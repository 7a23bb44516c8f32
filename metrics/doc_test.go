package metrics

import (
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rmbd/rmbd/node"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// statRows renders every stats frame value as a row of docs/STATS.md:
// its name in rmbd-cli stats, its metric, its kind and what it counts.
func statRows(t *testing.T) []string {
	c, err := newCollector(&fake{})
	require.NoError(t, err)
	descName := regexp.MustCompile(`fqName: "([^"]+)", help: "((?:[^"\\]|\\.)*)"`)
	var rows []string
	for _, s := range (node.Stats{}).WireStats() {
		st := c.stats[s.Name]
		m := descName.FindStringSubmatch(st.desc.String())
		require.NotNil(t, m, st.desc.String())
		kind := "gauge"
		if st.kind == prometheus.CounterValue {
			kind = "counter"
		}
		rows = append(rows, fmt.Sprintf("| `%s` | `%s` | %s | %s |", s.Name, m[1], kind, strings.ReplaceAll(m[2], `\"`, `"`)))
	}
	return rows
}

// TestStatsDoc keeps docs/STATS.md whole: every value of rmbd-cli stats
// is there with its metric. STATS_PRINT=1 prints the rows.
func TestStatsDoc(t *testing.T) {
	doc, err := os.ReadFile("../docs/STATS.md")
	require.NoError(t, err)
	for _, row := range statRows(t) {
		if os.Getenv("STATS_PRINT") != "" {
			fmt.Println(row)
		}
		assert.Contains(t, string(doc), row+"\n", "docs/STATS.md lacks or differs on this row")
	}
	for l := range node.Latency(len(node.Stats{}.Latency)) {
		assert.Contains(t, string(doc), "`rmbd_"+l.String()+"_duration_seconds`")
	}
}
