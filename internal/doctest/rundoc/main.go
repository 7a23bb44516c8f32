// Command rundoc runs the commands a Markdown document shows, as the
// doctest package's tests do, in the current directory and on the
// machine's own network: make e2e runs the compose demo's README with it,
// against containers.
//
//	go run ./internal/doctest/rundoc [-patience 60s] FILE
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/rmbd/rmbd/internal/doctest"
)

// composeShim lets a document's `docker compose` run where only the
// separate docker-compose is installed (both are documented).
const composeShim = `docker() {
	if [ "$1" = compose ] && ! command docker compose version >/dev/null 2>&1; then shift; docker-compose "$@"
	else command docker "$@"; fi
}`

func main() {
	patience := flag.Duration("patience", time.Minute, "how long a command with output shown is tried again until it prints it")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: rundoc [-patience D] FILE.md")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 1 {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(flag.Arg(0), *patience); err != nil {
		fmt.Fprintln(os.Stderr, "rundoc:", err)
		os.Exit(1)
	}
}

func run(doc string, patience time.Duration) error {
	md, err := os.ReadFile(doc)
	if err != nil {
		return err
	}
	sections, err := doctest.Parse(md)
	if err != nil {
		return fmt.Errorf("%s: %w", doc, err)
	}
	dir, err := os.Getwd()
	if err != nil {
		return err
	}
	r := &doctest.Runner{Doc: doc, Env: os.Environ(), Patience: patience, Prelude: doctest.Prelude + "\n" + composeShim}
	if err := r.Start(dir); err != nil {
		return err
	}
	defer r.Stop()
	// Stopped (timeout's SIGTERM, Ctrl-C): what the document started stops too.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sig
		r.Stop()
		fmt.Fprintln(os.Stderr, "rundoc: stopped")
		os.Exit(1)
	}()
	steps := 0
	for _, sec := range sections {
		began := time.Now()
		if err := r.Section(sec); err != nil {
			return err
		}
		n := 0
		for _, b := range sec.Blocks {
			if b.Skip == "" {
				n += len(b.Steps)
			}
		}
		if n > 0 {
			fmt.Printf("rundoc: %s, %q: %d commands as documented (%.1fs)\n", doc, sec.Heading, n, time.Since(began).Seconds())
		}
		steps += n
	}
	fmt.Printf("rundoc: %s: %d commands as documented\n", doc, steps)
	return nil
}
