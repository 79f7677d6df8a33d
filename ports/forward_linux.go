package ports

// The in-process forwarder: what the kernel cannot DNAT.
//
// IPv6 has no route_localnet: a connection from ::1 DNATed to a container
// would have to leave lo with a loopback source, which the kernel drops.
// And an IPv6 host address of a container that has no IPv6 address has
// nothing to DNAT to. Docker's bridge driver covers both with its userland
// proxy, one process per port; mynet serves them in its own process: the
// socket that holds the host port becomes the forwarder's listening (TCP)
// or receiving (UDP) socket, and each client gets its own connection to
// the container. DNAT happens before the socket lookup, so on a :: port
// of a container with IPv6 only ::1 clients ever reach the forwarder; on
// the normal path it costs nothing.
//
// A forwarder is a hold: closing it (when the driver unpublishes) closes
// the listening socket, which releases the port, and every live
// connection, and waits for its goroutines.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/mynet/mynet/firewall"
)

const (
	// forwardBacklog is the listen backlog of a forwarded TCP port.
	forwardBacklog = 128
	// forwardDialTimeout bounds the connection to the container; a
	// container that does not answer by then costs the client a close.
	forwardDialTimeout = 5 * time.Second
	// maxUDPFlows bounds a UDP port's client table (each flow is a socket):
	// datagrams of new clients beyond it are dropped until flows expire.
	maxUDPFlows = 1024
)

// udpFlowIdle is how long a UDP flow lives without traffic either way,
// like conntrack's UDP stream timeout; a variable for tests.
var udpFlowIdle = 60 * time.Second

// dialContainer opens the forwarder's connections to containers. A
// variable so that kernel tests, whose containers live in a namespace
// only their own thread is in, can dial there.
var dialContainer = (&net.Dialer{}).DialContext

// Forward replaces the holds of forwarded host ports (those in targets,
// each with the container address and port it goes to) by forwarders on
// the same sockets. A forwarder that cannot start is logged and its port
// stays held: the DNATed traffic, if any, still works. Holds that are not
// SocketReserver's (a fake kernel) are left as they are.
func Forward(log *logrus.Entry, holds []io.Closer, targets map[HostPort]netip.AddrPort) []io.Closer {
	if len(targets) == 0 {
		return holds
	}
	out := make([]io.Closer, len(holds))
	for i, h := range holds {
		out[i] = forwardHold(log, h, targets)
	}
	return out
}

func forwardHold(log *logrus.Entry, h io.Closer, targets map[HostPort]netip.AddrPort) io.Closer {
	switch h := h.(type) {
	case pairHold:
		return pairHold{forwardHold(log, h[0], targets), forwardHold(log, h[1], targets)}
	case socketHold:
		target, ok := targets[HostPort{h.proto, h.ip, h.port}]
		if !ok {
			return h
		}
		f, err := startForward(log, h, target)
		if err != nil {
			log.WithError(err).WithField("port", h.port).Warn("starting the forwarder; the port stays held")
			return h
		}
		_ = h.Close() // the forwarder has its own descriptor of the socket
		return f
	}
	return h
}

// forwarder serves one held host port.
type forwarder struct {
	log    *logrus.Entry
	target netip.AddrPort
	idle   time.Duration // udpFlowIdle at start
	dial   func(ctx context.Context, network, address string) (net.Conn, error)
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	sock   io.Closer // the listener or the packet socket

	// mu guards conns, the live connections (TCP both ends, UDP flows'
	// sockets), which Close closes.
	mu    sync.Mutex
	conns map[io.Closer]struct{}
}

