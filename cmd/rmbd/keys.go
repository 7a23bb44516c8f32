package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/rmbd/rmbd/auth"
	"github.com/rmbd/rmbd/node"
)

// clusterKeys reads the cluster keys from the key file, or from the
// RMBD_CLUSTER_KEY environment variable (the keys themselves, one per
// line); none is no key.
func clusterKeys(file, env string) ([]auth.Key, error) {
	switch {
	case file != "" && env != "":
		return nil, errors.New("give the cluster key either in --cluster-key-file or in RMBD_CLUSTER_KEY, not both")
	case env != "":
		keys, err := auth.ParseKeys([]byte(env))
		if err != nil {
			return nil, fmt.Errorf("RMBD_CLUSTER_KEY: %w", err)
		}
		return keys, nil
	case file != "":
		return readKeyFile(file)
	}
	return nil, nil
}

func readKeyFile(file string) ([]auth.Key, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("--cluster-key-file: %w", err)
	}
	keys, err := auth.ParseKeys(b)
	if err != nil {
		return nil, fmt.Errorf("--cluster-key-file %s: %w", file, err)
	}
	return keys, nil
}

// warnLaxKeyFile logs when others than the owner may read the key file.
func warnLaxKeyFile(log *slog.Logger, file string) {
	if fi, err := os.Stat(file); err == nil && fi.Mode().Perm()&0o077 != 0 {
		log.Warn("the cluster key file may be read by others than its owner: chmod 600 it", "file", file, "mode", fi.Mode().Perm().String())
	}
}

// reloadOnHangup re-reads the key file on each SIGHUP and hands the keys
// to the node, for a rotation; a file that does not parse leaves the keys
// as they were. It returns a function that stops it.
func reloadOnHangup(n *node.Node, file string, log *slog.Logger) (stop func()) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-hup:
				keys, err := readKeyFile(file)
				if err == nil {
					err = n.SetClusterKeys(keys)
				}
				if err != nil {
					log.Error("cluster keys not replaced: the old ones stay", "err", err)
				}
			case <-done:
				return
			}
		}
	}()
	return func() { signal.Stop(hup); close(done) }
}

// keygen prints a new random key, the line a key file holds; with a file
// name it writes the key to that file (mode 0600) instead, unless the file
// holds keys already: keygen never replaces a cluster's key.
func keygen(args []string, stdout, stderr io.Writer) int {
	if len(args) > 1 || len(args) == 1 && strings.HasPrefix(args[0], "-") {
		fmt.Fprintf(stderr, "rmbd: keygen takes at most a file name (rmbd keygen [FILE])\n")
		return 2
	}
	k, err := auth.Generate()
	if err != nil {
		fmt.Fprintf(stderr, "rmbd: keygen: %v\n", err)
		return 1
	}
	if len(args) == 0 {
		fmt.Fprintln(stdout, k)
		return 0
	}
	file := args[0]
	if b, err := os.ReadFile(file); err == nil {
		if _, err := auth.ParseKeys(b); err != nil {
			fmt.Fprintf(stderr, "rmbd: keygen: %s exists and holds no valid key: %v (remove it to make a new one)\n", file, userMessage(err))
			return 1
		}
		fmt.Fprintf(stderr, "rmbd: keygen: %s holds a key already; left as it is\n", file)
		return 0
	}
	if err := writeKeyFile(file, k); err != nil {
		fmt.Fprintf(stderr, "rmbd: keygen: %v\n", err)
		return 1
	}
	fmt.Fprintf(stderr, "rmbd: keygen: wrote a new key to %s\n", file)
	return 0
}

// writeKeyFile creates file, readable by its owner only, holding k.
func writeKeyFile(file string, k auth.Key) error {
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(f, k)
	if serr := f.Sync(); err == nil {
		err = serr
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(file)
	}
	return err
}

// readPasswords reads a file of RESP passwords: each line that is not
// empty (spaces around it trimmed) is one.
func readPasswords(file string) ([]string, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		if p := strings.TrimSpace(line); p != "" {
			out = append(out, p)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no password in it")
	}
	return out, nil
}
