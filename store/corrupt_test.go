package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// writeStateFile makes a valid state file in dir with enough records in
// a few buckets to span many pages, and returns its page size and the ids
// of the pages that hold records (bbolt's branch and leaf pages) and of
// the freelist page.
func writeStateFile(t *testing.T, dir string) (pageSize int, data []int, freelist int) {
	t.Helper()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// One transaction: 2000 Puts would cost 2000 fsyncs.
	db, err := bolt.Open(filepath.Join(dir, "state.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *bolt.Tx) error {
		for i := range 2000 {
			b, err := tx.CreateBucketIfNotExists([]byte([]string{"ipam-leases", "endpoints", "networks"}[i%3]))
			if err != nil {
				return err
			}
			raw, _ := json.Marshal(rec{strings.Repeat("v", i%200)})
			if err := b.Put(fmt.Appendf(nil, "key-%05d", i), raw); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	err = db.View(func(tx *bolt.Tx) error {
		for id := 2; ; id++ {
			info, err := tx.Page(id)
			if err != nil || info == nil {
				return err
			}
			switch info.Type {
			case "leaf", "branch":
				data = append(data, id)
			case "freelist":
				freelist = id
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return db.Info().PageSize, data, freelist
}

// overwritePage fills page id of the file with random bytes.
func overwritePage(t *testing.T, path string, pageSize, id int, rng *rand.Rand) {
	t.Helper()
	junk := make([]byte, pageSize)
	for i := range junk {
		junk[i] = byte(rng.UintN(256))
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(junk, int64(id*pageSize)); err != nil {
		t.Fatal(err)
	}
}

// openAndLoad opens the store in dir and reads every bucket, the way
// mynet's start-up does. A panic fails the test instead of the binary.
func openAndLoad(t *testing.T, dir string) (err error) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			t.Fatalf("Open or load panicked: %v", r)
		}
	}()
	s, err := Open(dir)
	if err != nil {
		return err
	}
	defer s.Close()
	for _, b := range []string{"ipam-leases", "endpoints", "networks", metaBucket} {
		if err := s.ForEach(b, func(string, []byte) error { return nil }); err != nil {
			return err
		}
	}
	return nil
}

// TestOpenRandomPage overwrites one page of a valid state file with random
// bytes: a page holding records must make Open (or the load after it) fail
// with an error naming the file and saying what to do, and no page may
// make it panic. bbolt used to panic ("assertion failed: Page expected ...")
// and mynet exited 2 without naming the file.
func TestOpenRandomPage(t *testing.T) {
	for seed := range uint64(12) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			dir := t.TempDir()
			pageSize, data, _ := writeStateFile(t, dir)
			path := filepath.Join(dir, "state.db")
			st, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			rng := rand.New(rand.NewPCG(seed, 1))
			// Even seeds hit a page holding records, odd ones any page
			// after the two meta pages (free pages and the freelist too).
			id := data[rng.IntN(len(data))]
			if seed%2 == 1 {
				id = 2 + rng.IntN(int(st.Size())/pageSize-2)
			}
			overwritePage(t, path, pageSize, id, rng)
			err = openAndLoad(t, dir)
			if seed%2 == 0 && err == nil {
				t.Fatalf("page %d (records) overwritten: Open and load succeeded", id)
			}
			if err != nil {
				checkCorruptErr(t, err, path)
			}
			t.Logf("page %d: %v", id, err)
		})
	}
}

// TestOpenRandomFreelist overwrites the freelist page, which bbolt reads
// while opening the file.
func TestOpenRandomFreelist(t *testing.T) {
	dir := t.TempDir()
	pageSize, _, freelist := writeStateFile(t, dir)
	path := filepath.Join(dir, "state.db")
	overwritePage(t, path, pageSize, freelist, rand.New(rand.NewPCG(3, 3)))
	err := openAndLoad(t, dir)
	if err == nil {
		t.Fatalf("freelist page %d overwritten: Open succeeded", freelist)
	}
	checkCorruptErr(t, err, path)
}

func checkCorruptErr(t *testing.T, err error, path string) {
	t.Helper()
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "move it away") {
		t.Fatalf("error = %v, want ErrCorrupt naming %s and the fix", err, path)
	}
}

// TestReadCorruptedWhileOpen corrupts a page under an open store (Open's
// check has passed): reads then fail with ErrCorrupt instead of panicking.
func TestReadCorruptedWhileOpen(t *testing.T) {
	dir := t.TempDir()
	pageSize, data, _ := writeStateFile(t, dir)
	path := filepath.Join(dir, "state.db")
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rng := rand.New(rand.NewPCG(7, 7))
	for _, id := range data {
		overwritePage(t, path, pageSize, id, rng)
	}
	defer func() {
		if r := recover(); r != nil {
			t.Fatalf("read panicked: %v", r)
		}
	}()
	err = s.ForEach("ipam-leases", func(string, []byte) error { return nil })
	if err == nil {
		err = s.Get("networks", "key-00002", &rec{})
	}
	checkCorruptErr(t, err, path)
}
