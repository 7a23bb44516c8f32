package registry

import (
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"

	"github.com/rmbd/rmbd/gossip"
	"github.com/zeebo/xxh3"
)

// Folders in the data directory (docs/FORMAT.md). The default filter's is
// "default"; a named filter's version's is "v-" and the hex xxh3-128 of
// its identity (one name may have several versions at once, and each
// generation its own folder). Segment 0 lives in the filter's folder;
// segment s > 0 in the folder's name, "@" and s in 16 hex digits.

// versionFolder names the folder of version id of name.
func versionFolder(name string, id gossip.ID) string {
	if name == DefaultName {
		return DefaultName
	}
	h := xxh3.HashString128(name + "\x00" + strconv.FormatUint(id.Gen, 10) + "\x00" +
		strconv.FormatInt(id.Created, 10) + "\x00" + id.Origin).Bytes()
	return "v-" + hex.EncodeToString(h[:])
}

// segmentFolder names the folder of segment seg of the filter whose
// folder is folder.
func segmentFolder(folder string, seg uint64) string {
	if seg == 0 {
		return folder
	}
	return fmt.Sprintf("%s@%016x", folder, seg)
}

// filterFolder returns the folder of the filter a segment folder belongs
// to.
func filterFolder(segFolder string) string {
	f, _, _ := strings.Cut(segFolder, "@")
	return f
}

// folders returns the filters whose folders the data directory holds
// (none without one).
func (r *Registry) folders() (map[string]bool, error) {
	have := map[string]bool{}
	if r.cfg.Dir == nil {
		return have, nil
	}
	names, err := r.cfg.Dir.Folders()
	for _, name := range names {
		have[filterFolder(name)] = true
	}
	return have, err
}
