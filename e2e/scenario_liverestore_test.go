//go:build e2e

package e2e

import (
	"regexp"
	"testing"

	"github.com/mynet/mynet/e2e/harness"
)

// TestEngineRestartLiveRestore restarts the engine with live-restore on:
// containers keep running through it and the engine restores their
// endpoints without asking the driver anything. Networking (by name, to
// the outside, a published port) must keep working, also after mynet
// itself restarts meanwhile, and a new container must not get an address
// already in use.
func TestEngineRestartLiveRestore(t *testing.T) {
	e := harness.Shared()
	harness.UsePlugin(t)
	e.Engine.Config = map[string]any{"live-restore": true}
	e.RestartEngine(t) // now with live-restore
	t.Cleanup(func() {
		e.Engine.Config = nil
		e.RestartEngine(t)
	})
	const (
		net = "mynet-e2e-live"
		web = "e2e-live-web"
	)
	harness.CreateMynet(t, net, "--subnet", "10.72.0.0/24")
	harness.StartWeb(t, web, net, "-p", "80")
	webIP := harness.ContainerIP(t, web, net)
	m := regexp.MustCompile(`80/tcp -> 0\.0\.0\.0:(\d+)`).FindStringSubmatch(mynetPorts(t, web))
	if m == nil {
		t.Fatalf("no published port for %s", web)
	}
	pid := harness.Docker(t, "inspect", "-f", "{{.State.Pid}}", web)

	e.RestartEngine(t)
	e.RestartPlugin(t)
	if got := harness.Docker(t, "inspect", "-f", "{{.State.Pid}}", web); got != pid {
		t.Fatalf("%s was restarted (pid %s, was %s): live-restore did not keep it", web, got, pid)
	}
	if got := harness.IfaceAddr(t, web, "eth0").Addr(); got != webIP {
		t.Errorf("%s: eth0 has %v, want %v", web, got, webIP)
	}
	harness.MustContain(t, "ext page from the live-restored container", harness.ExecIn(t, web, harness.HTTPGet(harness.ExtURL)...), harness.ExtPage)
	portsMustFetch(t, e.Layout.ExtNS, "http://198.18.0.1:"+m[1]+"/", harness.WebPage)

	harness.StartSleeper(t, "e2e-live-new", net)
	if ip := harness.ContainerIP(t, "e2e-live-new", net); ip == webIP {
		t.Errorf("new container got %v, already held by %s", ip, web)
	}
	harness.MustContain(t, "web page by name", harness.ExecIn(t, "e2e-live-new", harness.HTTPGet("http://"+web+"/")...), harness.WebPage)
}
