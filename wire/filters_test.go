package wire

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/rmbd/rmbd/filter"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFilterRequestRoundTrip(t *testing.T) {
	for _, q := range []FilterRequest{
		{ReqID: 1, Op: FilterOpCreate, Name: []byte("users"), Layout: filter.Blocked, Capacity: 10_000, FPRate: 0.001},
		{ReqID: 2, Op: FilterOpCreate, Name: []byte("old"), Layout: filter.Classic},
		{ReqID: 7, Op: FilterOpCreate, Name: []byte("grows"), Layout: filter.Blocked, Capacity: 100, FPRate: 0.01, Growth: 3},
		{ReqID: 8, Op: FilterOpCreate, Name: []byte("fixed"), Layout: filter.Blocked, Capacity: 100, FPRate: 0.01, Growth: 1},
		{ReqID: 9, Op: FilterOpCreate, Name: []byte("recent"), Layout: filter.Blocked, Capacity: 100, FPRate: 0.01, Window: 86_400_000, Slices: 24},
		{ReqID: 10, Op: FilterOpCreate, Name: []byte("recent"), Layout: filter.Blocked, Capacity: 100, FPRate: 0.01, Window: 10_000},
		{ReqID: 3, Op: FilterOpDrop, Name: []byte("users")},
		{ReqID: 4, Op: FilterOpInfo, Name: []byte("users")},
		{ReqID: 5, Op: FilterOpList},
		{ReqID: 6, Op: FilterOpList, Name: []byte("after-this")},
	} {
		b, err := AppendFilterRequest(nil, q)
		require.NoError(t, err)
		got, err := DecodeFilterRequest(b)
		require.NoError(t, err)
		assert.Equal(t, q, got)
		q.Pad = 300
		padded, err := AppendFilterRequest(nil, q)
		require.NoError(t, err)
		assert.Len(t, padded, 300)
		got, err = DecodeFilterRequest(padded)
		require.NoError(t, err, "padding is taken")
		q.Pad = 0
		assert.Equal(t, q, got)
	}
}

// A create from a client that knows no growth ends at its rate (or
// pads with zeros): it reads as Growth 0, the node's --expansion.
func TestFilterRequestWithoutGrowth(t *testing.T) {
	q := FilterRequest{ReqID: 1, Op: FilterOpCreate, Name: []byte("users"), Layout: filter.Blocked, Capacity: 10, FPRate: 0.01, Growth: 5}
	b, err := AppendFilterRequest(nil, q)
	require.NoError(t, err)
	q.Growth = 0
	old, err := AppendFilterRequest(nil, q)
	require.NoError(t, err)
	assert.Len(t, old, len(b)-4, "without it, the frame of before")
	got, err := DecodeFilterRequest(old)
	require.NoError(t, err)
	assert.Zero(t, got.Growth)
}

// A windowed create carries its window after the growth (0 if not
// told); a frame whose window is 0 but slices are not is refused.
func TestFilterRequestWindow(t *testing.T) {
	q := FilterRequest{ReqID: 1, Op: FilterOpCreate, Name: []byte("recent"), Layout: filter.Blocked, Capacity: 10, FPRate: 0.01, Window: 60_000, Slices: 6}
	b := must(AppendFilterRequest(nil, q))
	plain := q
	plain.Window, plain.Slices = 0, 0
	assert.Len(t, b, len(must(AppendFilterRequest(nil, plain)))+4+10, "growth 0, then the window")
	binary.BigEndian.PutUint64(b[len(b)-10:], 0)
	_, err := DecodeFilterRequest(b)
	assert.ErrorIs(t, err, ErrValue, "slices without a window")
}

