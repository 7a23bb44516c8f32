// Package hostport checks and splits the HOST:PORT addresses flags and
// frames name, and says which of them bind loopback alone.
package hostport

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
)

// Split splits HOST:PORT naming a remote address: a host, and a port
// 1..65535.
func Split(hostport string) (string, uint16, error) {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return "", 0, err
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil || p == 0 {
		return "", 0, fmt.Errorf("port %q is not a number from 1 to 65535", port)
	}
	if host == "" {
		return "", 0, errors.New("missing host")
	}
	return host, uint16(p), nil
}

// CheckListen checks an address to bind: HOST:PORT (the host may be
// empty) with a port 0..65535. what names it in the error.
func CheckListen(what, addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%s address %q: %w", what, addr, err)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Errorf("%s port %q is not a number from 0 to 65535", what, port)
	}
	return nil
}

// Loopback reports whether an address to bind, HOST:PORT, binds loopback
// alone: a loopback address or localhost (an empty host binds every
// interface).
func Loopback(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}

// Beyond returns the addresses among addrs ("" skipped) that bind more
// than loopback.
func Beyond(addrs ...string) []string {
	var out []string
	for _, a := range addrs {
		if a != "" && !Loopback(a) {
			out = append(out, a)
		}
	}
	return out
}

// Pick chooses the address to send to among ips: the first IPv4 one (an
// IPv6 socket reaches those too, and the original rmbd preferred them),
// else, unless only IPv4 will do (v4only: an IPv4 socket), the first.
func Pick(ips []netip.Addr, v4only bool) (netip.Addr, bool) {
	for _, ip := range ips {
		if ip.Unmap().Is4() {
			return ip.Unmap(), true
		}
	}
	if v4only || len(ips) == 0 {
		return netip.Addr{}, false
	}
	return ips[0], true
}
