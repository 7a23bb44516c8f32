package node

import (
	"errors"
	"fmt"
	"github.com/rmbd/rmbd/gossip"
	"log/slog"

	"github.com/rmbd/rmbd/filter"
	"github.com/rmbd/rmbd/store"
)

// openStore opens the data directory, if there is one, and loads the
// default filter's folder into f.
func openStore(cfg Config, f *filter.Filter, log *slog.Logger) (*store.Dir, *store.Store, error) {
	if cfg.DataDir == "" {
		return nil, nil, nil
	}
	dir, err := store.OpenDir(cfg.DataDir)
	if err != nil {
		return nil, nil, err
	}
	st, rec, err := dir.Open(cfg.definition(f), f, storeOptions(cfg, log))
	switch {
	case errors.Is(err, store.ErrMismatch):
		dir.Close()
		return nil, nil, fmt.Errorf("%w: %w", ErrConfig, err)
	case err != nil:
		dir.Close()
		return nil, nil, err
	}
	log.Info("data directory loaded", "dir", cfg.DataDir, "fsync", cfg.Fsync.String(),
		"checkpoints", rec.Checkpoints, "rows", rec.Rows, "log_segments", rec.Segments,
		"log_records", rec.Records, "log_keys", rec.Keys, "took", rec.Took.String())
	if rec.Truncated > 0 || len(rec.Damaged) > 0 {
		log.Warn("the data directory needed repair", "log_segments_cut", rec.Truncated, "checkpoints_set_aside", rec.Damaged)
	}
	return dir, st, nil
}

func storeOptions(cfg Config, log *slog.Logger) store.Options {
	opts := store.DefaultOptions()
	opts.Fsync, opts.Repair, opts.CheckpointInterval, opts.Logger = cfg.Fsync, cfg.Repair, cfg.CheckpointInterval, log
	return opts
}

// openStoreIn opens the folder of a named filter in the data directory.
func (n *Node) openStoreIn(def store.Definition, f *filter.Filter) (*store.Store, error) {
	st, rec, err := n.dir.Open(def, f, storeOptions(n.cfg, n.log))
	if err != nil {
		return nil, err
	}
	if rec.Truncated > 0 || len(rec.Damaged) > 0 {
		n.log.Warn("a named filter's folder needed repair", "filter", def.Name, "log_segments_cut", rec.Truncated, "checkpoints_set_aside", rec.Damaged)
	}
	return st, nil
}

// loadNamed restores the named filters from the data directory: the
// catalog, and the folder of every live version in it (made empty if the
// node stopped between writing the catalog and making it). A folder no
// live version names (a dropped filter the node stopped before removing)
// is removed.
func (n *Node) loadNamed() error {
	if n.dir == nil {
		return nil
	}
	nm := n.named
	nm.mu.Lock()
	defer nm.mu.Unlock()
	b, err := n.dir.ReadCatalog()
	if err != nil {
		return err
	}
	if b != nil {
		entries, err := gossip.DecodeCatalog(b)
		if err != nil {
			return fmt.Errorf("%s/CATALOG: %w", n.cfg.DataDir, err)
		}
		for _, e := range entries {
			nm.cat.Restore(e)
		}
	}
	want := map[string]bool{DefaultFilter: true}
	for _, name := range nm.cat.Names() {
		for _, v := range nm.cat.Live(name) {
			want[versionKey(name, v.ID())] = true
		}
	}
	defs, err := n.dir.Definitions()
	if err != nil {
		return err
	}
	for _, d := range defs {
		if !want[d.Name] {
			n.log.Info("removing the folder of a dropped filter", "folder", d.Name)
			if err := n.dir.Remove(d.Name); err != nil {
				return err
			}
		}
	}
	for _, name := range nm.cat.Names() {
		for _, v := range nm.cat.Live(name) {
			nf, err := n.openNamed(name, v)
			if err != nil {
				return fmt.Errorf("filter %q: %w", name, err)
			}
			nm.byName[name] = append(nm.byName[name], nf)
			nm.epoch.Add(1)
			nm.bytes += nf.f.SizeBytes()
		}
	}
	return nil
}