// startForward makes h's socket serve target: TCP listens on it, UDP
// reads from it. h stays open; the forwarder works on a duplicate.
func startForward(log *logrus.Entry, h socketHold, target netip.AddrPort) (_ *forwarder, retErr error) {
	f := &forwarder{log: log.WithFields(logrus.Fields{"port": h.port, "proto": h.proto, "host_ip": h.ip.String(), "target": target.String()}),
		target: target, idle: udpFlowIdle, dial: dialContainer, conns: map[io.Closer]struct{}{}}
	f.ctx, f.cancel = context.WithCancel(context.Background())
	defer func() {
		if retErr != nil {
			f.cancel()
		}
	}()
	switch h.proto {
	case firewall.ProtoTCP:
		// SO_REUSEADDR on the listener passes to its connections, whose
		// TIME_WAIT then lets a later hold of the port bind (see
		// SocketReserver.Reserve); a listening socket conflicts with
		// every other bind regardless.
		if err := unix.SetsockoptInt(h.fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
			return nil, fmt.Errorf("SO_REUSEADDR on [%s]:%d/tcp: %w", h.ip, h.port, err)
		}
		if err := unix.Listen(h.fd, forwardBacklog); err != nil {
			return nil, fmt.Errorf("listening on [%s]:%d/tcp: %w", h.ip, h.port, err)
		}
		ln, err := fileSocket(h.fd, net.FileListener)
		if err != nil {
			return nil, err
		}
		f.sock = ln
		f.wg.Go(func() { f.acceptLoop(ln.(*net.TCPListener)) })
	case firewall.ProtoUDP:
		if h.ip.IsUnspecified() {
			// Answers must leave from the address the client sent to;
			// on a host with several, the kernel's own choice may
			// differ, and the client would drop them.
			if err := unix.SetsockoptInt(h.fd, unix.IPPROTO_IPV6, unix.IPV6_RECVPKTINFO, 1); err != nil {
				return nil, fmt.Errorf("IPV6_RECVPKTINFO on [%s]:%d/udp: %w", h.ip, h.port, err)
			}
		}
		pc, err := fileSocket(h.fd, net.FilePacketConn)
		if err != nil {
			return nil, err
		}
		f.sock = pc
		f.wg.Go(func() { f.udpLoop(pc.(*net.UDPConn)) })
	default:
		return nil, fmt.Errorf("forwarding %s: only tcp and udp are forwarded", h.proto)
	}
	f.log.Debug("forwarder started")
	return f, nil
}

// fileSocket turns a duplicate of fd into a Go socket, which the runtime
// poller can wake when Close closes it.
func fileSocket[T any](fd int, fn func(*os.File) (T, error)) (T, error) {
	var zero T
	dup, err := unix.Dup(fd)
	if err != nil {
		return zero, fmt.Errorf("duplicating the port's socket: %w", err)
	}
	file := os.NewFile(uintptr(dup), "mynet-forward")
	defer file.Close() // fn made its own duplicate
	s, err := fn(file)
	if err != nil {
		return zero, fmt.Errorf("using the port's socket: %w", err)
	}
	return s, nil
}

// Close stops the forwarder: the socket (and with it the port), then
// every live connection, and waits for its goroutines.
func (f *forwarder) Close() error {
	f.cancel()
	err := f.sock.Close()
	f.mu.Lock()
	for c := range f.conns {
		_ = c.Close()
	}
	f.mu.Unlock()
	f.wg.Wait()
	f.log.Debug("forwarder stopped")
	return err
}

// track adds c to the live connections, or closes it and returns false
// if the forwarder is closing.
func (f *forwarder) track(c io.Closer) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ctx.Err() != nil {
		_ = c.Close()
		return false
	}
	f.conns[c] = struct{}{}
	return true
}

func (f *forwarder) untrack(c io.Closer) {
	f.mu.Lock()
	delete(f.conns, c)
	f.mu.Unlock()
	_ = c.Close()
}

func (f *forwarder) acceptLoop(ln *net.TCPListener) {
	for {
		c, err := ln.AcceptTCP()
		if err != nil {
			if f.ctx.Err() == nil && !errors.Is(err, net.ErrClosed) {
				f.log.WithError(err).Warn("forwarder stopped accepting")
			}
			return
		}
		if !f.track(c) {
			return
		}
		f.wg.Go(func() { f.serveTCP(c) })
	}
}

// serveTCP connects client to the container and copies both ways until
// both are done. Each direction ends with a half-close (CloseWrite) of
// the other side, so a client that shuts down its sending side still
// gets the whole answer; an error in either direction closes both.
// io.Copy between two *net.TCPConn splices in the kernel.
func (f *forwarder) serveTCP(client *net.TCPConn) {
	defer f.untrack(client)
	ctx, cancel := context.WithTimeout(f.ctx, forwardDialTimeout)
	c, err := f.dial(ctx, "tcp", f.target.String())
	cancel()
	if err != nil {
		f.log.WithError(err).Debug("forwarder could not reach the container")
		return
	}
	upstream := c.(*net.TCPConn)
	if !f.track(upstream) {
		return
	}
	defer f.untrack(upstream)
	var wg sync.WaitGroup
	wg.Go(func() { pipe(upstream, client) })
	pipe(client, upstream)
	wg.Wait()
}

