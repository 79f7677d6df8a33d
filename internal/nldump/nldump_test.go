//go:build linux

package nldump

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/vishvananda/netlink"
)

// dumper answers interrupted dumps (with partial results, as netlink
// does) for its first interrupted calls, then the whole list or err.
func dumper(interrupted int, err error) (func() ([]string, error), *int) {
	calls := 0
	return func() ([]string, error) {
		calls++
		if calls <= interrupted {
			return []string{"partial"}, fmt.Errorf("dump: %w", netlink.ErrDumpInterrupted)
		}
		if err != nil {
			return nil, err
		}
		return []string{"a", "b"}, nil
	}, &calls
}

func TestRetry(t *testing.T) {
	other := errors.New("no buffer space")
	for _, c := range []struct {
		name        string
		interrupted int
		err         error
		want        []string
		wantErr     error
		calls       int
	}{
		{"whole at once", 0, nil, []string{"a", "b"}, nil, 1},
		{"interrupted then whole", Attempts - 1, nil, []string{"a", "b"}, nil, Attempts},
		{"always interrupted", Attempts, nil, nil, netlink.ErrDumpInterrupted, Attempts},
		{"another error is not retried", 0, other, nil, other, 1},
		{"interrupted then another error", 2, other, nil, other, 3},
	} {
		t.Run(c.name, func(t *testing.T) {
			dump, calls := dumper(c.interrupted, c.err)
			got, err := Retry(dump)
			if !slices.Equal(got, c.want) || !errors.Is(err, c.wantErr) || (c.wantErr == nil) != (err == nil) || *calls != c.calls {
				t.Errorf("Retry = %v, %v after %d calls; want %v, %v after %d", got, err, *calls, c.want, c.wantErr, c.calls)
			}
		})
	}
}
