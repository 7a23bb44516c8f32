package node

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/rmbd/rmbd/filter"
	"github.com/rmbd/rmbd/store"
)

// openStore opens the data directory, if there is one, and loads the
// filter from it. A directory that holds another filter is a
// configuration error: the node never starts empty over existing data.
func openStore(cfg Config, f *filter.Filter, log *slog.Logger) (*store.Store, error) {
	if cfg.DataDir == "" {
		return nil, nil
	}
	opts := store.DefaultOptions()
	opts.Fsync, opts.Repair, opts.CheckpointInterval, opts.Logger = cfg.Fsync, cfg.Repair, cfg.CheckpointInterval, log
	st, rec, err := store.Open(cfg.DataDir, cfg.definition(f), f, opts)
	switch {
	case errors.Is(err, store.ErrMismatch):
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	case err != nil:
		return nil, err
	}
	log.Info("data directory loaded", "dir", cfg.DataDir, "fsync", cfg.Fsync.String(),
		"checkpoints", rec.Checkpoints, "rows", rec.Rows, "log_segments", rec.Segments,
		"log_records", rec.Records, "log_keys", rec.Keys, "took", rec.Took.String())
	if rec.Truncated > 0 || len(rec.Damaged) > 0 {
		log.Warn("the data directory needed repair", "log_segments_cut", rec.Truncated, "checkpoints_set_aside", rec.Damaged)
	}
	return st, nil
}
