package store

import (
	"errors"
	"fmt"
	"slices"
	"sync"

	bolt "go.etcd.io/bbolt"
)

// DeleteMany removes keys from bucket in one transaction: one fsync however
// many keys, and either all of them go or none. Missing keys (and a
// missing bucket) are not an error, as for Delete.
func (s *Store) DeleteMany(bucket string, keys []string) error {
	err := s.write(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(bucket))
		if b == nil {
			return nil
		}
		for _, k := range keys {
			if err := b.Delete([]byte(k)); err != nil {
				return fmt.Errorf("%s: %w", k, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("delete %d keys from %s in %s: %w", len(keys), bucket, s.path, err)
	}
	return nil
}

// batcher groups concurrent writes into shared transactions (group commit).
// While one transaction is being fsynced, writes that arrive queue up, and
// the next transaction carries all of them: a lone writer pays one fsync
// per write as before, 50 concurrent writers about one per round instead
// of 50. bbolt's own DB.Batch waits on a timer (10 ms by default) before
// every batch, which would cost a lone writer most of its rate.
type batcher struct {
	mu sync.Mutex // guards queue and leading
	// queue holds the writes waiting for the next transaction.
	queue []*write
	// leading is set while some writer commits a group; when that is done
	// it hands the lead to the first write queued meanwhile.
	leading bool
}

type write struct {
	fn   func(*bolt.Tx) error
	done chan error // capacity 1: errLead, then the write's result
}

// errLead tells a queued write to commit the next group itself.
var errLead = errors.New("lead the next group commit")

// write runs fn in a transaction shared with concurrent writes and returns
// once that transaction is on disk, so a record written before an answer
// goes back is on disk when the answer arrives. fn may run more than once
// (a group is retried without a write that failed on its own) and must
// only change the transaction.
func (s *Store) write(fn func(*bolt.Tx) error) error {
	w := &write{fn: fn, done: make(chan error, 1)}
	b := &s.batch
	b.mu.Lock()
	b.queue = append(b.queue, w)
	lead := !b.leading
	b.leading = true
	b.mu.Unlock()
	if !lead {
		if err := <-w.done; !errors.Is(err, errLead) {
			return err
		}
	}
	s.commitGroup()
	return <-w.done
}

// commitGroup commits every queued write, the caller's first among them,
// then hands the lead on. One leader commits one group: under a steady
// stream of writes no caller waits for more than its own group.
func (s *Store) commitGroup() {
	b := &s.batch
	b.mu.Lock()
	group := b.queue
	b.queue = nil
	b.mu.Unlock()

	s.commit(group)

	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.queue) == 0 {
		b.leading = false
		return
	}
	b.queue[0].done <- errLead
}

// commit runs group in one transaction and sends each write its result. A
// write whose own fn fails rolls everyone back; it alone gets its error and
// the others are committed again without it. A failed commit (disk full,
// corruption) fails them all.
func (s *Store) commit(group []*write) {
	for len(group) > 0 {
		failed := -1
		err := s.update(func(tx *bolt.Tx) error {
			for i, w := range group {
				if err := w.fn(tx); err != nil {
					failed = i
					return err
				}
			}
			return nil
		})
		if failed < 0 {
			for _, w := range group {
				w.done <- err
			}
			return
		}
		group[failed].done <- err
		group = slices.Concat(group[:failed], group[failed+1:])
	}
}
