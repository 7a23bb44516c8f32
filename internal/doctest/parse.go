// Package doctest runs the commands that the project's Markdown documents
// show, and compares what they print with what the documents say they
// print, so that a documented command that stops working fails a test.
//
// What a document holds, and how it is read:
//
//   - A fenced block whose info string is sh is run, one command at a
//     time, in one bash for the whole document, section after section (a
//     level-2 heading starts one), as a reader runs them in one terminal:
//     a section stops what it started before the next begins. A command may
//     go on over lines that end with a backslash; one that ends with & runs
//     in the background, and the next command waits until it has logged
//     that it is listening (rmbd's "rmbd listening"). A here-document
//     (<<WORD) goes with its command. Job control is on, as in a
//     terminal: kill %1 stops a section's first background job.
//   - Comment lines right under a command (no blank line between) are its
//     output, "# " taken off: compared line by line with what the command
//     writes on stdout, runs of blanks as one. "..." within a line stands for
//     any text, a line that is only "..." for any number of lines. Two or
//     more spaces and a parenthesised note end a line's text; a note that
//     says "exit status N" expects that status. A command with output shown
//     is run again until it prints it (a cluster converging), for up to
//     StepPatience; any other command must exit 0 the first time.
//   - A python block runs as one command ($DOCTEST_PYTHON, or python3),
//     in the same bash.
//   - A go block must be preceded by <!-- doctest: excerpt PATH -->: its
//     lines must appear, in order and together, in the file PATH (relative
//     to the repository), which a test of its own compiles and runs.
//   - <!-- doctest: skip REASON --> right before a block leaves it out.
//
// Other blocks (a usage text, YAML, hex) are not run.
package doctest

import (
	"bufio"
	"bytes"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Section is the part of a document under one level-2 heading.
type Section struct {
	Heading string
	Line    int // where the heading is, 1-based
	Blocks  []Block
}

// Block is one fenced block that is run or checked.
type Block struct {
	Lang    string // sh, python or go
	Line    int    // the opening fence's line
	Skip    string // why it is not run, from a skip directive
	Excerpt string // for a go block: the file it must be an excerpt of
	Text    string // the block's lines
	Steps   []Step // for sh and python
}

// Step is one command and the output shown for it.
type Step struct {
	Line       int // the command's first line
	Cmd        string
	Background bool
	Want       []string // expected output lines, notes taken off; nil if none shown
	WantStatus int      // from a note "exit status N"
}

var (
	directive  = regexp.MustCompile(`^<!--\s*doctest:\s*(skip|excerpt)\s*(.*?)\s*-->\s*$`)
	note       = regexp.MustCompile(`\s{2,}\(([^)]*)\)\s*$`)
	exitStatus = regexp.MustCompile(`exit status (\d+)`)
	heredoc    = regexp.MustCompile(`(?:^|[^<])<<-?\s*['"]?([A-Za-z_][A-Za-z0-9_]*)['"]?`)
)

// Parse reads a Markdown document into its sections and their blocks. It
// fails on a go block that names no excerpt, an unknown directive, or a
// fence left open.
func Parse(md []byte) ([]Section, error) {
	var (
		sections = []Section{{Heading: "(top)", Line: 1}}
		pending  string // the directive of the last non-blank line
		sc       = bufio.NewScanner(bytes.NewReader(md))
		n        int
	)
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for sc.Scan() {
		n++
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "## "):
			sections = append(sections, Section{Heading: strings.TrimPrefix(line, "## "), Line: n})
			pending = ""
		case strings.HasPrefix(trimmed, "```"):
			b, err := readBlock(sc, &n, strings.TrimPrefix(trimmed, "```"), pending)
			if err != nil {
				return nil, err
			}
			if b != nil {
				s := &sections[len(sections)-1]
				s.Blocks = append(s.Blocks, *b)
			}
			pending = ""
		case strings.HasPrefix(trimmed, "<!--") && strings.Contains(trimmed, "doctest"):
			if !directive.MatchString(trimmed) {
				return nil, fmt.Errorf("line %d: a doctest directive is <!-- doctest: skip REASON --> or <!-- doctest: excerpt PATH -->, not %q", n, trimmed)
			}
			pending = trimmed
		case trimmed != "":
			pending = ""
		}
	}
	return sections, sc.Err()
}

