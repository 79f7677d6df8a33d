//go:build e2e

package e2e

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"
)

// importImage builds a busybox rootfs from the host's static busybox and
// imports it as mynet-e2e/busybox:latest. Nothing is pulled from a registry.
//
// The rootfs has /bin/busybox with a symlink for every applet (sh, httpd,
// wget, nc, ip, ping, sleep, timeout, ...), /etc/passwd and /etc/group,
// empty /etc/hosts, /etc/resolv.conf and /etc/hostname for the engine to
// mount over, /tmp, and /var/www/index.html for `httpd -h /var/www`.
func importImage(l layout) error {
	applets, err := busyboxApplets()
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := writeRootfs(&buf, applets); err != nil {
		return err
	}
	cmd := exec.Command(cliPath(), "-H", l.dockerHost(), "import", "-", image)
	cmd.Env = cliEnviron(l)
	cmd.Stdin = &buf
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("docker import: %w: %s", err, out)
	}
	return nil
}

func busyboxApplets() ([]string, error) {
	out, err := run(10*time.Second, nil, hostBusybox, "--list")
	if err != nil {
		return nil, err
	}
	var applets []string
	for _, a := range strings.Fields(out) {
		if a != "busybox" && !strings.ContainsAny(a, "/[") {
			applets = append(applets, a)
		}
	}
	return applets, nil
}

func writeRootfs(w io.Writer, applets []string) error {
	bb, err := os.ReadFile(hostBusybox)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(w)
	for _, d := range []string{"bin", "dev", "etc", "proc", "root", "sys", "var", "var/www"} {
		if err := tarDir(tw, d, 0o755); err != nil {
			return err
		}
	}
	if err := tarDir(tw, "tmp", 0o1777); err != nil {
		return err
	}
	if err := tarFile(tw, "bin/busybox", 0o755, bb); err != nil {
		return err
	}
	for _, a := range applets {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: "bin/" + a, Linkname: "busybox", Mode: 0o777}); err != nil {
			return err
		}
	}
	files := map[string]string{
		"etc/passwd":         "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
		"etc/group":          "root:x:0:\nnogroup:x:65534:\n",
		"etc/hosts":          "",
		"etc/resolv.conf":    "",
		"etc/hostname":       "",
		"var/www/index.html": webPage + "\n",
	}
	for name, content := range files {
		if err := tarFile(tw, name, 0o644, []byte(content)); err != nil {
			return err
		}
	}
	return tw.Close()
}

func tarDir(tw *tar.Writer, name string, mode int64) error {
	return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: mode})
}

func tarFile(tw *tar.Writer, name string, mode int64, data []byte) error {
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(data))}); err != nil {
		return err
	}
	_, err := tw.Write(data)
	return err
}
