//go:build e2e && bench

package suite

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/mynet/mynet/e2e/harness"
)

// benchImage is the data-plane image: the harness's busybox rootfs plus
// the host's iperf3 with the libraries ldd names, and the suite's static rr
// latency tool as /bin/rr. Built locally and imported: nothing is pulled.
const benchImage = "mynet-e2e/iperf3:latest"

const hostIperf3 = "/usr/bin/iperf3"

// ensureIperf3 installs Debian's iperf3 on the machine when missing; the
// host side (engine and ext namespaces) runs it, and the image copies it.
func ensureIperf3() error {
	if _, err := os.Stat(hostIperf3); err == nil {
		return nil
	}
	return harness.AptInstall("iperf3")
}

// buildRR builds bench/rr statically into the work dir.
func buildRR(l harness.Layout) (string, error) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = "/usr/local/go/bin/go"
	}
	root, err := harness.ModuleRoot(goBin)
	if err != nil {
		return "", err
	}
	out := filepath.Join(l.WorkDir, "bin", "rr")
	cmd := exec.Command(goBin, "build", "-o", out, "./bench/rr")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./bench/rr: %w\n%s", err, b)
	}
	return out, nil
}

// importBenchImage builds and imports benchImage.
func importBenchImage(l harness.Layout, rr string) error {
	var base bytes.Buffer
	applets, err := harness.BusyboxApplets()
	if err != nil {
		return err
	}
	if err := harness.WriteRootfs(&base, applets); err != nil {
		return err
	}
	files, err := iperf3Files()
	if err != nil {
		return err
	}
	files[rr] = "bin/rr"
	var img bytes.Buffer
	if err := extendRootfs(&img, &base, files); err != nil {
		return err
	}
	cmd := exec.Command(harness.CLIPath(), "-H", l.DockerHost(), "import", "-", benchImage)
	cmd.Env = harness.CLIEnviron(l)
	cmd.Stdin = &img
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("docker import %s: %w: %s", benchImage, err, out)
	}
	return nil
}

// iperf3Files maps host files to their path in the image: iperf3 and every
// library ldd resolves for it, the dynamic loader included, each at the
// path the binary asks for (symlinks followed: the image gets the content).
func iperf3Files() (map[string]string, error) {
	out, err := harness.Run(10*time.Second, nil, "ldd", hostIperf3)
	if err != nil {
		return nil, err
	}
	files := map[string]string{hostIperf3: strings.TrimPrefix(hostIperf3, "/")}
	for _, line := range strings.Split(out, "\n") {
		for _, f := range strings.Fields(line) {
			if strings.HasPrefix(f, "/") {
				files[f] = strings.TrimPrefix(f, "/")
			}
		}
	}
	return files, nil
}

// extendRootfs copies the tar in base to w and adds files (host path ->
// image path) with the directories they need.
func extendRootfs(w io.Writer, base io.Reader, files map[string]string) error {
	tw := tar.NewWriter(w)
	dirs := map[string]bool{}
	tr := tar.NewReader(base)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if h.Typeflag == tar.TypeDir {
			dirs[strings.TrimSuffix(h.Name, "/")] = true
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if _, err := io.Copy(tw, tr); err != nil {
			return err
		}
	}
	for src, dst := range files {
		if err := addHostFile(tw, dirs, src, dst); err != nil {
			return err
		}
	}
	return tw.Close()
}

func addHostFile(tw *tar.Writer, dirs map[string]bool, src, dst string) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	var parents []string
	for d := filepath.Dir(dst); d != "." && !dirs[d]; d = filepath.Dir(d) {
		parents = append([]string{d}, parents...)
	}
	for _, d := range parents {
		dirs[d] = true
		if err := harness.TarDir(tw, d, 0o755); err != nil {
			return err
		}
	}
	return harness.TarFile(tw, dst, 0o755, data)
}
