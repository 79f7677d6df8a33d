//go:build e2e

package harness

import (
	"bufio"
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// engineBins says how to run one engine flavour: which dockerd, with which
// PATH (dockerd finds containerd, containerd-shim-runc-v2, runc and
// docker-proxy through it), and which version it must report.
type engineBins struct {
	kind        string
	dockerd     string
	path        string
	wantVersion string // prefix of `dockerd --version`'s version
}

const (
	engineStable  = "stable"
	engineCurrent = "current"
	stableRunc    = "/usr/sbin/runc"
)

func engineKind() string {
	if k := os.Getenv("MYNET_E2E_ENGINE"); k != "" {
		return k
	}
	return engineStable
}

func provisionEngine(kind string) (engineBins, error) {
	switch kind {
	case engineStable:
		return provisionStable()
	case engineCurrent:
		return provisionCurrent()
	}
	return engineBins{}, fmt.Errorf("MYNET_E2E_ENGINE=%q: want %q or %q", kind, engineStable, engineCurrent)
}

// hostTools are what both engines need from the machine: the docker CLI
// (the 28.x one in /usr/local/bin if there, else docker.io's), stable runc
// (the current engine uses it too), ip, iptables, nsenter, and dpkg-deb and
// apt-get for fetching the current engine. The rootfs busybox must be the
// static one (busybox-static): the image has no libc. Debian's docker.io
// brings the CLI, runc and containerd, so one install covers both flavours.
var hostTools = []string{"docker", "runc", "ip", "iptables", "iptables-save", "nsenter", "dpkg-deb", "apt-get"}

func ensureHostPackages(extraTools ...string) error {
	if missingTools(append(hostTools, extraTools...)) || !staticBusybox() {
		return AptInstall("docker.io", "iptables", "iproute2", "busybox-static")
	}
	return nil
}

// provisionStable uses Debian stable's docker.io (20.10, containerd 1.6,
// runc 1.1), installing it when missing.
func provisionStable() (engineBins, error) {
	if err := ensureHostPackages("dockerd", "containerd", "containerd-shim-runc-v2"); err != nil {
		return engineBins{}, err
	}
	return engineBins{
		kind:        engineStable,
		dockerd:     "/usr/sbin/dockerd",
		path:        os.Getenv("PATH"),
		wantVersion: "20.10.",
	}, nil
}

// provisionCurrent unpacks Debian unstable's docker.io (28.5) and containerd
// (2.x) into the cache and runs them with stable's runc: unstable's runc is
// linked against a newer glibc than bookworm has, while dockerd and
// containerd from unstable run on bookworm's glibc. Unstable's containerd
// package does not ship runc (it depends on the runc package), so with the
// unpacked usr/sbin and usr/bin first in PATH, `runc` still resolves to
// /usr/sbin/runc; checked below.
func provisionCurrent() (engineBins, error) {
	if err := ensureHostPackages(); err != nil {
		return engineBins{}, err
	}
	root, err := unpackedCurrent()
	if err != nil {
		return engineBins{}, err
	}
	path := strings.Join([]string{
		filepath.Join(root, "usr/sbin"), filepath.Join(root, "usr/bin"), os.Getenv("PATH"),
	}, string(os.PathListSeparator))
	if got := lookPathIn("runc", path); got != stableRunc {
		return engineBins{}, fmt.Errorf("runc resolves to %q with the current engine's PATH, want %s", got, stableRunc)
	}
	return engineBins{
		kind:        engineCurrent,
		dockerd:     filepath.Join(root, "usr/sbin/dockerd"),
		path:        path,
		wantVersion: "28.5.",
	}, nil
}

func cacheDir() string {
	if d := os.Getenv("MYNET_E2E_CACHE"); d != "" {
		return d
	}
	return "/var/cache/mynet-e2e"
}

// unpackedCurrent returns the directory holding unstable's docker.io and
// containerd unpacked, downloading them on first use. A stamp file written
// last marks a complete unpack; a lock keeps two runs from unpacking at once.
func unpackedCurrent() (string, error) {
	dir := filepath.Join(cacheDir(), "engine-current")
	root := filepath.Join(dir, "root")
	stamp := filepath.Join(dir, "complete")
	if _, err := os.Stat(stamp); err == nil {
		return root, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	unlock, err := lockFile(filepath.Join(dir, "lock"))
	if err != nil {
		return "", err
	}
	defer unlock()
	if _, err := os.Stat(stamp); err == nil {
		return root, nil // another run finished it while we waited
	}
	start := time.Now()
	if err := downloadCurrent(root); err != nil {
		return "", fmt.Errorf("fetching the current engine: %w", err)
	}
	if err := os.WriteFile(stamp, []byte(time.Now().Format(time.RFC3339)+"\n"), 0o644); err != nil {
		return "", err
	}
	Logf("current engine unpacked into %s in %v", root, time.Since(start).Round(time.Millisecond))
	return root, nil
}

// downloadCurrent fetches docker.io and containerd from Debian unstable
// into root.
func downloadCurrent(root string) error {
	return downloadUnstable(root, "docker.io", "containerd")
}

// downloadUnstable downloads pkgs from Debian unstable with a throwaway apt
// configuration (sources, lists and cache all in a temporary directory),
// so the machine's own apt state is not changed, and unpacks them into
// root.
func downloadUnstable(root string, pkgs ...string) error {
	tmp, err := os.MkdirTemp("", "mynet-e2e-apt-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	sources, err := unstableSources(tmp)
	if err != nil {
		return err
	}
	for _, d := range []string{"lists/partial", "cache/archives/partial", "debs"} {
		if err := os.MkdirAll(filepath.Join(tmp, d), 0o755); err != nil {
			return err
		}
	}
	opts := []string{
		"-o", "Dir::Etc::SourceList=" + sources,
		"-o", "Dir::Etc::SourceParts=/dev/null",
		"-o", "Dir::State::Lists=" + filepath.Join(tmp, "lists"),
		"-o", "Dir::Cache=" + filepath.Join(tmp, "cache"),
		"-o", "APT::Sandbox::User=root", // the _apt user cannot write into our temp dir
	}
	aptEnv := append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	if _, err := Run(5*time.Minute, aptEnv, append(append([]string{"apt-get"}, opts...), "update")...); err != nil {
		return err
	}
	debs := filepath.Join(tmp, "debs")
	dl := exec.Command("apt-get", append(append(opts, "download"), pkgs...)...)
	dl.Dir, dl.Env = debs, aptEnv
	if out, err := dl.CombinedOutput(); err != nil {
		return fmt.Errorf("apt-get download: %w: %s", err, out)
	}
	return unpackDebs(debs, root, len(pkgs))
}

// unpackDebs extracts the want .deb files in dir into root (via root.new,
// renamed at the end, so a half-unpacked tree is never taken for a
// complete one).
func unpackDebs(dir, root string, want int) error {
	debs, _ := filepath.Glob(filepath.Join(dir, "*.deb"))
	if len(debs) != want {
		return fmt.Errorf("expected %d .deb files in %s, found %v", want, dir, debs)
	}
	staging := root + ".new"
	_ = os.RemoveAll(staging)
	_ = os.RemoveAll(root)
	for _, deb := range debs {
		if _, err := Run(2*time.Minute, nil, "dpkg-deb", "-x", deb, staging); err != nil {
			return err
		}
		Logf("unpacked %s", filepath.Base(deb))
	}
	return os.Rename(staging, root)
}

// unstableSources writes a deb822 source for unstable that reuses the
// machine's own Debian mirror and keyring, read from debian.sources (or the
// one-line sources.list as a fallback).
func unstableSources(dir string) (string, error) {
	uris, signedBy := machineMirror()
	if uris == "" {
		return "", errors.New("no Debian mirror found in /etc/apt/sources.list.d/debian.sources or /etc/apt/sources.list")
	}
	text := "Types: deb\nURIs: " + uris + "\nSuites: unstable\nComponents: main\n"
	if signedBy != "" {
		text += "Signed-By: " + signedBy + "\n"
	}
	path := filepath.Join(dir, "unstable.sources")
	return path, os.WriteFile(path, []byte(text), 0o644)
}

// machineMirror returns the URIs and Signed-By of the first non-security
// Debian stanza of the machine's apt configuration.
func machineMirror() (uris, signedBy string) {
	for _, st := range deb822Stanzas("/etc/apt/sources.list.d/debian.sources") {
		if strings.Contains(st["Types"], "deb") && st["URIs"] != "" && !strings.Contains(st["URIs"], "security") {
			return st["URIs"], st["Signed-By"]
		}
	}
	return oneLineMirror("/etc/apt/sources.list")
}

func deb822Stanzas(path string) []map[string]string {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []map[string]string
	cur := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.TrimSpace(line) == "":
			if len(cur) > 0 {
				out = append(out, cur)
			}
			cur = map[string]string{}
		case strings.HasPrefix(line, "#"), strings.HasPrefix(line, " "), strings.HasPrefix(line, "\t"):
			// comments; continuation lines only occur in inline keys, which we do not use
		default:
			if k, v, ok := strings.Cut(line, ":"); ok {
				cur[strings.TrimSpace(k)] = strings.TrimSpace(v)
			}
		}
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

// oneLineMirror reads `deb [signed-by=K] URI suite components` lines.
func oneLineMirror(path string) (uri, signedBy string) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", ""
	}
	for _, line := range strings.Split(string(b), "\n") {
		fields := strings.Fields(line)
		if len(fields) < 3 || fields[0] != "deb" {
			continue
		}
		rest := fields[1:]
		if strings.HasPrefix(rest[0], "[") {
			for len(rest) > 0 {
				opt := strings.Trim(rest[0], "[]")
				if k, v, ok := strings.Cut(opt, "="); ok && k == "signed-by" {
					signedBy = v
				}
				done := strings.HasSuffix(rest[0], "]")
				rest = rest[1:]
				if done {
					break
				}
			}
		}
		if len(rest) > 0 && !strings.Contains(rest[0], "security") {
			return rest[0], signedBy
		}
	}
	return "", ""
}

// AptInstall installs packages non-interactively. Installing docker.io must
// not start a host engine: when the machine has no policy-rc.d, one that
// denies every service start is in place for the duration of the install.
func AptInstall(pkgs ...string) error {
	// Two runs on one machine once met in apt-get update ("Could not get
	// lock /var/lib/apt/lists/lock"); they take turns here, and the
	// policy-rc.d one of them writes is not removed under the other.
	if err := os.MkdirAll(cacheDir(), 0o755); err != nil {
		return err
	}
	unlock, err := lockFile(filepath.Join(cacheDir(), "apt.lock"))
	if err != nil {
		return err
	}
	defer unlock()
	Logf("installing %s with apt-get", strings.Join(pkgs, " "))
	restore, err := denyServiceStarts()
	if err != nil {
		return err
	}
	defer restore()
	aptEnv := append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	// Anything else using apt (unattended-upgrades, an operator) is waited
	// for: dpkg's lock by apt itself, the lists lock of update here.
	wait := []string{"-o", "DPkg::Lock::Timeout=300"}
	deadline := time.Now().Add(5 * time.Minute)
	for {
		_, err = Run(5*time.Minute, aptEnv, append(append([]string{"apt-get"}, wait...), "update")...)
		if err == nil || !strings.Contains(err.Error(), "Could not get lock") || time.Now().After(deadline) {
			break
		}
		time.Sleep(2 * time.Second)
	}
	if err != nil {
		return err
	}
	_, err = Run(10*time.Minute, aptEnv, append(append([]string{"apt-get"}, wait...), append([]string{"install", "-y", "--no-install-recommends"}, pkgs...)...)...)
	return err
}

const policyRcD = "/usr/sbin/policy-rc.d"

func denyServiceStarts() (restore func(), err error) {
	if _, err := os.Stat(policyRcD); err == nil {
		return func() {}, nil // the machine's own policy stays in charge
	}
	if err := os.WriteFile(policyRcD, []byte("#!/bin/sh\n# mynet e2e: no service starts during apt-get install\nexit 101\n"), 0o755); err != nil {
		return nil, err
	}
	return func() { _ = os.Remove(policyRcD) }, nil
}

func missingTools(names []string) bool {
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			Logf("%s not found", n)
			return true
		}
	}
	return false
}

func lookPathIn(name, path string) string {
	for _, dir := range filepath.SplitList(path) {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	return ""
}

const HostBusybox = "/bin/busybox"

// staticBusybox reports whether /bin/busybox has no ELF interpreter, i.e.
// comes from busybox-static and can run in an image without a libc.
func staticBusybox() bool {
	f, err := elf.Open(HostBusybox)
	if err != nil {
		return false
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return false
		}
	}
	return true
}

// lockFile takes an exclusive flock on path until unlock is called.
func lockFile(path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, err
	}
	return func() { f.Close() }, nil
}
