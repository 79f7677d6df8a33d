package plugin

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"time"

	"github.com/docker/go-plugins-helpers/ipam"
	"github.com/docker/go-plugins-helpers/network"
	"github.com/sirupsen/logrus"
)

// DefaultDeadline bounds every call. The engine waits for a plugin without
// a timeout of its own (managed plugins after install or daemon restart,
// legacy plugins always), so one stuck iptables lock or disk write would
// otherwise hang `docker run` and everything queued behind it.
const DefaultDeadline = 10 * time.Second

// Option configures NewHandler.
type Option func(*options)

type options struct{ deadline time.Duration }

// WithDeadline sets how long a call may take before mynet answers with an
// error; 0 means DefaultDeadline.
func WithDeadline(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.deadline = d
		}
	}
}

// undoFunc reverses a call that succeeded after its deadline, when the
// engine had already been told it failed and so will never clean it up.
type undoFunc func(body []byte, resp any) error

// bounded runs fn with a deadline. Past it, the caller gets an error at
// once while fn goes on; if fn then succeeds, undo reverses it, so a late
// success leaves nothing the engine does not know about (a veth, a lease,
// a rule). Calls without an undo are harmless to finish late (deletes,
// lookups, Join, which the engine follows with Leave and DeleteEndpoint).
func bounded(path string, deadline time.Duration, fn func([]byte) (any, error), undo undoFunc, log *logrus.Entry) func([]byte) (any, error) {
	type result struct {
		resp any
		err  error
	}
	return func(body []byte) (any, error) {
		done := make(chan result, 1)
		go func() {
			resp, err := fn(body)
			done <- result{resp, err}
		}()
		timer := time.NewTimer(deadline)
		defer timer.Stop()
		select {
		case r := <-done:
			return r.resp, r.err
		case <-timer.C:
		}
		l := log.WithFields(logrus.Fields{"call": path, "deadline": deadline.String()})
		l.Error("call exceeded its deadline; answered with an error, will undo it if it completes")
		go func() {
			r := <-done
			switch {
			case r.err != nil:
				l.WithError(r.err).Warn("late call failed; nothing to undo")
			case undo == nil:
				l.Info("late call finished")
			default:
				if err := undo(body, r.resp); err != nil {
					l.WithError(err).Error("undoing late call")
					return
				}
				l.Warn("late call finished and was undone")
			}
		}()
		return nil, fmt.Errorf("%s did not finish within %s (mynet is busy or the kernel is slow; see the plugin log); it will be undone if it completes", path, deadline)
	}
}

// undos are the reversals of the calls that create something.
func undos(d network.Driver, i ipam.Ipam) map[string]undoFunc {
	return map[string]undoFunc{
		"/NetworkDriver.CreateNetwork": func(body []byte, _ any) error {
			var r network.CreateNetworkRequest
			_ = json.Unmarshal(body, &r)
			return d.DeleteNetwork(&network.DeleteNetworkRequest{NetworkID: r.NetworkID})
		},
		"/NetworkDriver.CreateEndpoint": func(body []byte, _ any) error {
			var r network.CreateEndpointRequest
			_ = json.Unmarshal(body, &r)
			return d.DeleteEndpoint(&network.DeleteEndpointRequest{NetworkID: r.NetworkID, EndpointID: r.EndpointID})
		},
		"/NetworkDriver.ProgramExternalConnectivity": func(body []byte, _ any) error {
			var r network.ProgramExternalConnectivityRequest
			_ = json.Unmarshal(body, &r)
			return d.RevokeExternalConnectivity(&network.RevokeExternalConnectivityRequest{NetworkID: r.NetworkID, EndpointID: r.EndpointID})
		},
		"/IpamDriver.RequestPool": func(_ []byte, resp any) error {
			r, ok := resp.(*ipam.RequestPoolResponse)
			if !ok || r == nil {
				return nil
			}
			return i.ReleasePool(&ipam.ReleasePoolRequest{PoolID: r.PoolID})
		},
		"/IpamDriver.RequestAddress": func(body []byte, resp any) error {
			var req ipam.RequestAddressRequest
			_ = json.Unmarshal(body, &req)
			r, ok := resp.(*ipam.RequestAddressResponse)
			if !ok || r == nil {
				return nil
			}
			p, err := netip.ParsePrefix(r.Address)
			if err != nil {
				return err
			}
			return i.ReleaseAddress(&ipam.ReleaseAddressRequest{PoolID: req.PoolID, Address: p.Addr().String()})
		},
	}
}
