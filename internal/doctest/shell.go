package doctest

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Shell is one bash that runs a section's commands in turn, in a directory
// of its own, with every process it starts stopped by Close.
type Shell struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	done  chan string // one line per command: its exit status and background pid
	dir   string      // where each command's output goes
	n     int
}

// Isolated reports whether commands can run in a network namespace of
// their own (unshare, with ip to bring its loopback up): there the ports a
// document names are free whatever runs on the machine.
func Isolated() bool {
	if _, err := exec.LookPath("ip"); err != nil {
		return false
	}
	return exec.Command("unshare", "-rn", "ip", "link", "set", "lo", "up").Run() == nil
}

// StartShell starts bash in dir with env. isolated puts it in a network
// namespace of its own (see Isolated).
func StartShell(dir string, env []string, isolated bool) (*Shell, error) {
	args := []string{"bash", "--noprofile", "--norc", "-s"}
	if isolated {
		args = append([]string{"unshare", "-rn", "--"}, args...)
	}
	out, err := os.MkdirTemp(dir, ".doctest-")
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Dir, cmd.Env = dir, env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer w.Close()
	cmd.ExtraFiles = []*os.File{w} // fd 3: a line as each command ends
	log, err := os.Create(filepath.Join(out, "shell.log"))
	if err != nil {
		return nil, err
	}
	defer log.Close()
	cmd.Stdout, cmd.Stderr = log, log
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &Shell{cmd: cmd, stdin: stdin, done: make(chan string), dir: out}
	go func() {
		defer close(s.done)
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			s.done <- sc.Text()
		}
		r.Close()
	}()
	if isolated {
		if _, err := s.Run("ip link set lo up", time.Minute); err != nil {
			s.Close()
			return nil, err
		}
	}
	return s, nil
}

// Result is what one command did.
type Result struct {
	Stdout, Stderr string
	Status         int
	Pid            int // of the last background job it started
	Err            string
}

// Run runs one command and waits up to timeout for it to end.
func (s *Shell) Run(cmd string, timeout time.Duration) (Result, error) {
	s.n++
	out := filepath.Join(s.dir, strconv.Itoa(s.n))
	script := fmt.Sprintf("{ %s\n} >%q.out 2>%q.err </dev/null\necho \"$? $!\" >&3\n", cmd, out, out)
	if _, err := io.WriteString(s.stdin, script); err != nil {
		return Result{}, fmt.Errorf("the shell has gone: %w", err)
	}
	var line string
	select {
	case l, ok := <-s.done:
		if !ok {
			return Result{}, errors.New("the shell has gone")
		}
		line = l
	case <-time.After(timeout):
		s.Close() // the shell is stuck in the command: nothing more can run
		return Result{}, fmt.Errorf("still running after %v", timeout)
	}
	var r Result
	fields := strings.Fields(line)
	r.Status, _ = strconv.Atoi(fields[0])
	if len(fields) > 1 {
		r.Pid, _ = strconv.Atoi(fields[1])
	}
	stdout, _ := os.ReadFile(out + ".out")
	stderr, _ := os.ReadFile(out + ".err")
	r.Stdout, r.Stderr = string(stdout), string(stderr)
	r.Err = out + ".err"
	return r, nil
}

// Close stops the shell and every process it started, and removes the
// commands' output.
func (s *Shell) Close() {
	if s.cmd.Process == nil || s.cmd.ProcessState != nil {
		return
	}
	s.stdin.Close()
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	_ = s.cmd.Wait()
	_ = os.RemoveAll(s.dir)
}
