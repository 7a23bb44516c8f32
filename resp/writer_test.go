package resp

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// The replies byte for byte, in RESP2 and RESP3.
func TestWriter(t *testing.T) {
	for _, tc := range []struct {
		name   string
		b      []byte
		v2, v3 string
	}{
		{"simple", AppendSimple(nil, "OK"), "+OK\r\n", ""},
		{"simple, a line", AppendSimple(nil, "a\r\nb"), "+a  b\r\n", ""},
		{"error", AppendError(nil, "ERR bad\nthing"), "-ERR bad thing\r\n", ""},
		{"int", AppendInt(nil, -42), ":-42\r\n", ""},
		{"bulk", AppendBulk(nil, []byte("a\r\nb")), "$4\r\na\r\nb\r\n", ""},
		{"empty bulk", AppendBulkString(nil, ""), "$0\r\n\r\n", ""},
		{"array", AppendArray(nil, 3), "*3\r\n", ""},
		{"map", nil, "*4\r\n", "%2\r\n"},
		{"set", nil, "*2\r\n", "~2\r\n"},
		{"true", nil, ":1\r\n", "#t\r\n"},
		{"false", nil, ":0\r\n", "#f\r\n"},
		{"null", nil, "$-1\r\n", "_\r\n"},
		{"verbatim", nil, "$5\r\nx:1\r\n\r\n", "=9\r\ntxt:x:1\r\n\r\n"},
	} {
		if tc.v3 == "" {
			require.Equal(t, tc.v2, string(tc.b), tc.name)
			continue
		}
		for proto, want := range map[int]string{2: tc.v2, 3: tc.v3} {
			var got []byte
			switch tc.name {
			case "map":
				got = AppendMap(nil, proto, 2)
			case "set":
				got = AppendSet(nil, proto, 2)
			case "true":
				got = AppendBool(nil, proto, true)
			case "false":
				got = AppendBool(nil, proto, false)
			case "null":
				got = AppendNull(nil, proto)
			case "verbatim":
				got = AppendVerbatim(nil, proto, "x:1\r\n")
			}
			require.Equal(t, want, string(got), "%s, RESP%d", tc.name, proto)
		}
	}
}
