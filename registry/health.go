package registry

// Health of the filters' data directory. Each filter's store may find its
// files unwritable (a full disk, an I/O error): it then refuses adds to
// keep (Filter.Add returns its error, wrapping store.ErrUnwritable), takes
// other adds in memory (Filter.AddUnacked), and retries on its own until
// it can write again (store.Store.Health). The registry only reports:
// the node turns the list into readiness and metrics.

// Unwritable is a filter whose data directory cannot be written now.
type Unwritable struct {
	Filter *Filter
	// Err says why, naming the file (wraps store.ErrUnwritable).
	Err error
}

// Unwritable lists the filters that refuse adds to keep because their
// data directory cannot be written, in All's order: none while every
// filter can, or without a data directory. It reads an atomic per store,
// cheap enough for every readiness probe.
func (r *Registry) Unwritable() []Unwritable {
	var out []Unwritable
	for _, f := range r.All() {
		if err := f.Health(); err != nil {
			out = append(out, Unwritable{Filter: f, Err: err})
		}
	}
	return out
}
