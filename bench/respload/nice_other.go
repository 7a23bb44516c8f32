//go:build !linux

package main

func setNice(int) {}
