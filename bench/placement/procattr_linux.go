package main

import "syscall"

// procAttr makes a member die with the bench, however the bench ends.
func procAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} }
