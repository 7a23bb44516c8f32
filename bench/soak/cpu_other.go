//go:build !linux

package main

func pinDefenders() {}

var attackerCPU = 0

func pinAttacker(int) {}

func setNice(int) {}
