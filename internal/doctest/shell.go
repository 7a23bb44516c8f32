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
	"sync"
	"syscall"
	"time"
)

// Shell is one bash that runs a document's commands in turn, with job
// control on as in a terminal (kill %1 stops a background job and what
// it started), in a session of its own: Close stops every process in it.
type Shell struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	done  chan string // one line per command: its exit status and background pid
	dir   string      // where each command's output goes, outside the work directory
	n     int
	mu    sync.Mutex
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
	out, err := os.MkdirTemp("", "rmbd-doctest-")
	if err != nil {
		return nil, err
	}
	started := false
	defer func() {
		if !started {
			os.RemoveAll(out)
		}
	}()
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Dir, cmd.Env = dir, env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
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
	started = true // Close removes out from here on
	s := &Shell{cmd: cmd, stdin: stdin, done: make(chan string, 64), dir: out}
	go func() {
		defer close(s.done)
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			s.done <- sc.Text()
		}
		r.Close()
	}()
	setup := "set -m" // job control, as in a terminal
	if isolated {
		setup += "; ip link set lo up"
	}
	if res, err := s.Run(setup, time.Minute); err != nil || res.Status != 0 {
		s.Close()
		return nil, fmt.Errorf("setting the shell up: %v %s", err, res.Stderr)
	}
	return s, nil
}

// Result is what one command did.
type Result struct {
	Stdout, Stderr string
	Status         int
	Pid            int    // of the last background job it started
	Err            string // the file its stderr goes to
}

// quote quotes s for bash.
func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// Run runs one command and waits up to timeout for it to end.
func (s *Shell) Run(cmd string, timeout time.Duration) (Result, error) {
	s.n++
	out := filepath.Join(s.dir, strconv.Itoa(s.n))
	// jobs, after each command, as an interactive shell does before its
	// prompt: finished jobs leave the table, and the next is %1 again.
	script := fmt.Sprintf("{ %s\n} >%s 2>%s </dev/null\n__doctest=$?; jobs >/dev/null 2>&1; echo \"$__doctest $!\" >&3\n",
		cmd, quote(out+".out"), quote(out+".err"))
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
		r := s.result(out, "1")
		s.Close() // the shell is stuck in the command: nothing more can run
		return r, fmt.Errorf("still running after %v; its stderr:\n%s", timeout, indent(lines(r.Stderr)))
	}
	return s.result(out, line), nil
}

// result reads what command out did; line is its exit status and the
// last background pid.
func (s *Shell) result(out, line string) Result {
	var r Result
	fields := strings.Fields(line)
	r.Status, _ = strconv.Atoi(fields[0])
	if len(fields) > 1 {
		r.Pid, _ = strconv.Atoi(fields[1])
	}
	stdout, _ := os.ReadFile(out + ".out")
	stderr, _ := os.ReadFile(out + ".err")
	r.Stdout, r.Stderr, r.Err = string(stdout), string(stderr), out+".err"
	return r
}

// Close stops the shell and every process it started, and removes the
// commands' output. It is safe to call more than once, from any
// goroutine.
func (s *Shell) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	defer os.RemoveAll(s.dir)
	if s.cmd.Process == nil || s.cmd.ProcessState != nil {
		return
	}
	s.stdin.Close()
	killSession(s.cmd.Process.Pid)
	_ = s.cmd.Wait()
}

// killSession kills every process of session sid: the shell, its jobs'
// process groups and whatever they started.
func killSession(sid int) {
	for range 3 { // a process may fork as the first ones die
		procs, _ := filepath.Glob("/proc/[0-9]*/stat")
		for _, p := range procs {
			b, err := os.ReadFile(p)
			if err != nil {
				continue
			}
			// pid (comm) state ppid pgrp session ...: comm may hold spaces.
			i := strings.LastIndexByte(string(b), ')')
			if f := strings.Fields(string(b[i+1:])); i > 0 && len(f) > 3 && f[3] == strconv.Itoa(sid) {
				pid, _ := strconv.Atoi(strings.TrimSuffix(filepath.Base(filepath.Dir(p)), "/"))
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
}
