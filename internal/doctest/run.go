package doctest

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Runner runs a document's sections in turn in one shell, as a reader
// follows it in one terminal: what a section leaves running, the next
// one meets (each section stops its own nodes).
type Runner struct {
	Doc      string   // the document's path, for messages
	Env      []string // the shell's environment
	Isolated bool     // in a network namespace of its own
	// Patience is how long a command with output shown is tried again
	// until it prints it.
	Patience time.Duration
	// Prelude runs in the shell before the first command.
	Prelude string

	mu sync.Mutex
	sh *Shell
}

// Prelude makes redis-cli print what it prints on a terminal, which is
// what the documents show.
const Prelude = `redis-cli() { command redis-cli --no-raw "$@"; }`

// StepTimeout bounds one run of one command, and how long a background
// command has to say it listens.
const StepTimeout = 90 * time.Second

// Start starts the document's shell in dir.
func (r *Runner) Start(dir string) error {
	sh, err := StartShell(dir, r.Env, r.Isolated)
	if err != nil {
		return fmt.Errorf("%s: starting a shell: %w", r.Doc, err)
	}
	r.mu.Lock()
	r.sh = sh
	r.mu.Unlock()
	if r.Prelude != "" {
		if res, err := sh.Run(r.Prelude, StepTimeout); err != nil || res.Status != 0 {
			r.Stop()
			return fmt.Errorf("%s: the prelude failed: %v %s", r.Doc, err, res.Stderr)
		}
	}
	return nil
}

// Stop stops the shell and everything it started; safe from any
// goroutine (a signal handler's), and more than once.
func (r *Runner) Stop() {
	r.mu.Lock()
	sh := r.sh
	r.mu.Unlock()
	if sh != nil {
		sh.Close()
	}
}

// Section runs a section's blocks, stopping at the first command that
// fails.
func (r *Runner) Section(sec Section) error {
	for _, b := range sec.Blocks {
		if b.Skip != "" || b.Lang == "go" {
			continue
		}
		for _, st := range b.Steps {
			if err := r.step(r.sh, st); err != nil {
				return fmt.Errorf("%s:%d: %s\n%w", r.Doc, st.Line, st.Cmd, err)
			}
		}
	}
	return nil
}

// Run runs one section in a shell of its own in dir.
func (r *Runner) Run(sec Section, dir string) error {
	if err := r.Start(dir); err != nil {
		return err
	}
	defer r.Stop()
	return r.Section(sec)
}

// step runs one command until it does what the document says.
func (r *Runner) step(sh *Shell, st Step) error {
	deadline := time.Now().Add(r.Patience)
	for try := 1; ; try++ {
		res, err := sh.Run(st.Cmd, StepTimeout)
		if err != nil {
			return err
		}
		if st.Background {
			return r.listening(res, time.Now().Add(StepTimeout))
		}
		bad := ""
		if res.Status != st.WantStatus {
			bad = fmt.Sprintf("exit status %d, not %d", res.Status, st.WantStatus)
		}
		if st.Want != nil {
			if err := Match(st.Want, res.Stdout); err != nil {
				bad = strings.TrimSpace(bad + "\n" + err.Error())
			}
		}
		if bad == "" {
			return nil
		}
		if st.Want == nil || time.Now().After(deadline) {
			return fmt.Errorf("%s\nafter %d tries; its stderr:\n%s", bad, try, indent(lines(res.Stderr)))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// listening waits until a background command's stderr says it listens,
// or its process is gone.
func (r *Runner) listening(res Result, deadline time.Time) error {
	for {
		log, _ := os.ReadFile(res.Err)
		if strings.Contains(string(log), "listening") {
			return nil
		}
		if res.Pid == 0 || syscall.Kill(res.Pid, 0) != nil {
			return fmt.Errorf("it ended without listening; its stderr:\n%s", indent(lines(string(log))))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not listening after %v; its stderr:\n%s", StepTimeout, indent(lines(string(log))))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// CheckExcerpt checks that a go block's lines appear, in order and
// together, in its file under root, leading and trailing blanks aside.
func CheckExcerpt(root string, b Block) error {
	src, err := os.ReadFile(filepath.Join(root, b.Excerpt))
	if err != nil {
		return err
	}
	file := trimAll(strings.Split(string(src), "\n"))
	want := trimAll(strings.Split(strings.TrimRight(b.Text, "\n"), "\n"))
	for i := 0; i+len(want) <= len(file); i++ {
		if equal(file[i:i+len(want)], want) {
			return nil
		}
	}
	return fmt.Errorf("line %d: the go block is not an excerpt of %s: copy it from there", b.Line, b.Excerpt)
}

func trimAll(ls []string) []string {
	for i := range ls {
		ls[i] = strings.TrimSpace(ls[i])
	}
	return ls
}

func equal(a, b []string) bool {
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func lines(s string) []string {
	s = strings.TrimRight(s, "\n")
	if s == "" {
		return nil
	}
	ls := strings.Split(s, "\n")
	if len(ls) > 30 {
		ls = append([]string{"..."}, ls[len(ls)-30:]...)
	}
	return ls
}
