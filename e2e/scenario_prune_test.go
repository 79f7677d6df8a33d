//go:build e2e

package e2e

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/mynet/mynet/e2e/harness"
)

// `mynet prune` (issue 14): a network and containers removed while mynet
// is down are forgotten by the engine and kept by mynet; after the
// restart `mynet ls` marks them stale, the subnet's error names the fix,
// and `mynet prune -f` removes them as the engine would have, after which
// the subnet, the addresses and the host ports work again. Subnets
// 10.161-10.164, host ports 18971-18974.

// pruneCase is one run of the scenario: names, addresses, and how mynet
// is stopped and started.
type pruneCase struct {
	gone, kept, again string // networks: removed while down, kept, re-created
	subGone, subKept  string // first three octets of their /24 subnets
	portGone          string // host port of the container on gone
	portKept          string // host port of the container on kept
	stop, start       func(t *testing.T)
}

// pruneMinAge is the driver's: records younger are never pruned.
const pruneMinAge = 15 * time.Second

func TestPrune(t *testing.T) {
	harness.UsePlugin(t)
	runPrune(t, pruneCase{gone: "mynet-e2e-prg", kept: "mynet-e2e-prk", again: "mynet-e2e-pra",
		subGone: "10.161.0", subKept: "10.162.0", portGone: "18971", portKept: "18972",
		stop: func(t *testing.T) { harness.Shared().StopPlugin(t) }, start: func(t *testing.T) { harness.Shared().StartPlugin(t) }})
}

// TestManagedPrune: the same with the managed plugin, stopped with
// `docker plugin disable -f` (the engine then forgets what is removed
// meanwhile just the same); the CLI finds its socket with --driver.
func TestManagedPrune(t *testing.T) {
	harness.WithManagedDriver(t)
	runPrune(t, pruneCase{gone: "mynet-e2e-mprg", kept: "mynet-e2e-mprk", again: "mynet-e2e-mpra",
		subGone: "10.163.0", subKept: "10.164.0", portGone: "18973", portKept: "18974",
		stop: func(t *testing.T) {
			harness.Docker(t, "plugin", "disable", "-f", harness.ManagedName)
			t.Cleanup(func() { ensureManagedEnabled(t) }) // before the networks' removal
		},
		start: func(t *testing.T) {
			off := harness.FileSize(harness.Shared().Layout.DockerdLog())
			harness.Docker(t, "plugin", "enable", harness.ManagedName)
			harness.ManagedSettled(t, harness.ManagedID(t), off, "mynet serving")
		}})
}

