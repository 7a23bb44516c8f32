package forward

import (
	"encoding/binary"
	"fmt"

	"github.com/rmbd/rmbd/wire"
)

// idSize is the size of the request id every extended request and its
// answer carry first, at wire.HeaderSize.
const idSize = 4

// request is what Do reads of a request frame before sending it.
type request struct {
	typ  wire.Type
	id   uint32 // the caller's request id, put back into the answer
	keys int    // a batch's key count, which its result must answer; -1 for other requests
	// oneWay: an add batch without FlagAck, which no member answers but to
	// refuse it. It is sent with request id 0, which no forward waits on.
	oneWay bool
}

// parseRequest checks that req is one whole extended request frame that
// carries a request id and has an answer.
func parseRequest(req []byte) (request, error) {
	n, err := wire.FrameLen(req)
	switch {
	case err != nil:
		return request{}, fmt.Errorf("%w: %w", ErrRequest, err)
	case n != len(req):
		return request{}, fmt.Errorf("%w: %d bytes hold a frame of %d", ErrRequest, len(req), n)
	}
	t := wire.Type(req[0])
	if _, ok := answerTo(t); !ok || len(req) < wire.HeaderSize+idSize {
		return request{}, fmt.Errorf("%w: %v carries no request id", ErrRequest, t)
	}
	r := request{typ: t, id: binary.BigEndian.Uint32(req[wire.HeaderSize:]), keys: -1}
	if (t == wire.TypeAddBatch || t == wire.TypeHasBatch) && len(req) >= wire.BatchHeaderSize {
		r.keys = int(binary.BigEndian.Uint16(req[wire.HeaderSize+idSize+1:]))
		r.oneWay = t == wire.TypeAddBatch && req[wire.HeaderSize+idSize]&wire.FlagAck == 0
	}
	return r, nil
}

// answerTo returns the type of the frame that answers a request of type
// t (besides an error frame); ok is false for frames that are not
// requests answered by id. A pull is not: its answers are a stream.
func answerTo(t wire.Type) (answer wire.Type, ok bool) {
	switch t {
	case wire.TypeAddBatch:
		return wire.TypeAddResult, true
	case wire.TypeHasBatch:
		return wire.TypeHasResult, true
	case wire.TypePing:
		return wire.TypePong, true
	case wire.TypeStatsReq:
		return wire.TypeStats, true
	case wire.TypeMembersReq:
		return wire.TypeMembers, true
	case wire.TypePeerRequest:
		return wire.TypePeerResult, true
	case wire.TypeFilterReq:
		return wire.TypeFilters, true
	case wire.TypeDumpReq:
		return wire.TypeDumpChunk, true
	case wire.TypeLoadReq:
		return wire.TypeLoaded, true
	case wire.TypePeersReq:
		return wire.TypePeers, true
	case wire.TypeExpireReq:
		return wire.TypeExpiry, true
	}
	return 0, false
}

// isAnswer reports whether frames of type t answer a request by its id.
// Other frames a member sends on a forwarder's stream are dropped.
func isAnswer(t wire.Type) bool {
	switch t {
	case wire.TypeError, wire.TypeAddResult, wire.TypeHasResult, wire.TypePong, wire.TypeStats, wire.TypeMembers,
		wire.TypePeerResult, wire.TypeFilters, wire.TypeDumpChunk, wire.TypeLoaded, wire.TypePeers, wire.TypeExpiry:
		return true
	}
	return false
}

// checkAnswer checks that frame, whole and of an answer type, decodes
// and answers a request r: the caller relays it as it is.
func checkAnswer(r request, frame []byte) error {
	t := wire.Type(frame[0])
	if want, _ := answerTo(r.typ); t != want && t != wire.TypeError {
		return fmt.Errorf("%w: %v answering %v", ErrBadReply, t, r.typ)
	}
	var err error
	switch t {
	case wire.TypeError:
		_, err = wire.DecodeError(frame)
	case wire.TypeAddResult, wire.TypeHasResult:
		var res wire.Result
		if res, err = wire.DecodeResult(frame); err == nil && r.keys >= 0 && res.Count != r.keys {
			return fmt.Errorf("%w: %v of %d keys answering %d", ErrBadReply, t, res.Count, r.keys)
		}
	case wire.TypePong:
		_, err = wire.DecodePing(frame)
	case wire.TypeStats:
		_, err = wire.DecodeStats(frame)
	case wire.TypeMembers:
		_, err = wire.DecodeMembers(frame)
	case wire.TypePeerResult:
		_, err = wire.DecodePeerResult(frame)
	case wire.TypeFilters:
		_, err = wire.DecodeFilters(frame)
	case wire.TypeDumpChunk:
		_, err = wire.DecodeDumpChunk(frame)
	case wire.TypeLoaded:
		_, err = wire.DecodeLoaded(frame)
	case wire.TypePeers:
		_, err = wire.DecodePeers(frame)
	case wire.TypeExpiry:
		_, err = wire.DecodeExpiry(frame)
	}
	if err != nil {
		return fmt.Errorf("%w: %w", ErrBadReply, err)
	}
	return nil
}
