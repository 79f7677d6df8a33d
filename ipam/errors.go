package ipam

import (
	"errors"
	"fmt"
)

// Sentinel errors, for errors.Is. The errors ipam returns carry a complete
// message of their own (Docker shows it after "remote: "), so a sentinel's
// text never appears in what the user reads.
var (
	// ErrPoolExhausted: no free address in a pool, or no free default pool.
	ErrPoolExhausted = errors.New("no free address or pool")
	// ErrAddressInUse: a requested address is already leased.
	ErrAddressInUse = errors.New("address already in use")
	// ErrOutOfRange: a requested address lies outside its pool.
	ErrOutOfRange = errors.New("address outside pool")
	// ErrUnknownPool: a PoolID that mynet does not hold.
	ErrUnknownPool = errors.New("unknown pool")
	// ErrPoolOverlap: a requested subnet overlaps a pool mynet already holds.
	ErrPoolOverlap = errors.New("pool overlaps a pool in use")
	// ErrInvalid: malformed or unacceptable input.
	ErrInvalid = errors.New("invalid request")
	// ErrBusy: a release of an address, or of a pool, whose lease is still
	// being written; Docker releases only what it got an answer for.
	ErrBusy = errors.New("lease being written")
)

// ipamError is a user-facing message that still matches its sentinel with
// errors.Is.
type ipamError struct {
	kind error
	msg  string
}

func (e *ipamError) Error() string { return e.msg }
func (e *ipamError) Unwrap() error { return e.kind }

// errorf formats a self-contained message classified as kind.
func errorf(kind error, format string, args ...any) error {
	return &ipamError{kind: kind, msg: fmt.Sprintf(format, args...)}
}
