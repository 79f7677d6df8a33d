package store

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// TestConcurrentWritesAllLand: 50 writers putting and deleting at once all
// get their answer, and after a reopen exactly their records are there.
func TestConcurrentWritesAllLand(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	const writers, each = 50, 20
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				k := fmt.Sprintf("w%02d-%02d", w, i)
				if err := s.Put("b", k, rec{k}); err != nil {
					errs <- err
					return
				}
				if i%2 == 1 {
					if err := s.Delete("b", k); err != nil {
						errs <- err
						return
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if s, err = Open(dir); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	n := 0
	err = s.ForEach("b", func(k string, raw []byte) error {
		n++
		if want := fmt.Sprintf(`{"A":%q}`, k); string(raw) != want {
			return fmt.Errorf("record %s, want %s", raw, want)
		}
		return nil
	})
	if err != nil || n != writers*each/2 {
		t.Fatalf("%d records after reopen (%v), want %d", n, err, writers*each/2)
	}
}

// TestGroupWithFailingWrite: a write that fails on its own in a shared
// transaction gets its error; the others in the group are still committed.
func TestGroupWithFailingWrite(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	put := func(key string) *write {
		return &write{done: make(chan error, 1), fn: func(tx *bolt.Tx) error {
			b, err := tx.CreateBucketIfNotExists([]byte("b"))
			if err != nil {
				return err
			}
			return b.Put([]byte(key), []byte(`{}`))
		}}
	}
	group := []*write{put("a"), put(""), put("c")} // bbolt refuses an empty key
	s.commit(group)
	for i, want := range []error{nil, berrors.ErrKeyRequired, nil} {
		if err := <-group[i].done; !errors.Is(err, want) {
			t.Fatalf("write %d: %v, want %v", i, err, want)
		}
	}
	for _, k := range []string{"a", "c"} {
		if err := s.Get("b", k, &struct{}{}); err != nil {
			t.Fatalf("Get %s: %v", k, err)
		}
	}
}
