package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"time"

	"github.com/rmbd/rmbd/wire"
)

// counts is what an attacking process reports when it is done.
type counts struct {
	Dials, DialFails, ClosedByNode, Sent int64
}

// attackerProc is a running attacking process.
type attackerProc struct {
	cmd *exec.Cmd
	out *os.File
}

// startAttacker runs this program again as the attacking process, at the
// given CPU priority.
func startAttacker(name, addr string, d time.Duration, nice int) (*attackerProc, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(os.Args[0], "-attack", name, "-addr", addr, "-for", d.String(), "-attacker-nice", fmt.Sprint(nice),
		"-attacker-cpu", fmt.Sprint(attackerCPU))
	cmd.Stdout, cmd.Stderr = w, os.Stderr
	if err := cmd.Start(); err != nil {
		w.Close()
		r.Close()
		return nil, err
	}
	w.Close()
	return &attackerProc{cmd: cmd, out: r}, nil
}

// wait waits for the attacker to finish and returns its counts.
func (a *attackerProc) wait() counts {
	var c counts
	json.NewDecoder(a.out).Decode(&c)
	a.out.Close()
	a.cmd.Wait()
	return c
}

// attacker is main for the attacking process.
func attacker(name, addr string, d time.Duration, nice, cpu int) int {
	pinAttacker(cpu)
	setNice(nice)
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	statsReq, _ := wire.AppendStatsRequest(nil, 1)
	hasReq, _ := wire.AppendBatch(nil, wire.TypeHasBatch, 1, 0, [][]byte{[]byte("flood")})
	var t *tally
	switch name {
	case "promises":
		t = promise(ctx, addr, 1, 1000, wire.MaxFrameBody-1)
	case "headers":
		t = promise(ctx, addr, 2, 1000, 0)
	case "resp":
		t = promiseRESP(ctx, respAddr(addr), 6, 1000, respBulk-1)
	case "idle":
		t = hold(ctx, addr, 3, 2000)
	case "stats":
		t = flood(ctx, addr, 4, 4, statsReq)
	case "has":
		t = flood(ctx, addr, 5, 4, hasReq)
	case "spin": // no attack: the attacker's core kept busy, for comparison
		t = &tally{}
		for range 4 {
			go func() {
				for ctx.Err() == nil {
				}
			}()
		}
	default:
		fmt.Fprintln(os.Stderr, "soak: no such attack:", name)
		return 2
	}
	<-ctx.Done()
	time.Sleep(200 * time.Millisecond) // the goroutines see the end and count
	json.NewEncoder(os.Stdout).Encode(counts{t.dials.Load(), t.dialFails.Load(), t.closedByNode.Load(), t.sent.Load()})
	return 0
}
