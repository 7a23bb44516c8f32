package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rmbd/rmbd/node"
)

// Options shape the HTTP handler.
type Options struct {
	// Pprof serves Go's profiles under /debug/pprof/, to Admin's
	// addresses alone, one at a time, for at most MaxProfileSeconds.
	Pprof bool
	// Admin reports whether an address may take profiles; nil: loopback.
	Admin func(netip.Addr) bool
	// Logger receives errors from serving scrapes; nil discards them.
	Logger *slog.Logger
}

// Handler serves, for src:
//
//	/metrics        Prometheus text: the node's figures, Go's and the process's
//	/healthz        200 while the node serves, 503 otherwise
//	/readyz         200 once the node is ready (Source.Health), 503 with the reason before
//	/debug/pprof/   Go's profiles, with Options.Pprof only, for admins
func Handler(src Source, o Options) (http.Handler, error) {
	c, err := newCollector(src)
	if err != nil {
		return nil, err
	}
	reg := prometheus.NewRegistry()
	if err := reg.Register(c); err != nil {
		return nil, err
	}
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog:            slogPrinter{log},
		ErrorHandling:       promhttp.ContinueOnError,
		MaxRequestsInFlight: 4,
		Timeout:             10 * time.Second,
	}))
	mux.HandleFunc("GET /healthz", check(src, "ok", "not serving", func(h node.Health) bool { return h.Serving }))
	mux.HandleFunc("GET /readyz", check(src, "ready", "not ready", func(h node.Health) bool { return h.Ready }))
	if o.Pprof {
		admin := o.Admin
		if admin == nil {
			admin = netip.Addr.IsLoopback
		}
		mux.Handle("/debug/pprof/", pprofHandler(admin))
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprintln(w, "rmbd: /metrics, /healthz, /readyz")
	})
	return mux, nil
}

// check answers 200 and yes while pass(src.Health()) holds, else 503 with
// no and the reason.
func check(src Source, yes, no string, pass func(node.Health) bool) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		if h := src.Health(); !pass(h) {
			http.Error(w, no+": "+h.Why, http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, yes)
	}
}

// slogPrinter is a logger as promhttp wants one.
type slogPrinter struct{ log *slog.Logger }

func (p slogPrinter) Println(v ...any) { p.log.Warn("metrics: " + fmt.Sprint(v...)) }

// Server is an HTTP listener for Handler.
type Server struct {
	l   net.Listener
	srv *http.Server
}

// Listen binds addr (HOST:PORT). Serve serves on it.
func Listen(addr string) (*Server, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	return &Server{l: l, srv: &http.Server{
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      time.Minute, // a CPU profile takes 30 s by default
		IdleTimeout:       time.Minute,
		MaxHeaderBytes:    16 << 10,
	}}, nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() net.Addr { return s.l.Addr() }

// Close lets go of the listener of a server that never served.
func (s *Server) Close() error { return s.l.Close() }

// Serve serves h until ctx ends, then closes the listener and every
// connection within a second.
func (s *Server) Serve(ctx context.Context, h http.Handler) error {
	s.srv.Handler = h
	done := make(chan error, 1)
	go func() { done <- s.srv.Serve(s.l) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := s.srv.Shutdown(sctx); err != nil {
		s.srv.Close()
	}
	if err := <-done; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
