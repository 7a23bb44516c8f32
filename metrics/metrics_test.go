package metrics

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/rmbd/rmbd/client"
	"github.com/rmbd/rmbd/filter"
	"github.com/rmbd/rmbd/gossip"
	"github.com/rmbd/rmbd/internal/nodetest"
	"github.com/rmbd/rmbd/node"
	"github.com/rmbd/rmbd/wire"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// dial connects a TCP client to n for the rest of the test.
func dial(t *testing.T, n *node.Node) *client.Client {
	t.Helper()
	c, err := client.Dial(context.Background(), n.Addr().String(), client.WithTCP())
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

// scrape fetches path from h and parses it as Prometheus text.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	require.NoError(t, err)
	return fams
}

func value(t *testing.T, fams map[string]*dto.MetricFamily, name string) float64 {
	t.Helper()
	f, ok := fams[name]
	require.True(t, ok, "no metric %s", name)
	require.Len(t, f.Metric, 1, name)
	m := f.Metric[0]
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	}
	t.Fatalf("%s is neither counter nor gauge", name)
	return 0
}

// After known traffic, the scrape says what happened: counters, filter
// gauges, histograms, Go's and the process's figures.
func TestScrapeAfterTraffic(t *testing.T) {
	cfg := node.DefaultConfig()
	cfg.Capacity, cfg.FPRate = 10_000, 0.02
	n := nodetest.Start(t, cfg)
	waitFor(t, "serving", func() bool { return n.Health().Serving })
	h, err := Handler(n, Options{})
	require.NoError(t, err)
	srv := httptest.NewServer(h)
	defer srv.Close()

	ctx := context.Background()
	c := dial(t, n)
	var keys []string
	for i := range 300 {
		keys = append(keys, fmt.Sprint("key-", i))
	}
	require.NoError(t, c.Add(ctx, keys...))
	_, err = c.Has(ctx, keys[:120]...)
	require.NoError(t, err)
	_, err = c.Has(ctx, "never added")
	require.NoError(t, err)

	fams := scrape(t, srv.URL)
	assert.Equal(t, 300.0, value(t, fams, "rmbd_adds_total"))
	assert.Equal(t, 300.0, value(t, fams, "rmbd_adds_new_total"))
	assert.Equal(t, 121.0, value(t, fams, "rmbd_has_queries_total"))
	assert.Equal(t, 1.0, value(t, fams, "rmbd_ready"))
	assert.Equal(t, 10_000.0, value(t, fams, "rmbd_filter_capacity_keys"))
	assert.InDelta(t, 0.02, value(t, fams, "rmbd_filter_target_fp_ratio"), 1e-12)
	assert.Equal(t, float64(n.Stats().FilterBytes), value(t, fams, "rmbd_filter_bytes"))
	assert.Zero(t, value(t, fams, "rmbd_filter_over_capacity"))
	assert.Equal(t, 1.0, value(t, fams, "rmbd_tcp_open_connections"))
	assert.Equal(t, 1.0, value(t, fams, "rmbd_tcp_conns_total"))

	hist := fams["rmbd_tcp_request_duration_seconds"]
	require.NotNil(t, hist)
	assert.Equal(t, dto.MetricType_HISTOGRAM, hist.GetType())
	// Three requests, each its own burst, each timed once its reply is
	// flushed: the last may be timed just after the client has it.
	waitFor(t, "three TCP bursts timed", func() bool {
		h := scrape(t, srv.URL)["rmbd_tcp_request_duration_seconds"]
		return h.Metric[0].Histogram.GetSampleCount() == 3
	})
	for _, name := range []string{"go_goroutines", "process_resident_memory_bytes", "rmbd_build_info", "rmbd_sync_round_duration_seconds"} {
		assert.Contains(t, fams, name)
	}
	for name, f := range fams {
		if strings.HasPrefix(name, "rmbd_") {
			assert.NotEmpty(t, f.GetHelp(), "%s has help", name)
		}
	}

	// The estimate follows the filter's background refresh.
	waitFor(t, "the filter's figures refreshed", func() bool {
		k := value(t, scrape(t, srv.URL), "rmbd_filter_estimated_keys")
		return k > 270 && k < 330
	})
}

// fake is a Source whose health and peers the test sets.
type fake struct {
	health  node.Health
	peers   []gossip.PeerStatus
	members []wire.Member
}

