package doctest

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const sample = "# Title\n\n" +
	"Intro.\n\n" +
	"```sh\n" +
	"bin/rmbd &      # a node\n" +
	"bin/rmbd-cli has a b \\\n" +
	"   c\n" +
	"# a\ttrue\n" +
	"# b   false          (exit status 1: b is absent)\n" +
	"\n" +
	"# a comment of its own\n" +
	"echo '# not a comment' # but this is\n" +
	"```\n\n" +
	"## Second\n\n" +
	"<!-- doctest: skip it needs two machines -->\n" +
	"```sh\nscp a b:\n```\n\n" +
	"<!-- doctest: excerpt examples/x.go -->\n" +
	"```go\nx := 1\n```\n\n" +
	"```\nrmbd-cli [flags]\n```\n\n" +
	"```python\nprint(1)\n```\n"

func TestParse(t *testing.T) {
	secs, err := Parse([]byte(sample))
	require.NoError(t, err)
	require.Len(t, secs, 2)
	require.Len(t, secs[0].Blocks, 1)
	steps := secs[0].Blocks[0].Steps
	require.Len(t, steps, 3)
	assert.True(t, steps[0].Background)
	assert.Nil(t, steps[0].Want)
	assert.Equal(t, "bin/rmbd-cli has a b \\\n   c", steps[1].Cmd)
	assert.Equal(t, []string{"a\ttrue", "b   false"}, steps[1].Want)
	assert.Equal(t, 1, steps[1].WantStatus)
	assert.Equal(t, 7, steps[1].Line)
	assert.Nil(t, steps[2].Want, "a comment after a blank line is not output")
	assert.False(t, steps[2].Background)

	assert.Equal(t, "Second", secs[1].Heading)
	require.Len(t, secs[1].Blocks, 3, "the plain block is neither run nor checked")
	assert.Equal(t, "it needs two machines", secs[1].Blocks[0].Skip)
	assert.Equal(t, "examples/x.go", secs[1].Blocks[1].Excerpt)
	assert.Equal(t, "python", secs[1].Blocks[2].Lang)
	require.Len(t, secs[1].Blocks[2].Steps, 1)
}

func TestParseRefuses(t *testing.T) {
	for name, md := range map[string]string{
		"go block of no file": "```go\nx := 1\n```\n",
		"fence left open":     "```sh\necho\n",
		"unknown directive":   "<!-- doctest: run twice -->\n```sh\necho\n```\n",
		"skip without reason": "<!-- doctest: skip -->\n```sh\necho\n```\n",
	} {
		_, err := Parse([]byte(md))
		assert.Error(t, err, name)
	}
}

func TestMatch(t *testing.T) {
	for _, c := range []struct {
		want []string
		got  string
		ok   bool
	}{
		{[]string{"a true"}, "a\ttrue\n", true},
		{[]string{"a true"}, "a   true  \n", true},
		{[]string{"a true"}, "a false\n", false},
		{[]string{"a true"}, "a true\nb true\n", false},
		{[]string{"..."}, "", true},
		{[]string{"..."}, "x\ny\n", true},
		{[]string{"...", "ok ...sim..."}, "=== RUN\nPASS\nok  \tgithub.com/x/sim\t1s\n", true},
		{[]string{"NAME ...", "n1 ... alive ..."}, "NAME  STATE\nn1  x  alive  2s\n", true},
		{[]string{"NAME ...", "n1 ... alive ..."}, "NAME  STATE\nn1  x  dead  2s\n", false},
		{[]string{"(integer) 1"}, "(integer) 1\n", true},
		{[]string{"a.b"}, "axb\n", false},
		{nil, "", true},
		{nil, "x\n", false},
	} {
		err := Match(c.want, c.got)
		assert.Equal(t, c.ok, err == nil, "%q against %q: %v", c.want, c.got, err)
	}
}

func runner(t *testing.T) *Runner {
	return &Runner{Doc: "test.md", Env: os.Environ(), Patience: 300 * time.Millisecond}
}

func section(t *testing.T, md string) Section {
	secs, err := Parse([]byte(md))
	require.NoError(t, err)
	return secs[len(secs)-1]
}

