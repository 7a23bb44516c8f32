// Package docexamples reads the hex examples of the project's documents —
// a line `<!-- example: NAME -->`, then a fenced block of hex bytes — so
// that tests hold them to what the encoders make, and renders bytes as
// the documents show them.
package docexamples

import (
	"encoding/hex"
	"fmt"
	"os"
	"regexp"
	"strings"
)

var example = regexp.MustCompile("(?s)<!-- example: ([a-z0-9-]+) -->\n```\n(.*?)```")

// Read returns the examples of the document at path, by name.
func Read(path string) (map[string][]byte, error) {
	doc, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	out := map[string][]byte{}
	for _, m := range example.FindAllSubmatch(doc, -1) {
		b, err := hex.DecodeString(strings.Join(strings.Fields(string(m[2])), ""))
		if err != nil {
			return nil, fmt.Errorf("%s: example %s: %w", path, m[1], err)
		}
		out[string(m[1])] = b
	}
	return out, nil
}

// Hex renders b as the documents' examples are: 16 bytes a line.
func Hex(b []byte) string {
	var sb strings.Builder
	for i := 0; i < len(b); i += 16 {
		for j, c := range b[i:min(i+16, len(b))] {
			if j > 0 {
				sb.WriteByte(' ')
			}
			fmt.Fprintf(&sb, "%02x", c)
		}
		sb.WriteByte('\n')
	}
	return sb.String()
}

// Print prints b as the example name, fenced, as a document holds it.
func Print(name string, b []byte) {
	fmt.Printf("<!-- example: %s -->\n```\n%s```\n\n", name, Hex(b))
}
