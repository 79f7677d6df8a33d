// Command udpecho is a static UDP helper for the end-to-end tests, which
// the busybox image lacks: `udpecho serve ADDR` answers every datagram
// with "echo:" and the payload (ADDR "[::]:53" for both families); `udpecho ask [-from PORT] ADDR MSG` sends
// MSG and prints the answer, failing after two seconds of silence.
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"strings"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fail("usage: udpecho serve ADDR | udpecho ask [-from PORT] ADDR MSG")
	}
	switch os.Args[1] {
	case "serve":
		serve(os.Args[2])
	case "ask":
		fs := flag.NewFlagSet("ask", flag.ExitOnError)
		from := fs.Int("from", 0, "local port to send from")
		_ = fs.Parse(os.Args[2:])
		ask(*from, fs.Arg(0), fs.Arg(1))
	default:
		fail("unknown command " + os.Args[1])
	}
}

// family is "udp6" for an IPv6 ADDR ("[::]:53"), else "udp4".
func family(addr string) string {
	if strings.HasPrefix(addr, "[") {
		return "udp6"
	}
	return "udp4"
}

func serve(addr string) {
	network := family(addr)
	if network == "udp6" {
		network = "udp" // "[::]:53" serves both families
	}
	pc, err := net.ListenPacket(network, addr)
	if err != nil {
		fail(err.Error())
	}
	buf := make([]byte, 1500)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			fail(err.Error())
		}
		_, _ = pc.WriteTo(append([]byte("echo:"), buf[:n]...), from)
	}
}

func ask(from int, addr, msg string) {
	to, err := net.ResolveUDPAddr(family(addr), addr)
	if err != nil {
		fail(err.Error())
	}
	// Unconnected: a "port unreachable" for an earlier datagram does not
	// turn this one into an error.
	pc, err := net.ListenUDP(family(addr), &net.UDPAddr{Port: from})
	if err != nil {
		fail(err.Error())
	}
	if _, err := pc.WriteTo([]byte(msg), to); err != nil {
		fail(err.Error())
	}
	_ = pc.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 1500)
	n, _, err := pc.ReadFrom(buf)
	if err != nil {
		fail(err.Error())
	}
	fmt.Println(string(buf[:n]))
}

func fail(msg string) {
	fmt.Fprintln(os.Stderr, "udpecho:", msg)
	os.Exit(1)
}
