//go:build e2e

package harness

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// UnpackedUnstable returns the file rel (e.g. usr/bin/docker-registry) of
// Debian unstable's pkgs unpacked into the cache directory name, downloading
// and unpacking them on first use with a throwaway apt configuration (as the
// current engine is), guarded by a lock and a stamp file.
func UnpackedUnstable(name, rel string, pkgs ...string) (string, error) {
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
	Logf("%s unpacked into %s in %v", strings.Join(pkgs, " "), dir, time.Since(start).Round(time.Millisecond))
	return bin, os.WriteFile(stamp, []byte(time.Now().Format(time.RFC3339)+"\n"), 0o644)
}
