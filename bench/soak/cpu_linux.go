//go:build linux

package main

import (
	"fmt"
	"os"
	"runtime"
	"strconv"

	"golang.org/x/sys/unix"
)

// attackerCPU is the core the attacker gets: the last, as this process
// found them at start, before pinDefenders.
var attackerCPU = runtime.NumCPU() - 1

// pinDefenders keeps this process (the well-behaved clients), and the
// node it starts, off the last core, which pinAttacker gives the attacker.
func pinDefenders() {
	if runtime.NumCPU() < 2 {
		return
	}
	var set unix.CPUSet
	for c := range runtime.NumCPU() - 1 {
		set.Set(c)
	}
	pinProcess(&set)
}

// pinAttacker puts the attacking process on core cpu (the soak's last:
// this process inherited the defenders' cores, and moves off them).
func pinAttacker(cpu int) {
	if cpu < 1 {
		return
	}
	var set unix.CPUSet
	set.Set(cpu)
	pinProcess(&set)
}

// pinProcess sets the cores of every thread of this process.
func pinProcess(set *unix.CPUSet) {
	eachThread(func(tid int) error { return unix.SchedSetaffinity(tid, set) })
}

// setNice sets the CPU priority of every thread of this process.
func setNice(nice int) {
	eachThread(func(tid int) error { return unix.Setpriority(unix.PRIO_PROCESS, tid, nice) })
}

// eachThread calls f for every thread of this process: on Linux, CPU
// affinity and priority belong to threads, and a thread made later
// inherits them from the thread that makes it.
func eachThread(f func(tid int) error) {
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		fmt.Println("soak:", err)
		return
	}
	for _, t := range tasks {
		if tid, err := strconv.Atoi(t.Name()); err == nil {
			if err := f(tid); err != nil {
				fmt.Printf("soak: thread %d: %v\n", tid, err)
				return
			}
		}
	}
}
