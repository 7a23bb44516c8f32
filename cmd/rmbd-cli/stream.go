package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/rmbd/rmbd/client"
	"github.com/rmbd/rmbd/wire"
	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// streamKeys adds or asks for keys read from r, one per line, o.chunk at a
// time, through k: memory stays bounded however many lines come. While
// one chunk is in flight the next is read. A classic add is confirmed
// with c.
func streamKeys(ctx context.Context, k keyer, c *client.Client, cmd string, r io.Reader, out *printer, o options, stderr io.Writer) (int, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // on an error, stop reading and sending
	bar := progress(stderr, cmd)
	defer bar.Finish()
	type result struct {
		keys []string
		has  []bool
		err  error
	}
	chunks := make(chan []string, 1)
	readErr := make(chan error, 1)
	go func() { readErr <- readChunks(ctx, r, o.chunk, k.MaxKeyLen(), chunks) }()

	results := make(chan chan result, 2) // in order, at most two in flight
	go func() {
		defer close(results)
		for chunk := range chunks {
			done := make(chan result, 1)
			results <- done
			go func() {
				var res result
				res.keys = chunk
				if cmd == "add" {
					res.err = k.Add(ctx, chunk...)
				} else {
					res.has, res.err = k.Has(ctx, chunk...)
				}
				done <- res
			}()
		}
	}()
	code, total, last := exitOK, 0, ""
	var firstErr error
	for done := range results {
		res := <-done
		if firstErr != nil {
			continue // drain
		}
		if res.err != nil {
			firstErr = res.err
			cancel()
			continue
		}
		total += len(res.keys)
		last = res.keys[len(res.keys)-1]
		if cmd == "has" && out.has(res.keys, res.has) == exitAbsent {
			code = exitAbsent
		}
		bar.Add(len(res.keys))
	}
	if firstErr != nil {
		return exitError, fmt.Errorf("%w (%s)", firstErr, doneBefore(cmd, total))
	}
	if err := <-readErr; err != nil && !errors.Is(err, context.Canceled) {
		return exitError, fmt.Errorf("%w (%s)", err, doneBefore(cmd, total))
	}
	if cmd == "add" && o.classic && total > 0 {
		if err := confirmClassic(ctx, c, last); err != nil {
			return exitError, err
		}
	}
	if cmd == "add" {
		out.added(total)
	}
	return code, nil
}

// readChunks sends lines of r to chunks, n at a time, and closes chunks.
// A line longer than maxKey bytes ends it with an error naming the line.
func readChunks(ctx context.Context, r io.Reader, n, maxKey int, chunks chan<- []string) error {
	defer close(chunks)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), wire.MaxKeyLen+2) // a longer line is an error, not a key
	chunk := make([]string, 0, n)
	line := 0
	for sc.Scan() {
		line++
		k := sc.Text()
		if len(k) > 0 && k[len(k)-1] == '\r' {
			k = k[:len(k)-1] // CRLF input
		}
		if len(k) > maxKey {
			return flush(ctx, chunk, chunks, fmt.Errorf("stdin line %d: a key of %d bytes, over the limit of %d bytes here%s", line, len(k), maxKey, tcpHint(maxKey)))
		}
		chunk = append(chunk, k)
		if len(chunk) == n {
			select {
			case chunks <- chunk:
			case <-ctx.Done():
				return ctx.Err()
			}
			chunk = make([]string, 0, n)
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			err = fmt.Errorf("stdin line %d: a key over the limit of %d bytes here%s", line+1, maxKey, tcpHint(maxKey))
		} else {
			err = fmt.Errorf("reading stdin: %w", err)
		}
		return flush(ctx, chunk, chunks, err)
	}
	return flush(ctx, chunk, chunks, nil)
}

// flush sends the last, partial chunk, so that every line before an error
// is done, and returns err.
func flush(ctx context.Context, chunk []string, chunks chan<- []string, err error) error {
	if len(chunk) == 0 {
		return err
	}
	select {
	case chunks <- chunk:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// doneBefore says how many keys were done before an error.
func doneBefore(cmd string, n int) string {
	verb := map[string]string{"add": "added", "has": "answered"}[cmd]
	if n == 1 {
		return "the 1 key before it was " + verb
	}
	return fmt.Sprintf("the %d keys before it were %s", n, verb)
}

// tcpHint points to TCP when the limit is a datagram's.
func tcpHint(maxKey int) string {
	if maxKey < wire.MaxKeyLen && maxKey > wire.MaxClassicKey {
		return " (use --tcp for keys up to 4096 bytes)"
	}
	return ""
}

// meter counts keys done.
type meter interface {
	Add(n int) error
	Finish() error
}

// quiet is the meter when nobody watches.
type quiet struct{}

func (quiet) Add(int) error { return nil }
func (quiet) Finish() error { return nil }

// progress is a key counter on stderr when stderr is a terminal, and
// nothing otherwise.
func progress(stderr io.Writer, cmd string) meter {
	f, ok := stderr.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return quiet{}
	}
	return progressbar.NewOptions64(-1,
		progressbar.OptionSetWriter(stderr),
		progressbar.OptionSetDescription(cmd),
		progressbar.OptionShowCount(),
		progressbar.OptionShowIts(),
		progressbar.OptionSetItsString("keys"),
		progressbar.OptionThrottle(100_000_000),
		progressbar.OptionClearOnFinish(),
	)
}