func runPrune(t *testing.T, c pruneCase) {
	p := harness.Shared().Plugin()
	subGone, subKept := netip.MustParsePrefix(c.subGone+".0/24"), netip.MustParsePrefix(c.subKept+".0/24")
	harness.CreateMynet(t, c.gone, "--subnet", subGone.String())
	harness.CreateMynet(t, c.kept, "--subnet", subKept.String())
	web1, web2 := c.gone+"-web", c.kept+"-web"
	harness.StartWeb(t, web1, c.gone, "--ip", c.subGone+".10", "-p", c.portGone+":80")
	harness.StartWeb(t, web2, c.kept, "--ip", c.subKept+".10", "-p", c.portKept+":80")
	made := time.Now()
	goneID := harness.Docker(t, "network", "inspect", "-f", "{{.Id}}", c.gone)
	br := harness.BridgeWithAddr(t, c.subGone+".1/24")
	if br == "" {
		t.Fatalf("no bridge with %s.1/24", c.subGone)
	}

	c.stop(t)
	harness.Docker(t, "rm", "-f", web1, web2)
	harness.Docker(t, "network", "rm", c.gone)
	c.start(t)

	t.Run("ls marks stale", func(t *testing.T) {
		out := mustMynet(t, "ls", "--driver", p)
		harness.MustContain(t, "mynet ls", out, "stale network "+harness.Short(goneID)+" (bridge "+br+", "+subGone.String()+"): the engine no longer has this network")
		harness.MustContain(t, "mynet ls", out, `"mynet prune" removes them`)
		// The endpoints, unless the plugin's own reaper got them first.
		for _, addr := range []string{c.subGone + ".10/24", c.subKept + ".10/24"} {
			for _, l := range strings.Split(out, "\n") {
				if strings.Contains(l, addr) && !strings.Contains(l, "(stale)") {
					t.Errorf("endpoint of a removed container not marked stale: %s", l)
				}
			}
		}
	})
	t.Run("errors name prune", func(t *testing.T) {
		msg := harness.MustFail(t, "network create over the forgotten network's subnet", harness.CreateMynetErr(t, c.again, "--subnet", subGone.String()))
		harness.MustContain(t, "the refusal", msg, "subnet "+subGone.String()+" is already used by mynet network "+harness.Short(goneID))
		harness.MustContain(t, "the refusal", msg, `run "mynet prune"`)
		// The address and the host port of the removed containers, unless
		// the plugin's own reaper freed them first.
		if err := dockerRunIP(c.kept, c.subKept+".10"); err != nil {
			t.Logf("--ip refused as expected: %v", err)
			harness.MustContain(t, "--ip of a removed container", err.Error(), `already in use in pool `+subKept.String()+`; if the engine no longer has the container that had it (removed while mynet was down), run "mynet prune"`)
		} else {
			t.Log("--ip of the removed container accepted: the reaper freed it already")
		}
		if _, err := harness.DockerErr("run", "--rm", "--network", c.kept, "-p", c.portGone+":80", harness.Image, "true"); err != nil {
			t.Logf("-p refused as expected: %v", err)
			harness.MustContain(t, "-p of a removed container's port", err.Error(), `is already in use, by mynet endpoint`)
			harness.MustContain(t, "-p of a removed container's port", err.Error(), `run "mynet prune"`)
		} else {
			t.Log("-p of the removed container's port accepted: the reaper freed it already")
		}
	})

	// Records younger than the driver's bound are left alone; the
	// engine's retries while mynet was down took longer than that, but a
	// fast machine may not have.
	if wait := pruneMinAge + time.Second - time.Since(made); wait > 0 {
		time.Sleep(wait)
	}
	out := mustMynet(t, "prune", "-f", "--driver", p)
	harness.MustContain(t, "mynet prune", out, "removed network "+harness.Short(goneID))
	harness.MustContain(t, "mynet prune", out, "released pool "+subGone.String())
	if strings.Contains(out, "kept ") {
		t.Errorf("prune kept records:\n%s", out)
	}
	harness.AssertNetworkGone(t, br, c.subGone+".1/24", subGone)
	if r := portsDNATRules(t, c.subKept+".10"); len(r) > 0 {
		t.Errorf("DNAT rules to the removed container on %s left: %v", c.kept, r)
	}
	if out := mustMynet(t, "ls", "--driver", p); strings.Contains(out, "stale") {
		t.Errorf("stale records left after prune:\n%s", out)
	}
	harness.MustContain(t, "a second prune", mustMynet(t, "prune", "-f", "--driver", p), "nothing to prune")

	t.Run("subnet, addresses and ports work again", func(t *testing.T) {
		harness.CreateMynet(t, c.again, "--subnet", subGone.String())
		harness.StartWeb(t, c.again+"-web", c.again, "--ip", c.subGone+".10", "-p", c.portGone+":80")
		harness.StartWeb(t, c.kept+"-web2", c.kept, "--ip", c.subKept+".10", "-p", c.portKept+":80")
		portsMustFetch(t, harness.ExtNS(), "http://"+harness.EngineAddr+":"+c.portGone+"/", harness.WebPage)
		portsMustFetch(t, harness.ExtNS(), "http://"+harness.EngineAddr+":"+c.portKept+"/", harness.WebPage)
	})
}
