//go:build e2e

package e2e

import (
	"regexp"
	"testing"
)

// TestEngineRestartLiveRestore restarts the engine with live-restore on:
// containers keep running through it and the engine restores their
// endpoints without asking the driver anything. Networking (by name, to
// the outside, a published port) must keep working, also after mynet
// itself restarts meanwhile, and a new container must not get an address
// already in use.
func TestEngineRestartLiveRestore(t *testing.T) {
	e := env
	usePlugin(t)
	e.engine.config = map[string]any{"live-restore": true}
	e.RestartEngine(t) // now with live-restore
	t.Cleanup(func() {
		e.engine.config = nil
		e.RestartEngine(t)
	})
	const (
		net = "mynet-e2e-live"
		web = "e2e-live-web"
	)
	createMynet(t, net, "--subnet", "10.72.0.0/24")
	startWeb(t, web, net, "-p", "80")
	webIP := containerIP(t, web, net)
	m := regexp.MustCompile(`80/tcp -> 0\.0\.0\.0:(\d+)`).FindStringSubmatch(mynetPorts(t, web))
	if m == nil {
		t.Fatalf("no published port for %s", web)
	}
	pid := docker(t, "inspect", "-f", "{{.State.Pid}}", web)

	e.RestartEngine(t)
	e.RestartPlugin(t)
	if got := docker(t, "inspect", "-f", "{{.State.Pid}}", web); got != pid {
		t.Fatalf("%s was restarted (pid %s, was %s): live-restore did not keep it", web, got, pid)
	}
	if got := ifaceAddr(t, web, "eth0").Addr(); got != webIP {
		t.Errorf("%s: eth0 has %v, want %v", web, got, webIP)
	}
	mustContain(t, "ext page from the live-restored container", execIn(t, web, httpGet(extURL)...), extPage)
	portsMustFetch(t, e.lay.extNS, "http://198.18.0.1:"+m[1]+"/", webPage)

	startSleeper(t, "e2e-live-new", net)
	if ip := containerIP(t, "e2e-live-new", net); ip == webIP {
		t.Errorf("new container got %v, already held by %s", ip, web)
	}
	mustContain(t, "web page by name", execIn(t, "e2e-live-new", httpGet("http://"+web+"/")...), webPage)
}
