//go:build !linux

package main

import "syscall"

// procAttr: elsewhere than Linux the bench's own exit paths end its members.
func procAttr() *syscall.SysProcAttr { return nil }
