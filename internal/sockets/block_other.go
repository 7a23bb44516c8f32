//go:build !linux

package sockets

import (
	"errors"
	"net/netip"
)

// Block is Linux only: elsewhere the node sheds in user space.
func (l *Set) Block(int, []netip.Addr) error { return errors.ErrUnsupported }