// pipe copies src to dst, then half-closes dst; on an error it closes
// both, so the other direction ends too.
func pipe(dst, src *net.TCPConn) {
	if _, err := io.Copy(dst, src); err != nil {
		_ = dst.Close()
		_ = src.Close()
		return
	}
	_ = dst.CloseWrite()
}

// udpFlow is one UDP client of a forwarded port: its own connected socket
// to the container, whose answers go back to the client from the address
// it sent to (oob, an IPV6_PKTINFO message; empty for a port on one
// address).
type udpFlow struct {
	up   *net.UDPConn
	oob  []byte
	last atomic.Int64 // unix nanoseconds of the last datagram either way
}

func (fl *udpFlow) touch() { fl.last.Store(time.Now().UnixNano()) }

func (f *forwarder) udpLoop(pc *net.UDPConn) {
	var mu sync.Mutex // guards flows
	flows := map[netip.AddrPort]*udpFlow{}
	buf := make([]byte, 64<<10)
	oob := make([]byte, unix.CmsgSpace(unix.SizeofInet6Pktinfo))
	for {
		n, oobn, _, client, err := pc.ReadMsgUDPAddrPort(buf, oob)
		if err != nil {
			if f.ctx.Err() == nil && !errors.Is(err, net.ErrClosed) {
				f.log.WithError(err).Warn("forwarder stopped receiving")
			}
			return
		}
		mu.Lock()
		fl, ok := flows[client]
		if !ok && len(flows) < maxUDPFlows {
			fl = f.newUDPFlow(pc, client, replyFrom(oob[:oobn]), func() {
				mu.Lock()
				delete(flows, client)
				mu.Unlock()
			})
			if fl != nil {
				flows[client] = fl
			}
		}
		mu.Unlock()
		if fl == nil {
			continue // no room, or the container is unreachable: drop, as a full conntrack table would
		}
		fl.touch()
		_, _ = fl.up.Write(buf[:n]) // UDP: a lost datagram is the client's to resend
	}
}

// replyFrom turns the destination address of a received datagram
// (IPV6_PKTINFO) into the control message that makes answers leave from
// it; nil when there is none.
func replyFrom(oob []byte) []byte {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil
	}
	for _, m := range msgs {
		if m.Header.Level == unix.IPPROTO_IPV6 && m.Header.Type == unix.IPV6_PKTINFO && len(m.Data) >= unix.SizeofInet6Pktinfo {
			var info unix.Inet6Pktinfo
			copy(info.Addr[:], m.Data[:16]) // struct in6_pktinfo starts with the address; the interface is left to routing
			return unix.PktInfo6(&info)
		}
	}
	return nil
}

// newUDPFlow opens client's socket to the container and starts relaying
// the answers; done runs when the flow ends (idle, or the forwarder
// closes).
func (f *forwarder) newUDPFlow(pc *net.UDPConn, client netip.AddrPort, oob []byte, done func()) *udpFlow {
	c, err := f.dial(f.ctx, "udp", f.target.String())
	if err != nil {
		f.log.WithError(err).Debug("forwarder could not open a UDP flow to the container")
		return nil
	}
	up := c.(*net.UDPConn)
	if !f.track(up) {
		return nil
	}
	fl := &udpFlow{up: up, oob: oob}
	fl.touch()
	f.wg.Go(func() {
		defer done()
		defer f.untrack(up)
		buf := make([]byte, 64<<10)
		for {
			_ = up.SetReadDeadline(time.Now().Add(f.idle))
			n, err := up.Read(buf)
			var ne net.Error
			switch {
			case errors.As(err, &ne) && ne.Timeout():
				if time.Since(time.Unix(0, fl.last.Load())) >= f.idle {
					return
				}
				continue
			case errors.Is(err, unix.ECONNREFUSED):
				continue // nothing listens in the container yet; the client may retry
			case err != nil:
				return
			}
			fl.touch()
			_, _, _ = pc.WriteMsgUDPAddrPort(buf[:n], fl.oob, client)
		}
	})
	return fl
}
