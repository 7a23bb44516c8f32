package registry

import (
	"sync"

	"github.com/rmbd/rmbd/gossip"
)

// saver writes the catalog to the data directory. Writes are group
// commits: whoever needs version v written waits until a write of v or
// later is done, and one write serves everyone waiting. Nobody holds a
// lock while the file is written; waiters wait on a channel.
type saver struct {
	mu      sync.Mutex
	saved   uint64        // the newest version on disk
	writing chan struct{} // closed when the write in progress ends; nil if none
}

// saveCatalog returns once catalog version ver (or a later one) is on
// disk. Without a data directory there is nothing to write.
func (r *Registry) saveCatalog(ver uint64) error {
	if r.cfg.Dir == nil {
		return nil
	}
	s := &r.saver
	s.mu.Lock()
	for s.saved < ver {
		if s.writing != nil {
			ch := s.writing
			s.mu.Unlock()
			<-ch
			s.mu.Lock()
			continue
		}
		done := make(chan struct{})
		s.writing = done
		s.mu.Unlock()
		v, err := r.writeCatalog()
		s.mu.Lock()
		s.writing = nil
		close(done)
		if err != nil {
			s.mu.Unlock()
			return err
		}
		s.saved = max(s.saved, v)
	}
	s.mu.Unlock()
	return nil
}

// writeCatalog writes the catalog as it is now and returns its version.
func (r *Registry) writeCatalog() (uint64, error) {
	r.mu.Lock()
	ver := r.catVer
	b, err := gossip.AppendCatalog(nil, r.cat.Entries())
	r.mu.Unlock()
	if err != nil {
		return 0, err
	}
	return ver, r.cfg.Dir.WriteCatalog(b)
}
