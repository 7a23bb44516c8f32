package node

import (
	"context"

	"github.com/rmbd/rmbd/store"
)

// Under --fsync always a reply that acknowledges adds leaves only once
// they are on disk. Each filter has its own log (the default's and every
// named filter's), so what replies wait for is a position in a log.

// logWait is a log position replies wait for.
type logWait struct {
	log *store.Log
	pos uint64
}

// logWaits gathers, per log, the furthest position the replies in hand
// wait for: pipelined requests may add to several filters.
type logWaits []logWait

// add makes the replies wait for l to be synced up to pos too; a nil log
// (no add was logged) adds nothing.
func (ws *logWaits) add(l *store.Log, pos uint64) {
	if l == nil || pos == 0 {
		return
	}
	for i := range *ws {
		if (*ws)[i].log == l {
			(*ws)[i].pos = max((*ws)[i].pos, pos)
			return
		}
	}
	*ws = append(*ws, logWait{l, pos})
}

// wait waits until every log is synced up to its position, and forgets
// them. It is not bounded by the node's context: at shutdown the replies
// of adds in hand still go out once the log has them, which takes one
// fsync (or the log fails, and says so).
func (ws *logWaits) wait() error {
	var first error
	for _, w := range *ws {
		if err := w.log.WaitSynced(context.Background(), w.pos); err != nil && first == nil {
			first = err
		}
	}
	clear(*ws)
	*ws = (*ws)[:0]
	return first
}
