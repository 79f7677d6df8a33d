//go:build e2e

package harness

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
func importImage(l Layout) error {
	applets, err := BusyboxApplets()
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := WriteRootfs(&buf, applets); err != nil {
		return err
	}
	cmd := exec.Command(CLIPath(), "-H", l.DockerHost(), "import", "-", Image)
	cmd.Env = CLIEnviron(l)
	cmd.Stdin = &buf
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("docker import: %w: %s", err, out)
	}
	return nil
}

func BusyboxApplets() ([]string, error) {
	out, err := Run(10*time.Second, nil, HostBusybox, "--list")
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

func WriteRootfs(w io.Writer, applets []string) error {
	bb, err := os.ReadFile(HostBusybox)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(w)
	for _, d := range []string{"bin", "dev", "etc", "proc", "root", "sys", "var", "var/www"} {
		if err := TarDir(tw, d, 0o755); err != nil {
			return err
		}
	}
	if err := TarDir(tw, "tmp", 0o1777); err != nil {
		return err
	}
	if err := TarFile(tw, "bin/busybox", 0o755, bb); err != nil {
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
		"var/www/index.html": WebPage + "\n",
	}
	for name, content := range files {
		if err := TarFile(tw, name, 0o644, []byte(content)); err != nil {
			return err
		}
	}
	return tw.Close()
}

func TarDir(tw *tar.Writer, name string, mode int64) error {
	return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: mode})
}

func TarFile(tw *tar.Writer, name string, mode int64, data []byte) error {
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(data))}); err != nil {
		return err
	}
	_, err := tw.Write(data)
	return err
}