func TestFilterRequestRefused(t *testing.T) {
	for _, q := range []FilterRequest{
		{Op: 0, Name: []byte("x")},
		{Op: 9, Name: []byte("x")},
		{Op: FilterOpInfo, Name: make([]byte, 256)},
	} {
		_, err := AppendFilterRequest(nil, q)
		assert.ErrorIs(t, err, ErrValue, "%+v", q)
	}
	good := must(AppendFilterRequest(nil, FilterRequest{ReqID: 1, Op: FilterOpCreate, Name: []byte("users"), Layout: filter.Blocked, Capacity: 1, FPRate: 0.5}))
	for cut := range len(good) {
		_, err := DecodeFilterRequest(good[:cut])
		assert.Error(t, err, "cut at %d", cut)
	}
	junk := append(bytes.Clone(good), 1)
	junk[4]++
	_, err := DecodeFilterRequest(junk)
	assert.ErrorIs(t, err, ErrValue, "padding must be zeros")
}

// What only the node can judge travels to it, so that the client hears
// the node's reason: a name no filter can have, a sizing no filter can be
// made with.
func TestFilterRequestCarriesWhatTheNodeJudges(t *testing.T) {
	for _, q := range []FilterRequest{
		{ReqID: 1, Op: FilterOpDrop},
		{ReqID: 2, Op: FilterOpInfo, Name: []byte("a\tb")},
		{ReqID: 3, Op: FilterOpCreate, Name: []byte("x"), Layout: filter.Blocked, FPRate: 1.5},
		{ReqID: 4, Op: FilterOpCreate, Name: []byte(""), Layout: filter.Blocked, FPRate: 0.01, Capacity: 10},
		{ReqID: 5, Op: FilterOpCreate, Name: []byte("x"), Layout: 7, FPRate: 0.1},
	} {
		b, err := AppendFilterRequest(nil, q)
		require.NoError(t, err, "%+v", q)
		got, err := DecodeFilterRequest(b)
		require.NoError(t, err)
		if len(q.Name) == 0 {
			q.Name = nil
		}
		assert.Equal(t, q, got)
	}
}

func TestFiltersRoundTrip(t *testing.T) {
	in := []FilterDesc{
		{Name: []byte("users"), Gen: 2, Created: 1_767_225_600_000, Origin: []byte("n1"), FP: exampleFP,
			Capacity: 1000, FPRate: 0.01, Keys: 314, FillPPM: 250_000},
		{Name: []byte("events"), Conflicts: 1, Gen: 1, Created: 5, Origin: []byte("n2"), FP: exampleFP, Keys: 0},
	}
	b, err := AppendFilters(nil, 9, FiltersMore, in)
	require.NoError(t, err)
	fs, err := DecodeFilters(b)
	require.NoError(t, err)
	assert.Equal(t, uint32(9), fs.ReqID)
	assert.Equal(t, FiltersMore, fs.Flags)
	var out []FilterDesc
	for f := range fs.All() {
		out = append(out, f)
	}
	assert.Equal(t, in, out)

	for cut := range len(b) {
		_, err := DecodeFilters(b[:cut])
		assert.Error(t, err, "cut at %d", cut)
	}
	_, err = AppendFilters(nil, 1, 0, []FilterDesc{{Name: []byte("x"), FillPPM: 1_000_001}})
	assert.ErrorIs(t, err, ErrValue)
	_, err = AppendFilters(nil, 1, 16, nil)
	assert.ErrorIs(t, err, ErrValue, "unknown flags")
	_, err = AppendFilters(nil, 1, 0, make([]FilterDesc, MaxFilterInfos+1))
	assert.ErrorIs(t, err, ErrValue)
}

