package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

// healthcheck asks a node's metrics listener whether it serves (/healthz)
// or, with --ready, whether it is ready (/readyz): for a container's
// HEALTHCHECK, in an image that holds no curl. The address is the
// argument, else RMBD_METRICS_LISTEN, a wildcard host asked on loopback.
// It exits 0 if the node says so, 1 if not, 2 on bad usage.
func healthcheck(args []string, env environment, stdout, stderr io.Writer) int {
	path, addr := "/healthz", env.get("RMBD_METRICS_LISTEN")
	for _, a := range args {
		switch {
		case a == "--ready":
			path = "/readyz"
		case strings.HasPrefix(a, "-"):
			fmt.Fprintf(stderr, "rmbd: healthcheck: unknown flag %s (rmbd healthcheck [--ready] [HOST:PORT])\n", a)
			return 2
		default:
			addr = a
		}
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		fmt.Fprintf(stderr, "rmbd: healthcheck: give the node's --metrics-listen HOST:PORT, or set RMBD_METRICS_LISTEN (got %q)\n", addr)
		return 2
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://" + net.JoinHostPort(host, port) + path)
	if err != nil {
		fmt.Fprintf(stderr, "rmbd: healthcheck: %s\n", userMessage(err))
		return 1
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	fmt.Fprint(stdout, string(body))
	if resp.StatusCode != http.StatusOK {
		return 1
	}
	return 0
}
