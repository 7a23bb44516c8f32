//go:build linux

package main

import (
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// setNice sets the CPU priority of every thread of this process (on
// Linux, priority belongs to threads, and a new thread inherits its
// maker's).
func setNice(nice int) {
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		fmt.Println("respload:", err)
		return
	}
	for _, t := range tasks {
		if tid, err := strconv.Atoi(t.Name()); err == nil {
			if err := unix.Setpriority(unix.PRIO_PROCESS, tid, nice); err != nil {
				fmt.Printf("respload: nice %d: %v\n", nice, err)
				return
			}
		}
	}
}