func (f *fake) Stats() node.Stats {
	return node.Stats{Health: f.health, SyncInterval: 100 * time.Millisecond}
}
func (f *fake) Peers() []gossip.PeerStatus { return f.peers }
func (f *fake) Members() []wire.Member     { return f.members }
func (f *fake) Health() node.Health        { return f.health }

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestHealthAndReadiness(t *testing.T) {
	src := &fake{health: node.Health{Why: "starting"}}
	h, err := Handler(src, Options{})
	require.NoError(t, err)
	srv := httptest.NewServer(h)
	defer srv.Close()

	code, body := get(t, srv.URL+"/healthz")
	assert.Equal(t, http.StatusServiceUnavailable, code)
	assert.Contains(t, body, "starting")

	src.health = node.Health{Serving: true, Why: "joining: the first pull from the cluster is not done"}
	code, _ = get(t, srv.URL+"/healthz")
	assert.Equal(t, http.StatusOK, code)
	code, body = get(t, srv.URL+"/readyz")
	assert.Equal(t, http.StatusServiceUnavailable, code)
	assert.Contains(t, body, "first pull")

	src.health = node.Health{Serving: true, Ready: true}
	code, _ = get(t, srv.URL+"/readyz")
	assert.Equal(t, http.StatusOK, code)

	code, _ = get(t, srv.URL+"/debug/pprof/")
	assert.Equal(t, http.StatusNotFound, code, "pprof only with --pprof")
	withPprof, err := Handler(src, Options{Pprof: true})
	require.NoError(t, err)
	psrv := httptest.NewServer(withPprof)
	defer psrv.Close()
	code, _ = get(t, psrv.URL+"/debug/pprof/")
	assert.Equal(t, http.StatusOK, code)
}

// Profiles are for admins, one at a time, for a bounded time: an open
// --metrics-listen must not let anyone read the command line or keep the
// node busy profiling.
func TestPprofBounds(t *testing.T) {
	src := &fake{health: node.Health{Serving: true, Ready: true}}
	nobody, err := Handler(src, Options{Pprof: true, Admin: func(netip.Addr) bool { return false }})
	require.NoError(t, err)
	srv := httptest.NewServer(nobody)
	defer srv.Close()
	for _, path := range []string{"/debug/pprof/", "/debug/pprof/cmdline", "/debug/pprof/goroutine?debug=2", "/debug/pprof/profile?seconds=1"} {
		code, body := get(t, srv.URL+path)
		assert.Equal(t, http.StatusForbidden, code, path)
		assert.Contains(t, body, "admins", path)
	}

	h, err := Handler(src, Options{Pprof: true}) // loopback: an admin
	require.NoError(t, err)
	psrv := httptest.NewServer(h)
	defer psrv.Close()
	code, body := get(t, psrv.URL+"/debug/pprof/profile?seconds=3600")
	assert.Equal(t, http.StatusBadRequest, code)
	assert.Contains(t, body, "0 to 30")

	done := make(chan int, 1)
	go func() {
		code, _ := get(t, psrv.URL+"/debug/pprof/trace?seconds=2")
		done <- code
	}()
	busy := false
	for deadline := time.Now().Add(2 * time.Second); !busy && time.Now().Before(deadline); {
		code, _ := get(t, psrv.URL+"/debug/pprof/cmdline")
		busy = code == http.StatusTooManyRequests
	}
	assert.True(t, busy, "a second profile while one runs is refused")
	assert.Equal(t, http.StatusOK, <-done)
	code, _ = get(t, psrv.URL+"/debug/pprof/cmdline")
	assert.Equal(t, http.StatusOK, code, "and served once it is done")
}

// Per-peer and per-member gauges carry their labels; a member never
// synced has no last-sync series.
func TestPeerAndMemberGauges(t *testing.T) {
	src := &fake{health: node.Health{Serving: true, Ready: true},
		peers: []gossip.PeerStatus{
			{Addr: netip.MustParseAddrPort("10.0.0.2:8000"), Kind: gossip.Static, Verified: true, Missed: 2, AckedTicksAgo: 5},
			{Addr: netip.MustParseAddrPort("10.0.0.3:8000"), Kind: gossip.Member, AckedTicksAgo: -1},
		},
		members: []wire.Member{
			{Name: []byte("a"), State: wire.MemberAlive, FPMatch: true, Age: 30, LastSync: 1500},
			{Name: []byte("b"), State: wire.MemberLeft, Age: 4, LastSync: wire.NeverSynced},
		}}
	h, err := Handler(src, Options{})
	require.NoError(t, err)
	srv := httptest.NewServer(h)
	defer srv.Close()
	fams := scrape(t, srv.URL)

	series := func(name string) map[string]float64 {
		out := map[string]float64{}
		for _, m := range fams[name].GetMetric() {
			var l []string
			for _, lp := range m.Label {
				l = append(l, lp.GetName()+"="+lp.GetValue())
			}
			out[strings.Join(l, ",")] = m.Gauge.GetValue()
		}
		return out
	}
	assert.Equal(t, map[string]float64{"kind=static,peer=10.0.0.2:8000": 2, "kind=member,peer=10.0.0.3:8000": 0}, series("rmbd_peer_missed_rounds"))
	assert.Equal(t, map[string]float64{"kind=static,peer=10.0.0.2:8000": 0.5}, series("rmbd_peer_last_ack_age_seconds"), "5 ticks of 100 ms")
	assert.Equal(t, map[string]float64{"member=a": 1, "member=b": 0}, series("rmbd_member_up"))
	assert.Equal(t, map[string]float64{"member=a,state=alive": 30, "member=b,state=left": 4}, series("rmbd_member_state_age_seconds"))
	assert.Equal(t, map[string]float64{"member=a": 1.5}, series("rmbd_member_last_sync_age_seconds"))
}

