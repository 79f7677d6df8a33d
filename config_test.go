package main

import (
	"errors"
	"testing"

	"github.com/mynet/mynet/driver"
)

// The instance name defaults to the socket's file name, the name the
// engine knows the plugin by; a name mynet cannot write into aliases and
// comments is refused before anything starts.
func TestParseConfigInstance(t *testing.T) {
	t.Setenv("MYNET_INSTANCE", "")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "mynet"},
		{[]string{"--socket", "/run/docker/plugins/mynet-swarm.sock"}, "mynet-swarm"},
		{[]string{"--socket", "/tmp/x.sock", "--instance", "blue"}, "blue"},
	} {
		c, err := parseConfig(tc.args)
		if err != nil || c.instance != tc.want {
			t.Errorf("parseConfig(%q): instance %q, %v; want %q", tc.args, c.instance, err, tc.want)
		}
	}
	for _, args := range [][]string{{"--instance", "Blue"}, {"--socket", "/tmp/My_Net.sock"}} {
		if _, err := parseConfig(args); !errors.Is(err, driver.ErrInstanceName) {
			t.Errorf("parseConfig(%q) = %v, want ErrInstanceName", args, err)
		}
	}
	t.Setenv("MYNET_INSTANCE", "green")
	if c, err := parseConfig(nil); err != nil || c.instance != "green" {
		t.Errorf("MYNET_INSTANCE: %q, %v", c.instance, err)
	}
}
