package store

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
)

type rec struct{ A string }

func TestPutGetDeleteSurviveReopen(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Put("b", "k1", rec{"one"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Put("b", "k2", rec{"two"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete("b", "k2"); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete("b", "missing"); err != nil {
		t.Fatalf("deleting a missing key: %v", err)
	}
	if err := s.Delete("nobucket", "k"); err != nil {
		t.Fatalf("deleting from a missing bucket: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, err = Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var r rec
	if err := s.Get("b", "k1", &r); err != nil || r.A != "one" {
		t.Fatalf("Get after reopen: %v %v", r, err)
	}
	if err := s.Get("b", "k2", &r); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get deleted key: %v", err)
	}
	var keys []string
	if err := s.ForEach("b", func(k string, _ []byte) error { keys = append(keys, k); return nil }); err != nil {
		t.Fatal(err)
	}
	if strings.Join(keys, ",") != "k1" {
		t.Fatalf("keys = %v", keys)
	}
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	dir := t.TempDir()
	db, err := bolt.Open(filepath.Join(dir, "state.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = db.Update(func(tx *bolt.Tx) error {
		b, _ := tx.CreateBucketIfNotExists([]byte(metaBucket))
		return b.Put([]byte("schema"), []byte("99"))
	})
	_ = db.Close()
	if _, err := Open(dir); err == nil || !strings.Contains(err.Error(), "newer than this mynet") {
		t.Fatalf("Open = %v", err)
	}
}

func TestOpenRefusesCorruptFile(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "state.db"), []byte(strings.Repeat("garbage!", 1024)), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Open(dir)
	if err == nil || !strings.Contains(err.Error(), "state.db") {
		t.Fatalf("Open of a corrupt file = %v, want an error naming the file", err)
	}
}

// TestMigrate upgrades a version-1 file through a (test) migration that
// renames a record field, in one transaction, and stamps the new version.
func TestMigrate(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Put("b", "k", map[string]string{"old": "v"}); err != nil {
		t.Fatal(err)
	}
	rename := func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("b"))
		return b.Put([]byte("k"), []byte(`{"new":"v"}`))
	}
	if err := s.migrate(2, []Migration{rename}); err != nil {
		t.Fatal(err)
	}
	var got map[string]string
	if err := s.Get("b", "k", &got); err != nil || got["new"] != "v" {
		t.Fatalf("after migration: %v %v", got, err)
	}
	// Done once: at version 2 nothing runs again.
	if err := s.migrate(2, []Migration{func(*bolt.Tx) error { return errors.New("ran twice") }}); err != nil {
		t.Fatal(err)
	}
	// A failing step leaves the file as it was.
	if err := s.migrate(3, []Migration{rename, func(*bolt.Tx) error { return errors.New("boom") }}); err == nil || !strings.Contains(err.Error(), "migrate schema version 2 to 3: boom") {
		t.Fatalf("failing migration: %v", err)
	}
	if err := s.migrate(2, nil); err != nil {
		t.Fatalf("version changed by a failed migration: %v", err)
	}
	_ = s.Close()
}

// TestDeleteMany deletes several keys, missing ones among them, in one
// call, and leaves the other keys alone.
func TestDeleteMany(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, k := range []string{"a", "b", "c", "d"} {
		if err := s.Put("b", k, rec{k}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.DeleteMany("b", []string{"a", "c", "missing"}); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteMany("nobucket", []string{"a"}); err != nil {
		t.Fatalf("DeleteMany from a missing bucket: %v", err)
	}
	var keys []string
	if err := s.ForEach("b", func(k string, _ []byte) error { keys = append(keys, k); return nil }); err != nil {
		t.Fatal(err)
	}
	if strings.Join(keys, ",") != "b,d" {
		t.Fatalf("keys after DeleteMany = %v, want b,d", keys)
	}
}

// The instance UUID is made with the file, kept across reopens, and added
// to a file of an older build that lacks it.
func TestUUIDMadeOnceAndKept(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	first := s.UUID()
	if len(first) != 36 {
		t.Fatalf("UUID %q, want 36 characters", first)
	}
	_ = s.Close()
	s, err = Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if s.UUID() != first {
		t.Errorf("UUID after reopen %q, want %q", s.UUID(), first)
	}
	// An older build's file: no UUID in the meta bucket.
	if err := s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket([]byte(metaBucket)).Delete([]byte(uuidKey)) }); err != nil {
		t.Fatal(err)
	}
	_ = s.Close()
	s, err = Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.UUID() == "" || s.UUID() == first {
		t.Errorf("UUID of an older file %q, want a new one", s.UUID())
	}
}
