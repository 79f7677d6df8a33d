//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// unpackedUnstable returns the file rel (e.g. usr/bin/docker-registry) of
// Debian unstable's pkgs unpacked into the cache directory name, downloading
// and unpacking them on first use with a throwaway apt configuration (as the
// current engine is), guarded by a lock and a stamp file.
func unpackedUnstable(name, rel string, pkgs ...string) (string, error) {
	dir := filepath.Join(cacheDir(), name)
	bin := filepath.Join(dir, "root", rel)
	stamp := filepath.Join(dir, "complete")
	if _, err := os.Stat(stamp); err == nil {
		return bin, nil
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
		return bin, nil
	}
	start := time.Now()
	if err := downloadUnstable(filepath.Join(dir, "root"), pkgs...); err != nil {
		return "", fmt.Errorf("fetching %s: %w", strings.Join(pkgs, " "), err)
	}
	if _, err := os.Stat(bin); err != nil {
		return "", err
	}
	logf("%s unpacked into %s in %v", strings.Join(pkgs, " "), dir, time.Since(start).Round(time.Millisecond))
	return bin, os.WriteFile(stamp, []byte(time.Now().Format(time.RFC3339)+"\n"), 0o644)
}

// downloadUnstable downloads pkgs from Debian unstable (with apt state in a
// temporary directory, so the machine's apt is untouched) and unpacks them
// into root.
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
		"-o", "APT::Sandbox::User=root",
	}
	aptEnv := append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	if _, err := run(5*time.Minute, aptEnv, append(append([]string{"apt-get"}, opts...), "update")...); err != nil {
		return err
	}
	debs := filepath.Join(tmp, "debs")
	dl := exec.Command("apt-get", append(append(opts, "download"), pkgs...)...)
	dl.Dir, dl.Env = debs, aptEnv
	if out, err := dl.CombinedOutput(); err != nil {
		return fmt.Errorf("apt-get download: %w: %s", err, out)
	}
	files, _ := filepath.Glob(filepath.Join(debs, "*.deb"))
	_ = os.RemoveAll(root)
	for _, deb := range files {
		if _, err := run(2*time.Minute, nil, "dpkg-deb", "-x", deb, root); err != nil {
			return err
		}
	}
	return nil
}
