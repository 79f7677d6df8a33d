package cli

import (
	"io"
	"os"
	"path/filepath"
	"testing"
)

// MYNET_DOCKER="" means what the help says: no docker CLI. Before, an
// empty value fell back to "docker", so `MYNET_DOCKER= mynet ports web`
// still ran docker and resolved names.
func TestMynetDockerEmpty(t *testing.T) {
	dir := t.TempDir()
	calls := filepath.Join(dir, "calls")
	fake := "#!/bin/sh\necho \"$@\" >> " + calls + "\nexit 1\n"
	if err := os.WriteFile(filepath.Join(dir, "docker"), []byte(fake), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))

	t.Setenv("MYNET_DOCKER", "")
	o, err := parseAttach([]string{"n1", "vm1"}, io.Discard)
	if err != nil || o.docker != "" {
		t.Errorf("attach with MYNET_DOCKER=\"\": docker %q, %v; want none", o.docker, err)
	}
	portsMain([]string{"--socket", filepath.Join(dir, "none.sock"), "web"}, io.Discard, io.Discard)
	if _, err := os.Stat(calls); err == nil {
		raw, _ := os.ReadFile(calls)
		t.Errorf("mynet ports ran docker with MYNET_DOCKER=\"\": %s", raw)
	}
	if _, err := (dockerCLI{o.docker}).network(t.Context(), "n1"); err == nil {
		t.Error("resolving a network without a docker CLI: no error")
	}

	os.Unsetenv("MYNET_DOCKER")
	if o, _ := parseAttach([]string{"n1", "vm1"}, io.Discard); o.docker != "docker" {
		t.Errorf("attach without MYNET_DOCKER: docker %q, want docker", o.docker)
	}
	t.Setenv("MYNET_DOCKER", "/opt/docker")
	if o, _ := parseAttach([]string{"n1", "vm1"}, io.Discard); o.docker != "/opt/docker" {
		t.Errorf("attach with MYNET_DOCKER=/opt/docker: docker %q", o.docker)
	}
}
