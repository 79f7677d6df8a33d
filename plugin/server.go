// Package plugin serves the NetworkDriver and IpamDriver plugin APIs on one
// unix socket. It is a thin transport: decode a request, call one typed
// method on the driver or the IPAM, encode the answer. go-plugins-helpers
// has no handler for both APIs on one socket (a managed plugin has exactly
// one), so the routes are registered here on a plain mux, reusing the
// helpers' wire types.
package plugin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/docker/go-plugins-helpers/ipam"
	"github.com/docker/go-plugins-helpers/network"
	"github.com/sirupsen/logrus"
)

// contentType is what go-plugins-helpers answers with; the engine ignores
// the response type but tools like curl users read it.
const contentType = "application/vnd.docker.plugins.v1.2+json"

// maxBody bounds a request body. Most requests are a few KiB, but the
// engine sends a container's port bindings one per port, in CreateEndpoint,
// Join and ProgramExternalConnectivity alike (see docs/RELIABILITY.md for
// the bytes per port measured on both engines).
const maxBody = 64 << 20

// maxLogged bounds the request text in the debug log.
const maxLogged = 64 << 10

// Manifest is the answer to /Plugin.Activate (legacy, unmanaged plugins
// only: managed plugins declare their types in config.json).
var Manifest = map[string][]string{"Implements": {"NetworkDriver", "IpamDriver"}}

// ipamCapabilities adds RequiresRequestReplay, which the helpers' type
// lacks. mynet persists pools and leases itself, so it does not want the
// engine to replay allocations at daemon start: engines up to 27 replay
// only what the user specified, which would collide with leases mynet
// already holds. RequiresMACAddress is false because the driver derives
// the MAC from the address in CreateEndpoint.
type ipamCapabilities struct {
	RequiresMACAddress    bool
	RequiresRequestReplay bool
}

// NewHandler returns the HTTP handler for both APIs. Every success answers
// 200 with a JSON body (an empty body is a decode error in the engine);
// every failure answers 500 with {"Err": "..."} and, for IPAM, "Error" as
// well, since the IPAM proxy reads that field from 200 answers.
//
// Every call is bounded by a deadline (see bounded).
func NewHandler(d network.Driver, i ipam.Ipam, log *logrus.Entry, opts ...Option) http.Handler {
	o := options{deadline: DefaultDeadline}
	for _, opt := range opts {
		opt(&o)
	}
	undo := undos(d, i)
	mux := http.NewServeMux()
	h := func(path string, fn func(body []byte) (any, error)) {
		mux.HandleFunc("POST "+path, serve(path, bounded(path, o.deadline, fn, undo[path], log), log))
	}
	h("/Plugin.Activate", func([]byte) (any, error) { return Manifest, nil })

	h("/NetworkDriver.GetCapabilities", noArg(d.GetCapabilities))
	h("/NetworkDriver.CreateNetwork", errOnly(d.CreateNetwork))
	h("/NetworkDriver.DeleteNetwork", errOnly(d.DeleteNetwork))
	h("/NetworkDriver.AllocateNetwork", call(d.AllocateNetwork))
	h("/NetworkDriver.FreeNetwork", errOnly(d.FreeNetwork))
	h("/NetworkDriver.CreateEndpoint", call(d.CreateEndpoint))
	h("/NetworkDriver.DeleteEndpoint", errOnly(d.DeleteEndpoint))
	h("/NetworkDriver.EndpointOperInfo", call(d.EndpointInfo))
	h("/NetworkDriver.Join", call(d.Join))
	h("/NetworkDriver.Leave", errOnly(d.Leave))
	h("/NetworkDriver.DiscoverNew", errOnly(d.DiscoverNew))
	h("/NetworkDriver.DiscoverDelete", errOnly(d.DiscoverDelete))
	h("/NetworkDriver.ProgramExternalConnectivity", errOnly(d.ProgramExternalConnectivity))
	h("/NetworkDriver.RevokeExternalConnectivity", errOnly(d.RevokeExternalConnectivity))

	h("/IpamDriver.GetCapabilities", func([]byte) (any, error) {
		c, err := i.GetCapabilities()
		if err != nil {
			return nil, err
		}
		return ipamCapabilities{RequiresMACAddress: c.RequiresMACAddress}, nil
	})
	h("/IpamDriver.GetDefaultAddressSpaces", noArg(i.GetDefaultAddressSpaces))
	h("/IpamDriver.RequestPool", call(i.RequestPool))
	h("/IpamDriver.ReleasePool", errOnly(i.ReleasePool))
	h("/IpamDriver.RequestAddress", call(i.RequestAddress))
	h("/IpamDriver.ReleaseAddress", errOnly(i.ReleaseAddress))

	// mynet's own routes, for the CLI (package api).
	handlePrivate(h, d)

	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, map[string]string{"Err": fmt.Sprintf("mynet does not implement %s %s", r.Method, r.URL.Path)})
	})
	return mux
}

