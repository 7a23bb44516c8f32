package registry

// Versions of one name created apart with the same sizing are one filter
// (package gossip's catalog): a member merges the rows it receives for
// any of them into the first it holds (Versions.SegmentFor), and answers
// pulls from that one. So that the keys a member added to a later one
// while it was apart reach the others, fold ORs each later version's rows
// into the first of the same fingerprint whenever a version opens; the
// rows that gain bits there are pushed and kept as any merged rows are.

// fold folds the versions of the names of fs.
func (r *Registry) fold(fs []*Filter) {
	t := r.table.Load()
	for _, f := range fs {
		vs := t.byName[f.name]
		for i, later := range vs {
			for _, first := range vs[:i] {
				if first.version.Def.FP == later.version.Def.FP {
					foldInto(first, later)
					break
				}
			}
		}
	}
}

// foldInto ORs src's rows into dst, segment by segment: those dst has.
func foldInto(dst, src *Filter) {
	for _, s := range src.Segments() {
		d := dst.Segment(s.id)
		if d == nil {
			continue
		}
		rows := s.Rows()
		b, err := rows.CopyRows(nil, 0, rows.Rows())
		if err != nil {
			continue // cannot happen: a whole filter's own rows
		}
		d.Rows().MergeRows(rows.Fingerprint(), 0, b, nil)
	}
}