// TestRunnerFailsWhatTheDocumentDoesNotDo is why a broken documented
// command fails: output, exit status and background commands each.
func TestRunnerFailsWhatTheDocumentDoesNotDo(t *testing.T) {
	r := runner(t)
	ok := section(t, "```sh\n"+
		"x=1; echo hello $x\n# hello 1\n"+
		"sh -c 'exit 3'\n# ...   (exit status 3)\n"+
		"sh -c 'echo rmbd listening >&2; sleep 60' &\n"+
		"test -f made || { touch made; echo not yet; }; echo now\n# now\n"+
		"```\n")
	require.NoError(t, r.Run(ok, t.TempDir()), "a command is run again until it prints what is shown")

	for name, md := range map[string]string{
		"another output":  "```sh\necho hello\n# goodbye\n```\n",
		"a failure":       "```sh\nfalse\n```\n",
		"another status":  "```sh\ntrue\n# ...    (exit status 1)\n```\n",
		"never listening": "```sh\nsh -c 'echo failed >&2' &\n```\n",
		"a later step":    "```sh\necho a\n# a\necho b\n# c\n```\n",
		"python":          "```python\nraise SystemExit(1)\n```\n",
	} {
		err := r.Run(section(t, md), t.TempDir())
		assert.Error(t, err, name)
	}
	err := r.Run(section(t, "```sh\necho a\n\necho b\n# c\n```\n"), t.TempDir())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "test.md:4: echo b")
}

func TestCheckExcerpt(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "x.go"), []byte("package x\n\nfunc f() {\n\ta := 1\n\t_ = a\n}\n"), 0o644))
	assert.NoError(t, CheckExcerpt(dir, Block{Excerpt: "x.go", Text: "a := 1\n_ = a\n"}))
	assert.Error(t, CheckExcerpt(dir, Block{Excerpt: "x.go", Text: "a := 2\n"}))
	assert.Error(t, CheckExcerpt(dir, Block{Excerpt: "x.go", Text: "_ = a\na := 1\n"}))
	assert.Error(t, CheckExcerpt(dir, Block{Excerpt: "y.go", Text: "a := 1\n"}))
}

func TestHereDocuments(t *testing.T) {
	secs, err := Parse([]byte("```sh\ncat > f <<'EOF'\na # not output\n# nor this\nEOF\ncat f\n# a # not output\n# # nor this\ncat <<<x\n# x\n```\n"))
	require.NoError(t, err)
	steps := secs[0].Blocks[0].Steps
	require.Len(t, steps, 3)
	assert.Equal(t, "cat > f <<'EOF'\na # not output\n# nor this\nEOF", steps[0].Cmd)
	require.NoError(t, runner(t).Run(secs[0], t.TempDir()))
	_, err = Parse([]byte("```sh\ncat <<EOF\nnever ends\n```\n"))
	assert.ErrorContains(t, err, "never ends")
}

// TestStopStopsEverything: what a document starts in the background, and
// what that starts, is gone once the runner stops; kill %1 stops a job
// and its children, as in a terminal.
func TestStopStopsEverything(t *testing.T) {
	dir := t.TempDir()
	r := runner(t)
	require.NoError(t, r.Start(dir))
	sec := section(t, "```sh\n"+
		"sh -c 'sleep 300 & echo $! > child; echo listening >&2; wait' &\n"+
		"sh -c 'sleep 301 & echo $! > killed; echo listening >&2; wait' &\n"+
		"kill %2\n"+
		"```\n")
	require.NoError(t, r.Section(sec))
	pid := func(f string) int {
		b, err := os.ReadFile(filepath.Join(dir, f))
		require.NoError(t, err)
		var p int
		_, err = fmt.Sscan(string(b), &p)
		require.NoError(t, err)
		return p
	}
	gone := func(p int) bool {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p))
		return err != nil || strings.Contains(string(b), ") Z ")
	}
	child, killed := pid("child"), pid("killed")
	assert.Eventually(t, func() bool { return gone(killed) }, 5*time.Second, 10*time.Millisecond, "kill %2 stops the job's children")
	assert.False(t, gone(child))
	r.Stop()
	assert.Eventually(t, func() bool { return gone(child) }, 5*time.Second, 10*time.Millisecond, "Stop stops what the jobs started")
	r.Stop() // twice: nothing more
}
