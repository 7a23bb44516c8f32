package doctest

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The documents whose commands a user runs on one machine. The compose
// demo's README is run by make e2e, against its containers.
var documents = []string{
	"README.md",
	"docs/COMING_FROM.md",
	"docs/DESIGN.md",
	"docs/FORMAT.md",
	"docs/PROTOCOL.md",
	"docs/RESP.md",
	"docs/STATS.md",
	"examples/dedup/README.md",
}

func root(t *testing.T) string {
	r, err := filepath.Abs("../..")
	require.NoError(t, err)
	return r
}

// TestEveryDocumentIsListed fails when a document is added that neither
// this test nor make e2e runs.
func TestEveryDocumentIsListed(t *testing.T) {
	r := root(t)
	listed := map[string]bool{"examples/compose/README.md": true}
	for _, d := range documents {
		listed[d] = true
	}
	err := filepath.WalkDir(r, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(r, p)
		if d.IsDir() && (rel == ".git" || rel == "bin" || rel == "build" || strings.HasPrefix(d.Name(), ".doctest")) {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(p, ".md") {
			require.True(t, listed[rel], "%s is run by no test: add it to documents", rel)
		}
		return nil
	})
	require.NoError(t, err)
}

// TestDocuments runs every command each document shows, section by
// section, and compares what it prints with what the document says.
func TestDocuments(t *testing.T) {
	if testing.Short() {
		t.Skip("starts nodes and builds the commands")
	}
	r := root(t)
	iso := Isolated()
	if !iso {
		t.Log("no network namespace (unshare -rn and ip): the documents' commands use the machine's loopback ports")
	}
	bin := buildCommands(t, r)
	for _, doc := range documents {
		md, err := os.ReadFile(filepath.Join(r, doc))
		require.NoError(t, err)
		sections, err := Parse(md)
		require.NoError(t, err, doc)
		t.Run(doc, func(t *testing.T) {
			if missing := missingTools(sections); missing != "" {
				t.Skip(missing)
			}
			run := &Runner{Doc: doc, Env: shellEnv(t), Isolated: iso, Patience: 20 * time.Second, Prelude: Prelude}
			require.NoError(t, run.Start(workDir(t, r, bin)))
			defer run.Stop()
			failed := ""
			for _, sec := range sections {
				if !runnable(t, r, sec) {
					continue
				}
				t.Run(sec.Heading, func(t *testing.T) {
					if failed != "" {
						t.Skipf("%q failed before it: the shell is not as a reader's would be", failed)
					}
					if err := run.Section(sec); err != nil {
						failed = sec.Heading
						t.Fatal(err)
					}
				})
			}
		})
	}
}

// runnable checks the section's go blocks and reports whether it has
// commands to run.
func runnable(t *testing.T, r string, sec Section) bool {
	run := false
	for _, b := range sec.Blocks {
		switch {
		case b.Skip != "":
		case b.Lang == "go":
			require.NoError(t, CheckExcerpt(r, b))
		default:
			run = true
		}
	}
	return run
}

// missingTools names a tool the document needs that this machine lacks.
func missingTools(secs []Section) string {
	var blocks []Block
	for _, sec := range secs {
		blocks = append(blocks, sec.Blocks...)
	}
	for _, b := range blocks {
		if b.Skip != "" {
			continue
		}
		if strings.Contains(b.Text, "redis-cli") {
			if _, err := exec.LookPath("redis-cli"); err != nil {
				return "no redis-cli (Debian: redis-tools)"
			}
		}
		if b.Lang == "python" && strings.Contains(b.Text, "import redis") &&
			exec.Command(python(), "-c", "import redis").Run() != nil {
			return "no redis-py for " + python() + " (Debian: python3-redis)"
		}
		if strings.Contains(b.Text, "curl ") {
			if _, err := exec.LookPath("curl"); err != nil {
				return "no curl"
			}
		}
	}
	return ""
}

func python() string {
	if _, err := os.Stat("/usr/bin/python3"); err == nil {
		return "/usr/bin/python3" // Debian's, with python3-redis
	}
	return "python3"
}

// shellEnv is the environment the documents' commands run in: none of the
// user's RMBD_ settings, the build cache shared between the copies of the
// repository, no toolchain download.
func shellEnv(t *testing.T) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "RMBD_") && !strings.HasPrefix(kv, "GOFLAGS=") {
			env = append(env, kv)
		}
	}
	return append(env, "GOFLAGS=-trimpath", "GOTOOLCHAIN=local", "DOCTEST_PYTHON="+python())
}

// buildCommands runs make build in a copy of the repository, once for
// every section, and returns the bin/ it filled.
func buildCommands(t *testing.T, r string) string {
	dir := t.TempDir()
	require.NoError(t, copyTree(r, dir))
	cmd := exec.Command("make", "build")
	cmd.Dir, cmd.Env = dir, shellEnv(t)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "make build: %s", out)
	return filepath.Join(dir, "bin")
}

// workDir copies the repository (its .git, bin and build aside) into a
// new directory, as a clone would be, with bin/ the commands built once.
func workDir(t *testing.T, r, bin string) string {
	dir := t.TempDir()
	require.NoError(t, copyTree(r, dir))
	require.NoError(t, os.Symlink(bin, filepath.Join(dir, "bin")))
	return dir
}

// copyTree copies the files under src into dst.
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() {
			if rel == ".git" || rel == "bin" || rel == "build" || strings.HasPrefix(d.Name(), ".doctest") {
				return filepath.SkipDir
			}
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, info.Mode().Perm())
	})
}
