//go:build linux

// Package nldump retries netlink dumps the kernel interrupted.
package nldump

import (
	"errors"

	"github.com/vishvananda/netlink"
)

// Attempts bounds the tries of one dump. An interruption means the table
// changed while it was read (NLM_F_DUMP_INTR); while containers start in a
// burst, links change every few milliseconds, so a dump may be
// interrupted a few times in a row, but not for ever.
const Attempts = 5

// Retry runs dump until the kernel answers it whole, at most Attempts
// times. netlink returns what an interrupted dump read with
// ErrDumpInterrupted, which may miss or repeat entries; after the last
// attempt Retry returns that error, with nothing, so that no caller acts
// on a partial list.
func Retry[T any](dump func() (T, error)) (T, error) {
	var zero T
	var err error
	for range Attempts {
		var out T
		if out, err = dump(); !errors.Is(err, netlink.ErrDumpInterrupted) {
			return out, err
		}
	}
	return zero, err
}
