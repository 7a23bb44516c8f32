//go:build simmutate

package mutate

// The bugs, switchable: a test sets one before it starts any node, and
// clears it after every node stopped.
var (
	// AckUnsynced acknowledges an add under --fsync always without
	// waiting for its log record to be fsynced, and the log is fsynced
	// only when a checkpoint rotates it.
	AckUnsynced bool
	// IgnoreTombstones makes the catalog merge ignore the drops a member
	// sends: a dropped filter lives on where the drop was not made.
	IgnoreTombstones bool
	// LoadLosesRows makes a load of a dump's rows chunk skip its first
	// run of rows, and answer as if it had loaded them.
	LoadLosesRows bool
	// DeadlinesMissed makes a member never drop a filter at its deadline
	// on its own: only a tombstone from elsewhere drops it.
	DeadlinesMissed bool
	// SlicesKeptForever makes a windowed filter keep every slice, and
	// answer from all of them: it never forgets.
	SlicesKeptForever bool
	// SliceRowsRefused makes a member refuse a member's rows of a slice
	// it has not opened itself.
	SliceRowsRefused bool
	// QuorumOfOne acknowledges an add to a placed filter once one owner
	// holds it, whatever the write quorum (route.Add).
	QuorumOfOne bool
	// FillSkipped marks a placed filter a member came to own as filled
	// without pulling its rows from a member that held it (fill.Round).
	FillSkipped bool
)