// A describe or list asks for stages with a byte after the name, which
// zero padding (an earlier client's) reads as not asking; the answer then
// ends each filter with its stages, bytes, capacity, expansion and
// growth flags, and an answer that does not say so holds none.
func TestFiltersWithStages(t *testing.T) {
	q, err := DecodeFilterRequest(must(AppendFilterRequest(nil, FilterRequest{ReqID: 1, Op: FilterOpList, Detail: FilterDetailStages, Pad: 64})))
	require.NoError(t, err)
	assert.Equal(t, FilterDetailStages, q.Detail)
	q, err = DecodeFilterRequest(must(AppendFilterRequest(nil, FilterRequest{ReqID: 1, Op: FilterOpInfo, Name: []byte("x"), Pad: 64})))
	require.NoError(t, err)
	assert.Zero(t, q.Detail, "padding: not asked")
	_, err = DecodeFilterRequest(must(AppendFilterRequest(nil, FilterRequest{ReqID: 1, Op: FilterOpInfo, Name: []byte("x"), Detail: 8})))
	assert.ErrorIs(t, err, ErrValue, "an unknown detail")

	in := []FilterDesc{{Name: []byte("users"), Gen: 1, Origin: []byte("n1"), FP: exampleFP, Capacity: 1000, FPRate: 0.01,
		Stages: 3, Bytes: 9000, StagesCapacity: 7000, Expansion: 2},
		{Name: []byte("fixed"), Gen: 1, Origin: []byte("n1"), FP: exampleFP, Stages: 1, NonScaling: true}}
	b, err := AppendFilters(nil, 9, FiltersStages, in)
	require.NoError(t, err)
	fs, err := DecodeFilters(b)
	require.NoError(t, err)
	var out []FilterDesc
	for f := range fs.All() {
		out = append(out, f)
	}
	assert.Equal(t, in, out)
	plain, err := AppendFilters(nil, 9, 0, in)
	require.NoError(t, err)
	assert.Len(t, plain, len(b)-2*23, "23 bytes a filter, only when asked")
	in[0].Window, in[0].Slices = 10_000, 10
	w, err := AppendFilters(nil, 9, FiltersStages|FiltersWindows, in)
	require.NoError(t, err)
	assert.Len(t, w, len(b)+2*10, "and 10 more for its window")
	fs, err = DecodeFilters(w)
	require.NoError(t, err)
	out = out[:0]
	for f := range fs.All() {
		out = append(out, f)
	}
	assert.Equal(t, in, out)
	b[len(b)-1] = 2
	_, err = DecodeFilters(b)
	assert.ErrorIs(t, err, ErrValue, "unknown growth flags")
}

func FuzzFilterRequest(f *testing.F) {
	f.Add(must(AppendFilterRequest(nil, FilterRequest{ReqID: 1, Op: FilterOpCreate, Name: []byte("users"), Layout: filter.Blocked, Capacity: 9, FPRate: 0.01})))
	f.Add(must(AppendFilterRequest(nil, FilterRequest{ReqID: 1, Op: FilterOpList, Pad: 64})))
	f.Add(must(AppendFilterRequest(nil, FilterRequest{ReqID: 1, Op: FilterOpInfo, Name: []byte("users"), Detail: FilterDetailStages, Pad: 64})))
	f.Add(must(AppendFilterRequest(nil, FilterRequest{ReqID: 2, Op: FilterOpCreate, Name: []byte("grows"), Layout: filter.Blocked, Capacity: 9, FPRate: 0.01, Growth: 3, Pad: 80})))
	f.Add(must(AppendFilterRequest(nil, FilterRequest{ReqID: 2, Op: FilterOpCreate, Name: []byte("w"), Layout: filter.Blocked, Capacity: 9, FPRate: 0.01, Window: 10_000, Slices: 10, Pad: 80})))
	f.Add(must(AppendFilterRequest(nil, FilterRequest{ReqID: 2, Op: FilterOpCreate, Name: []byte("p"), Layout: filter.Blocked, Capacity: 9, FPRate: 0.01, Replicas: 2, Pad: 80})))
	f.Add(must(AppendFilterRequest(nil, FilterRequest{ReqID: 1, Op: FilterOpList, Detail: FilterDetailPlacement | FilterDetailStages, Pad: 64})))
	f.Fuzz(func(t *testing.T, b []byte) {
		q, err := DecodeFilterRequest(b)
		if err != nil {
			return
		}
		out, err := AppendFilterRequest(nil, q)
		if err == nil && len(out) < len(b) {
			out, err = PadFrame(out, 0, len(b))
		}
		same(t, b, out, err)
	})
}

