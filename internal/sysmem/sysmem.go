// Package sysmem says how much memory the process may use: the machine's
// (MemTotal of /proc/meminfo) or, when lower, its cgroup's limit (v2
// memory.max, v1 memory.limit_in_bytes).
package sysmem

import (
	"bufio"
	"bytes"
	"os"
	"strconv"
	"strings"
)

// Total returns the memory available to the process in bytes, or 0 when
// it cannot tell (not Linux, no /proc).
func Total() int64 {
	total := memTotal(read("/proc/meminfo"))
	for _, limit := range []int64{
		cgroupLimit(read("/sys/fs/cgroup/memory.max")),
		cgroupLimit(read("/sys/fs/cgroup/memory/memory.limit_in_bytes")),
	} {
		if limit > 0 && (total == 0 || limit < total) {
			total = limit
		}
	}
	return total
}

// Quarter is a quarter of Total, in whole MiB: the default bound on the
// memory filters take, which leaves the machine usable.
func Quarter() int64 { return Total() / 4 &^ (1<<20 - 1) }

func read(path string) []byte {
	b, _ := os.ReadFile(path)
	return b
}

// memTotal reads MemTotal (in kB) from /proc/meminfo's text.
func memTotal(meminfo []byte) int64 {
	sc := bufio.NewScanner(bytes.NewReader(meminfo))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 2 && f[0] == "MemTotal:" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil || kb <= 0 || kb > 1<<53 {
				return 0
			}
			return kb << 10
		}
	}
	return 0
}

// cgroupLimit reads a cgroup memory limit: a number of bytes, or "max"
// (none; v1 writes a huge number for none).
func cgroupLimit(b []byte) int64 {
	s := strings.TrimSpace(string(b))
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v <= 0 || v >= 1<<62 {
		return 0
	}
	return v
}
