//go:build e2e

package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestManagedInstall: the README's set-up command builds the plugin folder
// and installs mynet:latest into the engine; the engine starts it from
// config.json (no /Plugin.Activate), and mynet picks the iptables backend
// holding the engine's Docker chains.
func TestManagedInstall(t *testing.T) {
	name := useManaged(t)
	id := ManagedID(t)
	if id == "" {
		t.Fatalf("%s not installed", name)
	}
	var cfg struct {
		Enabled bool
		Config  struct {
			Interface struct {
				Types  []string
				Socket string
			}
			Network struct{ Type string }
			Linux   struct{ Capabilities []string }
		}
		Settings struct {
			Env    []string
			Mounts []struct{ Name, Source, Destination string }
		}
	}
	out := docker(t, "plugin", "inspect", "-f", "{{json .}}", name)
	if err := json.Unmarshal([]byte(out), &cfg); err != nil {
		t.Fatalf("plugin inspect: %v\n%s", err, out)
	}
	if !cfg.Enabled {
		t.Errorf("%s is not enabled", name)
	}
	if got := strings.Join(cfg.Config.Interface.Types, ","); got != "docker.networkdriver/1.0,docker.ipamdriver/1.0" {
		t.Errorf("interface types %s", got)
	}
	if got := strings.Join(cfg.Config.Linux.Capabilities, ","); got != "CAP_NET_ADMIN" {
		t.Errorf("capabilities %s, want CAP_NET_ADMIN only", got)
	}
	stateMounted := false
	for _, m := range cfg.Settings.Mounts {
		if m.Name == "state" && m.Source == env.lay.managedStateDir() && m.Destination == "/var/lib/mynet" {
			stateMounted = true
		}
	}
	if !stateMounted {
		t.Errorf("state mount not set to %s: %+v", env.lay.managedStateDir(), cfg.Settings.Mounts)
	}

	ManagedSettled(t, id, 0, "mynet serving")
	log := ManagedLog(id)
	mustContain(t, "plugin log: backend choice", log, "iptables backend selected")
	mustContain(t, "plugin log: backend follows Docker", log, "Docker's chains are in nf_tables")
	if _, err := os.Stat(filepath.Join(env.lay.managedStateDir(), "state.db")); err != nil {
		t.Errorf("state.db not in the host state directory: %v", err)
	}
	t.Logf("plugin %s; log:\n%s", short(id), tailString(log, 10))
}
