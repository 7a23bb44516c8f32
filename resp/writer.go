package resp

import "strconv"

// Replies are appended to a byte slice, in the protocol version the
// client chose (HELLO): RESP2, or RESP3 with its maps, sets, booleans,
// verbatim strings and null. A version of 2 or less means RESP2.

// AppendSimple appends a simple string ("+OK").
func AppendSimple(b []byte, s string) []byte {
	b = append(b, '+')
	b = appendLine(b, s)
	return append(b, '\r', '\n')
}

// AppendError appends an error; msg starts with its code ("ERR ...",
// "WRONGPASS ...").
func AppendError(b []byte, msg string) []byte {
	b = append(b, '-')
	b = appendLine(b, msg)
	return append(b, '\r', '\n')
}

// appendLine appends s with line breaks made spaces: a simple string or
// an error is one line.
func appendLine(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '\r' || c == '\n' {
			c = ' '
		}
		b = append(b, c)
	}
	return b
}

// AppendInt appends an integer.
func AppendInt(b []byte, n int64) []byte {
	b = append(b, ':')
	b = strconv.AppendInt(b, n, 10)
	return append(b, '\r', '\n')
}

// AppendBulk appends a bulk string.
func AppendBulk(b []byte, s []byte) []byte {
	b = append(b, '$')
	b = strconv.AppendInt(b, int64(len(s)), 10)
	b = append(b, '\r', '\n')
	b = append(b, s...)
	return append(b, '\r', '\n')
}

// AppendBulkString appends a bulk string.
func AppendBulkString(b []byte, s string) []byte {
	b = append(b, '$')
	b = strconv.AppendInt(b, int64(len(s)), 10)
	b = append(b, '\r', '\n')
	b = append(b, s...)
	return append(b, '\r', '\n')
}

// AppendVerbatim appends text as RESP3's verbatim string of format txt
// (what INFO answers), a bulk string in RESP2.
func AppendVerbatim(b []byte, proto int, text string) []byte {
	if proto < 3 {
		return AppendBulkString(b, text)
	}
	b = append(b, '=')
	b = strconv.AppendInt(b, int64(len(text)+4), 10)
	b = append(b, "\r\ntxt:"...)
	b = append(b, text...)
	return append(b, '\r', '\n')
}

// AppendArray appends the header of an array of n elements.
func AppendArray(b []byte, n int) []byte {
	b = append(b, '*')
	b = strconv.AppendInt(b, int64(n), 10)
	return append(b, '\r', '\n')
}

// AppendMap appends the header of a map of n pairs: in RESP2 an array of
// 2n elements, key and value after each other.
func AppendMap(b []byte, proto int, n int) []byte {
	if proto < 3 {
		return AppendArray(b, 2*n)
	}
	b = append(b, '%')
	b = strconv.AppendInt(b, int64(n), 10)
	return append(b, '\r', '\n')
}

// AppendSet appends the header of a set of n elements: an array in RESP2.
func AppendSet(b []byte, proto int, n int) []byte {
	if proto < 3 {
		return AppendArray(b, n)
	}
	b = append(b, '~')
	b = strconv.AppendInt(b, int64(n), 10)
	return append(b, '\r', '\n')
}

// AppendBool appends a boolean: the integer 1 or 0 in RESP2.
func AppendBool(b []byte, proto int, v bool) []byte {
	if proto < 3 {
		if v {
			return append(b, ":1\r\n"...)
		}
		return append(b, ":0\r\n"...)
	}
	if v {
		return append(b, "#t\r\n"...)
	}
	return append(b, "#f\r\n"...)
}

// AppendNull appends a null: the null bulk string in RESP2.
func AppendNull(b []byte, proto int) []byte {
	if proto < 3 {
		return append(b, "$-1\r\n"...)
	}
	return append(b, "_\r\n"...)
}
