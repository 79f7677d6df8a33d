package store

import (
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// ErrCorrupt marks a state file whose pages are inconsistent: overwritten
// by a failing disk, a careless copy or an edit.
var ErrCorrupt = errors.New("corrupt")

// corruptHint is what an operator can do about a state file mynet cannot
// read; mynet itself must not start without the leases it records.
const corruptHint = "move it away and restart mynet; running containers will need to be recreated"

// openBolt opens the file at path. bbolt asserts (panics) on some corrupt
// pages instead of returning an error, even while opening (the freelist
// page is read then), so a panic is turned into ErrCorrupt naming the file.
func openBolt(path string) (db *bolt.DB, err error) {
	defer recoverCorrupt(path, &err)
	// The timeout turns a second mynet on the same state dir into an error
	// instead of a silent hang on bbolt's file lock.
	db, err = bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("open state file %s (is another mynet running? if the file is corrupt, %s): %w", path, corruptHint, err)
	}
	return db, nil
}

// check runs bbolt's consistency check over every page, so a damaged file
// stops mynet at start-up with a clear error instead of panicking in the
// middle of some later request that happens to read the damaged page. It
// runs in a read-only transaction, which bbolt allows only while nothing
// writes: at Open nothing does yet.
func (s *Store) check() error {
	return s.view(func(tx *bolt.Tx) error {
		var first error
		for err := range tx.Check() {
			// Drain: Check's goroutine blocks until every error is read.
			if first == nil {
				first = err
			}
		}
		if first != nil {
			return corrupt(s.path, first)
		}
		return nil
	})
}

// view is bolt's View with bbolt's corruption panics returned as
// ErrCorrupt. fn must only read from bbolt: any panic in it is taken for
// corruption.
func (s *Store) view(fn func(*bolt.Tx) error) (err error) {
	defer recoverCorrupt(s.path, &err)
	return s.db.View(fn)
}

// update is view for a write transaction; bbolt rolls the transaction back
// before the panic reaches here.
func (s *Store) update(fn func(*bolt.Tx) error) (err error) {
	defer recoverCorrupt(s.path, &err)
	return s.db.Update(fn)
}

func recoverCorrupt(path string, err *error) {
	if r := recover(); r != nil {
		*err = corrupt(path, fmt.Errorf("%v", r))
	}
}

func corrupt(path string, cause error) error {
	return fmt.Errorf("state file %s is %w (%v): %s", path, ErrCorrupt, cause, corruptHint)
}