func serve(path string, fn func([]byte) (any, error), log *logrus.Entry) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, ok := readBody(w, r, path)
		if !ok {
			return
		}
		l := log.WithField("call", path)
		l.WithFields(logrus.Fields{"bytes": len(body), "request": string(body[:min(len(body), maxLogged)])}).Debug("request")
		start := time.Now()
		resp, err := fn(body)
		// How long mynet itself took, apart from the engine and the
		// socket: what tells a slow plugin from a slow engine.
		l = l.WithField("took", time.Since(start).String())
		if err != nil {
			l.WithError(err).Warn("request failed")
			writeJSON(w, http.StatusInternalServerError, map[string]string{"Err": err.Error(), "Error": err.Error()})
			return
		}
		l.Debug("answered")
		writeJSON(w, http.StatusOK, resp)
	}
}

// readBody reads the whole request body, or answers the failure itself: a
// body over maxBody is refused whole, with nothing done, since a cut one
// may still decode into a different request.
func readBody(w http.ResponseWriter, r *http.Request, path string) ([]byte, bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		msg := fmt.Sprintf("%s: request body is over mynet's limit of %d MiB; refused, nothing was done", path, tooBig.Limit>>20)
		writeJSON(w, http.StatusRequestEntityTooLarge, map[string]string{"Err": msg, "Error": msg})
		return nil, false
	case err != nil:
		writeJSON(w, http.StatusBadRequest, map[string]string{"Err": fmt.Sprintf("%s: read request: %v", path, err)})
		return nil, false
	}
	return body, true
}

// decode reads a request tolerantly: unknown fields are ignored (newer
// engines add some) and an empty body is a zero request, since the engine
// sends no body for argument-less calls.
func decode[Req any](body []byte) (*Req, error) {
	req := new(Req)
	if len(bytes.TrimSpace(body)) == 0 {
		return req, nil
	}
	if err := json.Unmarshal(body, req); err != nil {
		return nil, fmt.Errorf("malformed request: %w", err)
	}
	return req, nil
}

func call[Req, Resp any](fn func(*Req) (Resp, error)) func([]byte) (any, error) {
	return func(body []byte) (any, error) {
		req, err := decode[Req](body)
		if err != nil {
			return nil, err
		}
		return fn(req)
	}
}

func errOnly[Req any](fn func(*Req) error) func([]byte) (any, error) {
	return func(body []byte) (any, error) {
		req, err := decode[Req](body)
		if err != nil {
			return nil, err
		}
		return struct{}{}, fn(req)
	}
}

func noArg[Resp any](fn func() (Resp, error)) func([]byte) (any, error) {
	return func([]byte) (any, error) { return fn() }
}

// writeJSON always writes a JSON object: a nil response becomes {}.
func writeJSON(w http.ResponseWriter, status int, v any) {
	raw, err := json.Marshal(v)
	if err != nil || string(raw) == "null" {
		raw = []byte("{}")
	}
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(status)
	_, _ = w.Write(raw)
}

// WaitReady holds every call except the capability and activation calls
// until ready is closed. The engine calls GetCapabilities synchronously
// while it starts and gives up on a plugin that does not answer, so those
// must never wait for mynet's own start-up work (restoring bridges and
// rules).
func WaitReady(h http.Handler, ready <-chan struct{}) http.Handler {
	return waitReady(h, ready, DefaultDeadline)
}

func waitReady(h http.Handler, ready <-chan struct{}, deadline time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/Plugin.Activate", "/NetworkDriver.GetCapabilities", "/IpamDriver.GetCapabilities":
		default:
			timer := time.NewTimer(deadline)
			defer timer.Stop()
			select {
			case <-ready:
			case <-r.Context().Done():
				return
			case <-timer.C:
				writeJSON(w, http.StatusServiceUnavailable, map[string]string{"Err": fmt.Sprintf(
					"mynet is still restoring its networks after starting (over %s); try again shortly", deadline)})
				return
			}
		}
		h.ServeHTTP(w, r)
	})
}
