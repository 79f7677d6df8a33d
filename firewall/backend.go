package firewall

import (
	"bufio"
	"fmt"
	"os/exec"
	"strings"

	"github.com/sirupsen/logrus"
)

// The iptables commands mynet chooses between. Rules written through one
// backend are invisible to the other's tools, and a packet must pass the
// FORWARD chains of both, so mynet's accepts only help if they sit in the
// backend whose FORWARD chain Docker sets to DROP.
const (
	cmdNFT     = "iptables-nft"
	cmdLegacy  = "iptables-legacy"
	cmdDefault = "iptables" // the system's alternative; inside the plugin, nft
)

// backendState is what one backend holds in the current network namespace.
type backendState struct {
	dockerChains int // chains named DOCKER or DOCKER-*
	rules        int // rules of any table
}

// inspectBackend reads the tables of one backend with `CMD-save`. It never
// creates a table or loads a module: iptables-legacy-save without -t dumps
// only the tables listed in /proc/net/ip_tables_names, and iptables-nft-save
// only those nftables already has. A missing or failing command counts as
// an empty backend.
func inspectBackend(cmd string) (backendState, error) {
	out, err := exec.Command(cmd + "-save").Output()
	if err != nil {
		return backendState{}, err
	}
	return parseSave(string(out)), nil
}

// parseSave counts Docker's chains and all rules in iptables-save output.
func parseSave(out string) backendState {
	var s backendState
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, ":"):
			chain, _, _ := strings.Cut(line[1:], " ")
			if chain == "DOCKER" || strings.HasPrefix(chain, "DOCKER-") {
				s.dockerChains++
			}
		case strings.HasPrefix(line, "-A "):
			s.rules++
		}
	}
	return s
}

// chooseBackend decides which iptables command mynet uses, from what the
// two backends hold, and says why:
//  1. the backend holding Docker's chains (DOCKER, DOCKER-USER, ...), since
//     Docker's FORWARD policy and rules are what mynet's must work with;
//     if both hold some, the one with more rules (the other is a leftover);
//  2. else the only backend holding any rules (another firewall manager);
//  3. else the system's iptables (on a host, its alternatives setting; in
//     the plugin's rootfs, nft). This also happens when the managed plugin
//     starts at boot before dockerd has created its chains.
func chooseBackend(nft, legacy backendState) (cmd, reason string) {
	switch {
	case nft.dockerChains > 0 && legacy.dockerChains > 0:
		if legacy.rules > nft.rules {
			return cmdLegacy, "both backends hold Docker's chains; legacy has more rules"
		}
		return cmdNFT, "both backends hold Docker's chains; nf_tables has as many rules or more"
	case nft.dockerChains > 0:
		return cmdNFT, "Docker's chains are in nf_tables"
	case legacy.dockerChains > 0:
		return cmdLegacy, "Docker's chains are in legacy iptables"
	case nft.rules > 0 && legacy.rules == 0:
		return cmdNFT, "no Docker chains; only nf_tables holds rules"
	case legacy.rules > 0 && nft.rules == 0:
		return cmdLegacy, "no Docker chains; only legacy iptables holds rules"
	}
	return cmdDefault, "no Docker chains found; using the system's iptables"
}

// selectCommand inspects both backends in the calling thread's network
// namespace and returns the command to use, logging the choice.
func selectCommand(log *logrus.Entry) string {
	states := map[string]backendState{}
	for _, cmd := range []string{cmdNFT, cmdLegacy} {
		s, err := inspectBackend(cmd)
		if err != nil {
			log.WithError(err).WithField("command", cmd+"-save").Debug("cannot read iptables backend; taking it as empty")
		}
		states[cmd] = s
	}
	cmd, reason := chooseBackend(states[cmdNFT], states[cmdLegacy])
	log.WithFields(logrus.Fields{"command": cmd, "reason": reason,
		"nft_docker_chains": states[cmdNFT].dockerChains, "legacy_docker_chains": states[cmdLegacy].dockerChains}).Info("iptables backend selected")
	return cmd
}

// Backend pins the iptables backend: "nft" or "legacy". "" or "auto" lets
// New detect it (selectCommand). Pinning is for hosts where detection
// cannot work, such as a managed plugin started at boot, before dockerd has
// created its chains, on a host whose Docker uses legacy iptables.
func Backend(name string) Option {
	return func(t *IPTables) { t.pinned = name }
}

// commandFor returns the iptables command New uses: the one the Backend
// option pins, or the one selectCommand detects.
func commandFor(log *logrus.Entry, opts []Option) (string, error) {
	var o IPTables
	for _, opt := range opts {
		opt(&o)
	}
	switch o.pinned {
	case "", "auto":
		return selectCommand(log), nil
	case "nft":
		log.WithField("command", cmdNFT).Info("iptables backend pinned")
		return cmdNFT, nil
	case "legacy":
		log.WithField("command", cmdLegacy).Info("iptables backend pinned")
		return cmdLegacy, nil
	}
	return "", fmt.Errorf("iptables backend %q: want auto, nft or legacy", o.pinned)
}
