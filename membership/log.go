package membership

import (
	"context"
	"log/slog"
	"strings"
)

// slogWriter sends memberlist's log lines to the node's logger: errors as
// warnings, the rest (memberlist is chatty about every failed probe) at
// debug level.
type slogWriter struct{ l *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	msg := flatten(string(p))
	lvl := slog.LevelDebug
	if strings.HasPrefix(msg, "[ERR]") {
		lvl = slog.LevelWarn
	}
	w.l.Log(context.Background(), lvl, "memberlist: "+msg)
	return len(p), nil
}

// flatten puts s on one line: memberlist's errors are multi-line lists.
func flatten(s string) string { return strings.Join(strings.Fields(s), " ") }

// oneLine renders err on one line ("" for nil).
func oneLine(err error) string {
	if err == nil {
		return ""
	}
	return flatten(err.Error())
}