// Every value of a stats frame is a metric; none is forgotten.
func TestEveryStatIsAMetric(t *testing.T) {
	c, err := newCollector(&fake{})
	require.NoError(t, err)
	names := map[string]bool{}
	for _, s := range (node.Stats{}).WireStats() {
		st := c.stats[s.Name]
		require.NotNil(t, st, s.Name)
		name := st.desc.String()
		assert.False(t, names[name], "two stats share %s", name)
		names[name] = true
	}
}

// promtool, Prometheus's own checker, accepts a real scrape. CI installs
// it (Debian's prometheus package); elsewhere the test is skipped without
// it.
func TestPromtoolChecksAScrape(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("CI runs promtool: install Debian's prometheus package")
		}
		t.Skip("promtool not installed")
	}
	n := nodetest.Start(t, node.DefaultConfig())
	waitFor(t, "serving", func() bool { return n.Health().Serving })
	h, err := Handler(n, Options{})
	require.NoError(t, err)
	srv := httptest.NewServer(h)
	defer srv.Close()
	require.NoError(t, dial(t, n).Add(context.Background(), "a", "b"))
	n.AddPeer(netip.MustParseAddrPort("127.0.0.1:9")) // a peer series

	resp, err := http.Get(srv.URL + "/metrics")
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = bytes.NewReader(body)
	out, err := cmd.CombinedOutput()
	assert.NoError(t, err, "promtool check metrics:\n%s", out)
	assert.Contains(t, string(body), `rmbd_peer_verified{kind="static",peer="127.0.0.1:9"} 0`)
}

// Over HTTP, on real nodes: a node that joins a cluster nobody answers
// for is live and not ready; one without --join is both.
func TestReadyzOnRealNodes(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	nobody := l.Addr().String()
	l.Close()
	cfg := node.DefaultConfig()
	cfg.Join, cfg.GossipListen = []string{nobody}, "127.0.0.1:0"
	joining := nodetest.Start(t, cfg)
	alone := nodetest.Start(t, node.DefaultConfig())
	for _, c := range []struct {
		n           *node.Node
		health, rdy int
		why         string
	}{
		{joining, http.StatusOK, http.StatusServiceUnavailable, "not ready: joining: no member of the cluster reached yet"},
		{alone, http.StatusOK, http.StatusOK, "ready"},
	} {
		h, err := Handler(c.n, Options{})
		require.NoError(t, err)
		srv := httptest.NewServer(h)
		code, _ := get(t, srv.URL+"/healthz")
		assert.Equal(t, c.health, code)
		code, body := get(t, srv.URL+"/readyz")
		assert.Equal(t, c.rdy, code)
		assert.Equal(t, c.why, strings.TrimSpace(body))
		srv.Close()
	}
}

// Alarms are per filter: a named filter sized for 10 holding 300 keys
// (merged from a member: adds past 10 are refused) says so in its own
// series, and the default's stays 0.
func TestNamedFilterAlarms(t *testing.T) {
	n := nodetest.Start(t, node.DefaultConfig())
	h, err := Handler(n, Options{})
	require.NoError(t, err)
	srv := httptest.NewServer(h)
	defer srv.Close()
	ctx := context.Background()
	c := dial(t, n)
	_, err = c.CreateGrowingFilter(ctx, "tiny", 10, 0.01, client.NonScaling)
	require.NoError(t, err)
	rows := n.Registry().Lookup([]byte("tiny")).Winner().Segments()[0].Rows()
	src, err := filter.NewFromFingerprint(rows.Fingerprint(), 0)
	require.NoError(t, err)
	for i := range 300 {
		src.Add(fmt.Appendf(nil, "k%d", i))
	}
	b, err := src.CopyRows(nil, 0, src.Rows())
	require.NoError(t, err)
	_, err = rows.MergeRows(rows.Fingerprint(), 0, b, nil)
	require.NoError(t, err)
	waitFor(t, "the alarm", func() bool { // the statistics refresh about once a second
		st := n.Stats().Named
		return len(st) == 1 && st[0].Alarms.OverCapacity
	})
	fams := scrape(t, srv.URL)
	assert.Equal(t, 1.0, value(t, fams, "rmbd_named_filter_over_capacity"))
	assert.Equal(t, 1.0, value(t, fams, "rmbd_named_filter_fp_over_target"))
	assert.Equal(t, "tiny", fams["rmbd_named_filter_over_capacity"].Metric[0].Label[0].GetValue())
	assert.Zero(t, value(t, fams, "rmbd_filter_over_capacity"), "the default's own")
}
