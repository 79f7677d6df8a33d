package cli

import (
	"context"
	"strings"
	"testing"
)

// Every subcommand finds the socket one way: --socket, the network's
// driver, --driver, the bare binary's socket, the managed mynet:latest's.
func TestSocketFor(t *testing.T) {
	ctx := context.Background()
	id := strings.Repeat("cd", 32)
	managed := fakeDocker(t, id+" true mynet.sock", "")
	for _, c := range []struct {
		name   string
		flags  commonFlags
		driver string
		want   string
	}{
		{"--socket wins", commonFlags{socket: "/x.sock", driver: "mynet:latest", docker: managed}, "other:latest", "/x.sock"},
		{"the network's driver", commonFlags{docker: managed}, "mynet:latest", "/run/docker/plugins/" + id + "/mynet.sock"},
		{"--driver", commonFlags{driver: "mynet:latest", docker: managed}, "", "/run/docker/plugins/" + id + "/mynet.sock"},
	} {
		got, err := c.flags.socketFor(ctx, c.driver)
		if err != nil || got != c.want {
			t.Errorf("%s: %q, %v; want %q", c.name, got, err, c.want)
		}
	}
	if exists(bareSocket) {
		t.Skipf("%s exists here: the default is the bare binary's", bareSocket)
	}
	got, err := (&commonFlags{docker: managed}).socketFor(ctx, "")
	if err != nil || got != "/run/docker/plugins/"+id+"/mynet.sock" {
		t.Errorf("default without the bare socket: %q, %v; want the managed plugin's", got, err)
	}
	// mynet ports looks there too (it used to know only the legacy socket).
	var out, errOut strings.Builder
	portsMain([]string{"--docker", managed}, &out, &errOut)
	if !strings.Contains(errOut.String(), "/run/docker/plugins/"+id+"/mynet.sock") {
		t.Errorf("mynet ports asked elsewhere: %s", errOut.String())
	}
	_, err = (&commonFlags{docker: fakeDocker(t, "", "plugin mynet:latest not found")}).socketFor(ctx, "")
	if err == nil || !strings.Contains(err.Error(), "--socket names mynet's socket") {
		t.Errorf("neither socket: %v, want advice to use --socket", err)
	}
}
