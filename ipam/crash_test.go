package ipam

import (
	"bufio"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"testing"
	"time"

	api "github.com/docker/go-plugins-helpers/ipam"

	"github.com/mynet/mynet/store"
)

// Environment of the child process of TestKillMidBurst.
const (
	crashDirEnv  = "MYNET_IPAM_CRASH_DIR"
	crashPoolEnv = "MYNET_IPAM_CRASH_POOL"
)

// TestKillMidBurst kills (SIGKILL) a process in the middle of 50
// concurrent RequestAddress calls on a real state file. Every address it
// printed, which it does only once its call returned, must be leased after
// a reopen, and none twice: writes shared between callers must not answer
// before their transaction is on disk.
func TestKillMidBurst(t *testing.T) {
	if dir := os.Getenv(crashDirEnv); dir != "" {
		allocateUntilKilled(t, dir, os.Getenv(crashPoolEnv))
		return
	}
	dir := t.TempDir()
	st, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	id := requestPool(t, newTestIPAM(t, st, Config{}), "10.0.0.0/16", "", false).PoolID
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	printed := runAndKill(t, dir, id, 3000)
	st, err = store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	p := newTestIPAM(t, st, Config{}).pools[id]
	seen := map[netip.Addr]bool{}
	for _, a := range printed {
		if seen[a] {
			t.Fatalf("%s handed out twice", a)
		}
		seen[a] = true
		if !p.leased(a) {
			t.Fatalf("%s was handed out but is not leased after the kill", a)
		}
	}
	t.Logf("%d addresses handed out before the kill, %d leased after it", len(printed), p.leases())
}

// runAndKill starts the child, kills it once it printed n addresses, and
// returns every address it printed.
func runAndKill(t *testing.T, dir, poolID string, n int) []netip.Addr {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestKillMidBurst$")
	cmd.Env = append(os.Environ(), crashDirEnv+"="+dir, crashPoolEnv+"="+poolID)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// A child stuck before n addresses is killed by the bound instead.
	timer := time.AfterFunc(60*time.Second, func() { _ = cmd.Process.Kill() })
	defer timer.Stop()
	var addrs []netip.Addr
	lines := bufio.NewScanner(out)
	for lines.Scan() {
		a, err := netip.ParseAddr(lines.Text())
		if err != nil {
			t.Fatalf("child printed %q", lines.Text())
		}
		if addrs = append(addrs, a); len(addrs) == n {
			_ = cmd.Process.Kill() // SIGKILL; lines already in the pipe are still read
		}
	}
	_ = cmd.Wait()
	if len(addrs) < n {
		t.Fatalf("child printed %d addresses, want at least %d before the kill", len(addrs), n)
	}
	return addrs
}

// allocateUntilKilled is the child: 50 callers allocating until killed,
// each printing its address in one write once RequestAddress returned.
func allocateUntilKilled(t *testing.T, dir, poolID string) {
	st, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	m := newTestIPAM(t, st, Config{})
	errs := make(chan error)
	for range 50 {
		go func() {
			req := &api.RequestAddressRequest{PoolID: poolID}
			for {
				res, err := m.RequestAddress(req)
				if err != nil {
					errs <- err
					return
				}
				fmt.Fprintln(os.Stdout, netip.MustParsePrefix(res.Address).Addr())
			}
		}()
	}
	t.Fatal(<-errs)
}
