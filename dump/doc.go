// Package dump copies a filter out of a node and into another, a chunk
// at a time: RedisBloom's BF.SCANDUMP and BF.LOADCHUNK, the binary
// protocol's dump and load requests, rmbd-cli dump and load.
//
// A dump is a header chunk, then rows chunks, in the order Scan gives
// them. Each chunk is self-contained: it says what it is and how long,
// carries a CRC-32C of its bytes, and names the filter it is of (its
// definition in the header, that definition's identity in every rows
// chunk), so that a chunk that is damaged, cut short or of another
// filter is refused before anything changes. A dump file is its chunks
// one after the other. docs/FORMAT.md gives the format byte by byte.
//
// Scanning reads rows as the filter holds them while it keeps serving:
// a dump taken while keys are added holds every key added before it
// began, and some added during it. Rows chunks leave out empty rows.
//
// Loading ORs rows into a filter, so loading a chunk twice, or chunks of
// two dumps of one filter, is harmless. The header makes the filter if
// it does not exist (with the dumped filter's seed, so that the rows
// fit); a filter of the name that exists must have the dumped
// definition. Loaded rows are this node's to push to the members, as
// rows a client added are: a loaded filter replicates like any other.
//
//	for iter := uint64(0); ; {
//		next, chunk, err := dump.Scan(f, iter, nil)
//		if err != nil || next == 0 { ... }
//		loaded, err := dump.Load(reg, create, "copy", chunk)
//		iter = next
//	}
package dump
