package metrics

import (
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"net/netip"
	"strconv"
)

// Go's profiles (Options.Pprof) tell a lot of the process — its command
// line, every goroutine's stack — and cost CPU while they run, so they
// are served to admins alone (Options.Admin: loopback, --allow-admin),
// one at a time, for at most MaxProfileSeconds.

// MaxProfileSeconds bounds the seconds a profile or trace may run.
const MaxProfileSeconds = 30

// pprofHandler serves Go's profiles under /debug/pprof/ to admins.
func pprofHandler(admin func(netip.Addr) bool) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	one := make(chan struct{}, 1)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !admin(remoteIP(r)) {
			http.Error(w, "profiles are for admins (loopback, --allow-admin)", http.StatusForbidden)
			return
		}
		if s := r.URL.Query().Get("seconds"); s != "" {
			if v, err := strconv.Atoi(s); err != nil || v < 0 || v > MaxProfileSeconds {
				http.Error(w, fmt.Sprintf("seconds must be 0 to %d", MaxProfileSeconds), http.StatusBadRequest)
				return
			}
		}
		select {
		case one <- struct{}{}:
			defer func() { <-one }()
		default:
			http.Error(w, "a profile is being taken: one at a time", http.StatusTooManyRequests)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// remoteIP is the address a request came from; invalid if unknown.
func remoteIP(r *http.Request) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	a, _ := netip.ParseAddr(host)
	return a.Unmap()
}
