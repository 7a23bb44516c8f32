package main

import (
	"bufio"
	"context"
	"errors"
	"io"
	"os"

	"github.com/rmbd/rmbd/client"
	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// barFrom is the size of filter past which dump and load show a progress
// bar (on stderr, when it is a terminal).
const barFrom = 16 << 20

// dumpFilter writes the dump of filter name to stdout: its chunks, which
// load reads back.
func dumpFilter(ctx context.Context, c *client.Client, name string, stdout, stderr io.Writer) error {
	if isTerminal(stdout) {
		return errors.New("dump writes the filter's bytes: send them to a file (rmbd-cli dump NAME > FILE)")
	}
	bar := newBytesBar(stderr, "dump "+name)
	w := bufio.NewWriterSize(stdout, 1<<20)
	if err := c.Filter(name).Dump(ctx, w, bar.progress); err != nil {
		return err
	}
	bar.finish()
	return w.Flush()
}

// loadFilter loads a dump read from stdin into filter name, which the
// dump makes if it does not exist.
func loadFilter(ctx context.Context, c *client.Client, name string, stdin io.Reader, stderr io.Writer) error {
	if isTerminal(stdin) {
		return errors.New("load reads a dump from stdin: rmbd-cli load NAME < FILE")
	}
	bar := newBytesBar(stderr, "load "+name)
	if err := c.Filter(name).Load(ctx, bufio.NewReaderSize(stdin, 1<<20), bar.progress); err != nil {
		return err
	}
	bar.finish()
	return nil
}

func isTerminal(v any) bool {
	f, ok := v.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// bytesBar is a progress bar over a filter's bytes, made once the dump's
// header says how many, if stderr is a terminal and they are many.
type bytesBar struct {
	w    io.Writer
	desc string
	bar  *progressbar.ProgressBar
}

func newBytesBar(stderr io.Writer, desc string) *bytesBar {
	if !isTerminal(stderr) {
		return &bytesBar{}
	}
	return &bytesBar{w: stderr, desc: desc}
}

func (b *bytesBar) progress(done, total uint64) {
	if b.w == nil {
		return
	}
	if b.bar == nil && total >= barFrom {
		b.bar = progressbar.NewOptions64(int64(total), progressbar.OptionSetWriter(b.w), progressbar.OptionSetDescription(b.desc),
			progressbar.OptionShowBytes(true), progressbar.OptionThrottle(100_000_000), progressbar.OptionClearOnFinish())
	}
	if b.bar != nil {
		b.bar.Set64(int64(done))
	}
}

func (b *bytesBar) finish() {
	if b.bar != nil {
		b.bar.Finish()
	}
}
