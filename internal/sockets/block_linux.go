//go:build linux

package sockets

import (
	"encoding/binary"
	"errors"
	"net/netip"

	"golang.org/x/sys/unix"
)

// Block makes the kernel drop the datagrams that come from srcs to
// reader's socket before they are queued: they cost the node nothing
// more. Block with no sources lifts it. It is a classic BPF socket
// filter comparing the IP header's source address (IPv4, and IPv6 for
// an IPv6 socket) against the list; datagrams it drops count in the
// socket's Drops.
func (l *Set) Block(reader int, srcs []netip.Addr) error {
	rc, err := l.UDP[reader].SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	err = rc.Control(func(fd uintptr) {
		if len(srcs) == 0 {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_DETACH_FILTER, 0)
			if errors.Is(serr, unix.ENOENT) { // nothing attached
				serr = nil
			}
			return
		}
		prog := blockProgram(srcs)
		serr = unix.SetsockoptSockFprog(int(fd), unix.SOL_SOCKET, unix.SO_ATTACH_FILTER,
			&unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]})
	})
	return errors.Join(err, serr)
}

// maxBlocked bounds the sources one filter names: classic BPF jumps
// forward at most 255 instructions.
const maxBlocked = 16

// net is a BPF load offset from the IP header (SKF_NET_OFF + off).
func ipOff(off int32) uint32 { return uint32(-0x100000 + off) }

// blockProgram assembles the filter: accept everything but srcs.
func blockProgram(srcs []netip.Addr) []unix.SockFilter {
	var v4 []uint32
	var v6 [][4]uint32
	for _, a := range srcs[:min(len(srcs), maxBlocked)] {
		a = a.Unmap()
		if a.Is4() {
			b := a.As4()
			v4 = append(v4, binary.BigEndian.Uint32(b[:]))
		} else {
			b := a.As16()
			var w [4]uint32
			for i := range w {
				w[i] = binary.BigEndian.Uint32(b[4*i:])
			}
			v6 = append(v6, w)
		}
	}
	var a asm
	a.stmt(unix.BPF_LD|unix.BPF_B|unix.BPF_ABS, ipOff(0)) // the IP version nibble
	a.stmt(unix.BPF_ALU|unix.BPF_RSH|unix.BPF_K, 4)
	a.jump(4, "v4", "v6?")
	a.label("v4")
	a.stmt(unix.BPF_LD|unix.BPF_W|unix.BPF_ABS, ipOff(12)) // source address
	for _, ip := range v4 {
		a.jump(ip, "drop", "")
	}
	a.stmt(unix.BPF_RET|unix.BPF_K, 0xffffffff)
	a.label("v6?")
	a.jump(6, "", "accept")
	for i, w := range v6 {
		next := "v6-" + string(rune('a'+i))
		for j, word := range w {
			a.stmt(unix.BPF_LD|unix.BPF_W|unix.BPF_ABS, ipOff(int32(8+4*j))) // source address, word j
			if j < 3 {
				a.jump(word, "", next)
			} else {
				a.jump(word, "drop", next)
			}
		}
		a.label(next)
	}
	a.label("accept")
	a.stmt(unix.BPF_RET|unix.BPF_K, 0xffffffff)
	a.label("drop")
	a.stmt(unix.BPF_RET|unix.BPF_K, 0)
	return a.assemble()
}

// asm is a small classic BPF assembler with forward labels.
type asm struct {
	ins    []unix.SockFilter
	jumps  map[int][2]string // instruction → labels (true, false); "" is the next one
	labels map[string]int
}

func (a *asm) stmt(code uint16, k uint32) {
	a.ins = append(a.ins, unix.SockFilter{Code: code, K: k})
}

// jump compares A with k: equal goes to jt, else to jf.
func (a *asm) jump(k uint32, jt, jf string) {
	if a.jumps == nil {
		a.jumps = map[int][2]string{}
	}
	a.jumps[len(a.ins)] = [2]string{jt, jf}
	a.ins = append(a.ins, unix.SockFilter{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, K: k})
}

func (a *asm) label(name string) {
	if a.labels == nil {
		a.labels = map[string]int{}
	}
	a.labels[name] = len(a.ins)
}

func (a *asm) assemble() []unix.SockFilter {
	for at, to := range a.jumps {
		off := func(l string) uint8 {
			if l == "" {
				return 0
			}
			return uint8(a.labels[l] - at - 1) // forward only, and short: the program is small
		}
		a.ins[at].Jt, a.ins[at].Jf = off(to[0]), off(to[1])
	}
	return a.ins
}
