//go:build e2e

package harness

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// ReadmeCommands returns the command lines of the first ```sh block under
// the README.md heading section (e.g. "## Quickstart"), with lines ending
// in a backslash joined to the next, so that a test can run what the
// README says rather than a copy of it that could drift. Blank lines and
// comment-only lines are left out; trailing comments stay (sh ignores them,
// and tests may read an expected output from them).
func ReadmeCommands(section string) ([]string, error) {
	f, err := os.Open(filepath.Join(mustModuleRoot(), "README.md"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var cmds []string
	var cont string
	inSection, inBlock := false, false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case !inBlock && strings.HasPrefix(line, "## "):
			inSection = line == section
		case inSection && !inBlock && strings.HasPrefix(line, "```sh"):
			inBlock = true
		case inBlock && strings.HasPrefix(line, "```"):
			if len(cmds) == 0 {
				return nil, fmt.Errorf("README.md: the sh block under %q is empty", section)
			}
			return cmds, nil
		case inBlock:
			trimmed := strings.TrimSpace(line)
			if cont == "" && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
				continue
			}
			if strings.HasSuffix(trimmed, `\`) {
				cont += strings.TrimSuffix(trimmed, `\`) + " "
				continue
			}
			cmds = append(cmds, cont+trimmed)
			cont = ""
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return nil, fmt.Errorf("README.md has no ```sh block under %q", section)
}
