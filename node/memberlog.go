package node

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
	msg := strings.TrimRight(string(p), "\r\n")
	lvl := slog.LevelDebug
	if strings.HasPrefix(msg, "[ERR]") {
		lvl = slog.LevelWarn
	}
	w.l.Log(context.Background(), lvl, "memberlist: "+msg)
	return len(p), nil
}