func FuzzFilters(f *testing.F) {
	f.Add(must(AppendFilters(nil, 3, 0, []FilterDesc{{Name: []byte("users"), Gen: 1, Origin: []byte("n1"), FP: exampleFP}})))
	f.Add(must(AppendFilters(nil, 3, FiltersStages, []FilterDesc{{Name: []byte("users"), Gen: 1, Origin: []byte("n1"), FP: exampleFP, Stages: 2}})))
	f.Add(must(AppendFilters(nil, 3, FiltersStages|FiltersWindows, []FilterDesc{{Name: []byte("w"), Gen: 1, Origin: []byte("n1"), FP: exampleFP, Window: 9, Slices: 3}})))
	f.Add(must(AppendFilters(nil, 3, FiltersStages|FiltersWindows|FiltersPlacement, []FilterDesc{{Name: []byte("p"), Gen: 1, Origin: []byte("n1"), FP: exampleFP,
		Replicas: 2, Owners: [][]byte{[]byte("n1"), []byte("n2")}, Here: HeldLeaving}})))
	f.Fuzz(func(t *testing.T, b []byte) {
		fs, err := DecodeFilters(b)
		if err != nil {
			return
		}
		var list []FilterDesc
		for d := range fs.All() {
			list = append(list, d)
		}
		out, err := AppendFilters(nil, fs.ReqID, fs.Flags, list)
		same(t, b, out, err)
	})
}

// A create asks for replicas after the window (zeros when none); the
// answer describes placement when asked: replicas, owners, and how the
// member answering holds the filter.
func TestFiltersPlacement(t *testing.T) {
	q := FilterRequest{ReqID: 1, Op: FilterOpCreate, Name: []byte("users"), Layout: filter.Blocked, Capacity: 10, FPRate: 0.01, Replicas: 2}
	b := must(AppendFilterRequest(nil, q))
	got, err := DecodeFilterRequest(b)
	require.NoError(t, err)
	assert.Equal(t, uint8(2), got.Replicas)
	assert.Zero(t, got.Window)
	q.Pad = 200
	got, err = DecodeFilterRequest(must(AppendFilterRequest(nil, q)))
	require.NoError(t, err)
	assert.Equal(t, uint8(2), got.Replicas, "padded")

	in := []FilterDesc{{Name: []byte("users"), Gen: 1, Origin: []byte("n1"), FP: exampleFP, Capacity: 10, FPRate: 0.01,
		Replicas: 2, Owners: [][]byte{[]byte("n2"), []byte("n3")}, Here: HeldFilling}, {Name: []byte("all"), FP: exampleFP, Here: HeldReady}}
	flags := FiltersStages | FiltersWindows | FiltersPlacement
	fb := must(AppendFilters(nil, 1, flags, in))
	fs, err := DecodeFilters(fb)
	require.NoError(t, err)
	var out []FilterDesc
	for d := range fs.All() {
		out = append(out, d)
	}
	require.Len(t, out, 2)
	assert.Equal(t, in[0].Owners, out[0].Owners)
	assert.Equal(t, HeldFilling, out[0].Here)
	assert.Equal(t, uint8(2), out[0].Replicas)
	assert.Empty(t, out[1].Owners)
	for cut := range len(fb) {
		_, err := DecodeFilters(fb[:cut])
		assert.Error(t, err, "cut at %d", cut)
	}
	bad := bytes.Clone(fb)
	bad[len(bad)-1] = 9 // the second filter's here
	_, err = DecodeFilters(bad)
	assert.ErrorIs(t, err, ErrValue)
}
