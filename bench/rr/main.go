// Command rr measures TCP request/response latency, as netperf's TCP_RR
// and TCP_CRR do: a client sends a small request and waits for the echo,
// over one persistent connection (rr) or a new connection each time (crr),
// and prints the percentiles as JSON. The benchmark suite copies it,
// statically linked, into its test image and runs it in containers and in
// the e2e harness's namespaces.
//
//	rr serve -addr :7000
//	rr client -addr 10.0.0.2:7000 -mode rr -n 2000
//
// Every run is bounded: the client by -n and -timeout, the server by its
// container or process being removed.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: rr serve|client [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "serve":
		err = serve(os.Args[2:])
	case "client":
		err = client(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q: want serve or client", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "rr:", err)
		os.Exit(1)
	}
}

const msgSize = 64 // bytes per request and per answer

func serve(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	addr := fs.String("addr", ":7000", "listen address")
	_ = fs.Parse(args)
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		go echo(c)
	}
}

// echo answers each msgSize request with itself until the client closes.
func echo(c net.Conn) {
	defer c.Close()
	buf := make([]byte, msgSize)
	for {
		if err := c.SetDeadline(time.Now().Add(time.Minute)); err != nil {
			return
		}
		if _, err := io.ReadFull(c, buf); err != nil {
			return
		}
		if _, err := c.Write(buf); err != nil {
			return
		}
	}
}

// Result is what the client prints: microseconds per request.
type Result struct {
	Mode string  `json:"mode"`
	N    int     `json:"n"`
	P50  float64 `json:"p50_us"`
	P90  float64 `json:"p90_us"`
	P99  float64 `json:"p99_us"`
	Mean float64 `json:"mean_us"`
}

func client(args []string) error {
	fs := flag.NewFlagSet("client", flag.ExitOnError)
	addr := fs.String("addr", "", "server address host:port")
	mode := fs.String("mode", "rr", "rr (one connection) or crr (a connection per request)")
	n := fs.Int("n", 1000, "requests")
	warmup := fs.Int("warmup", 50, "requests before measuring")
	timeout := fs.Duration("timeout", 60*time.Second, "give up after this long")
	_ = fs.Parse(args)
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	var lat []time.Duration
	var err error
	switch *mode {
	case "rr":
		lat, err = persistent(ctx, *addr, *warmup, *n)
	case "crr":
		lat, err = reconnecting(ctx, *addr, *warmup, *n)
	default:
		err = fmt.Errorf("unknown mode %q", *mode)
	}
	if err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(summarize(*mode, lat))
}

func persistent(ctx context.Context, addr string, warmup, n int) ([]time.Duration, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	buf := make([]byte, msgSize)
	lat := make([]time.Duration, 0, n)
	for i := range warmup + n {
		start := time.Now()
		if err := exchange(c, buf); err != nil {
			return nil, err
		}
		if i >= warmup {
			lat = append(lat, time.Since(start))
		}
	}
	return lat, nil
}

// reconnecting times connect + request + answer; the close is not timed.
func reconnecting(ctx context.Context, addr string, warmup, n int) ([]time.Duration, error) {
	var d net.Dialer
	buf := make([]byte, msgSize)
	lat := make([]time.Duration, 0, n)
	for i := range warmup + n {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		start := time.Now()
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return nil, err
		}
		if dl, ok := ctx.Deadline(); ok {
			_ = c.SetDeadline(dl)
		}
		err = exchange(c, buf)
		elapsed := time.Since(start)
		c.Close()
		if err != nil {
			return nil, err
		}
		if i >= warmup {
			lat = append(lat, elapsed)
		}
	}
	return lat, nil
}

func exchange(c net.Conn, buf []byte) error {
	if _, err := c.Write(buf); err != nil {
		return err
	}
	_, err := io.ReadFull(c, buf)
	return err
}

func summarize(mode string, lat []time.Duration) Result {
	if len(lat) == 0 {
		return Result{Mode: mode}
	}
	slices.Sort(lat)
	us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
	pct := func(q float64) float64 { return us(lat[min(len(lat)-1, int(q*float64(len(lat))))]) }
	var sum time.Duration
	for _, d := range lat {
		sum += d
	}
	return Result{Mode: mode, N: len(lat), P50: pct(0.5), P90: pct(0.9), P99: pct(0.99), Mean: us(sum / time.Duration(len(lat)))}
}