// readBlock reads a fenced block from the line after its opening fence to
// its closing one. It returns nil for a block that is neither run nor
// checked.
func readBlock(sc *bufio.Scanner, n *int, info, dir string) (*Block, error) {
	start := *n
	var lines []string
	closed := false
	for sc.Scan() {
		*n++
		if strings.TrimSpace(sc.Text()) == "```" {
			closed = true
			break
		}
		lines = append(lines, sc.Text())
	}
	if !closed {
		return nil, fmt.Errorf("line %d: a fenced block is never closed", start)
	}
	lang := strings.Fields(info + " ")
	if len(lang) == 0 || (lang[0] != "sh" && lang[0] != "python" && lang[0] != "go") {
		return nil, nil
	}
	b := &Block{Lang: lang[0], Line: start, Text: strings.Join(lines, "\n") + "\n"}
	if m := directive.FindStringSubmatch(dir); m != nil {
		switch m[1] {
		case "skip":
			if m[2] == "" {
				return nil, fmt.Errorf("line %d: a skip says why", start)
			}
			b.Skip = m[2]
		case "excerpt":
			b.Excerpt = m[2]
		}
	}
	switch {
	case b.Lang == "go" && b.Excerpt == "" && b.Skip == "":
		return nil, fmt.Errorf("line %d: a go block must be an excerpt of a file a test compiles (<!-- doctest: excerpt PATH -->)", start)
	case b.Lang == "python":
		b.Steps = []Step{{Line: start + 1, Cmd: "${DOCTEST_PYTHON:-python3} - <<'DOCTEST_PY'\n" + b.Text + "DOCTEST_PY"}}
	case b.Lang == "sh":
		steps, err := shellSteps(lines, start+1)
		if err != nil {
			return nil, err
		}
		b.Steps = steps
	}
	return b, nil
}

// shellSteps splits a shell block into commands and the output shown
// under each. first is the line number of the block's first line.
func shellSteps(lines []string, first int) ([]Step, error) {
	var steps []Step
	open := false // the last step may still take output lines
	for i := 0; i < len(lines); i++ {
		line := strings.TrimRight(lines[i], " \t")
		trimmed := strings.TrimSpace(line)
		switch {
		case trimmed == "":
			open = false
		case strings.HasPrefix(trimmed, "#"):
			if !open {
				continue // a comment of its own
			}
			want := strings.TrimPrefix(strings.TrimPrefix(trimmed, "#"), " ")
			st := &steps[len(steps)-1]
			if m := note.FindStringSubmatch(want); m != nil {
				want = strings.TrimRight(want[:len(want)-len(m[0])], " \t")
				if s := exitStatus.FindStringSubmatch(m[1]); s != nil {
					st.WantStatus, _ = strconv.Atoi(s[1])
				}
			}
			st.Want = append(st.Want, want)
		default:
			st := Step{Line: first + i, Cmd: lines[i]}
			for strings.HasSuffix(st.Cmd, `\`) && i+1 < len(lines) {
				i++
				st.Cmd += "\n" + lines[i]
			}
			if m := heredoc.FindStringSubmatch(stripComment(st.Cmd)); m != nil {
				end := i + 1
				for end < len(lines) && strings.TrimSpace(lines[end]) != m[1] {
					end++
				}
				if end == len(lines) {
					return nil, fmt.Errorf("line %d: a here-document never ends (%s)", first+i, m[1])
				}
				st.Cmd += "\n" + strings.Join(lines[i+1:end+1], "\n")
				i = end
			}
			code := strings.TrimSpace(stripComment(st.Cmd))
			if strings.HasSuffix(code, "&") && !strings.HasSuffix(code, "&&") {
				st.Background = true
			}
			steps = append(steps, st)
			open = true
		}
	}
	return steps, nil
}

// stripComment removes a trailing shell comment: a # after a blank,
// outside quotes.
func stripComment(cmd string) string {
	var quote rune
	prev := ' '
	for i, r := range cmd {
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			}
		case r == '\'' || r == '"':
			quote = r
		case r == '#' && (prev == ' ' || prev == '\t' || prev == '\n'):
			return cmd[:i]
		}
		prev = r
	}
	return cmd
}
