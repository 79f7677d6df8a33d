// Package store keeps mynet's state (networks, endpoints, address pools and
// leases) in one bbolt file so that it survives plugin and daemon restarts:
// the engine never replays networks or endpoints to a remote driver.
//
// Records are JSON values under string keys in named buckets. Every write is
// in a bbolt transaction fsynced before it returns, so a record written before
// an answer goes back to Docker is on disk when Docker sees the answer;
// concurrent writes share one transaction and one fsync (batch.go).
package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	bolt "go.etcd.io/bbolt"
)

// SchemaVersion is written into every new state file; a later mynet that
// changes a record's shape migrates files that carry an older number.
const SchemaVersion = 1

const metaBucket = "meta"

// ErrNotFound is returned by Get when the key is absent.
var ErrNotFound = errors.New("not found")

// Store is a bbolt-backed key/value store of JSON records.
type Store struct {
	db    *bolt.DB
	path  string
	batch batcher // Put, Delete and DeleteMany share transactions through it
	uuid  string  // see UUID
}

// Open opens (creating if needed) the state file state.db in dir. It fails
// rather than starting empty when the file exists but cannot be read: an
// empty start would hand out addresses that running containers hold.
func Open(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create state dir %s: %w", dir, err)
	}
	path := filepath.Join(dir, "state.db")
	db, err := openBolt(path)
	if err != nil {
		return nil, err
	}
	s := &Store{db: db, path: path}
	if err := s.check(); err != nil {
		_ = db.Close()
		return nil, err
	}
	if err := s.initMeta(); err != nil {
		_ = db.Close()
		return nil, err
	}
	if err := s.loadUUID(); err != nil {
		_ = db.Close()
		return nil, err
	}
	return s, nil
}

// Migration rewrites a state file of schema version N (its index in
// migrations, counting from 1) into version N+1, inside one transaction.
type Migration func(tx *bolt.Tx) error

// migrations upgrade older state files step by step at Open; append one
// and bump SchemaVersion whenever a record changes shape incompatibly.
// Version 1 is the first: fields added since are optional JSON fields,
// which older records simply lack.
var migrations = []Migration{}

// initMeta stamps a new file with SchemaVersion, refuses a file newer than
// this mynet, and migrates an older one in the same transaction, so a
// crash leaves either the old file or the migrated one.
func (s *Store) initMeta() error {
	return s.migrate(SchemaVersion, migrations)
}

func (s *Store) migrate(target int, steps []Migration) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists([]byte(metaBucket))
		if err != nil {
			return fmt.Errorf("state file %s: create meta bucket: %w", s.path, err)
		}
		raw := b.Get([]byte("schema"))
		if raw == nil {
			return b.Put([]byte("schema"), []byte(fmt.Sprint(target)))
		}
		var v int
		if err := json.Unmarshal(raw, &v); err != nil {
			return fmt.Errorf("state file %s: unreadable schema version %q", s.path, raw)
		}
		if v > target {
			return fmt.Errorf("state file %s has schema version %d, newer than this mynet understands (%d): upgrade mynet", s.path, v, target)
		}
		for ; v < target; v++ {
			if v-1 >= len(steps) {
				return fmt.Errorf("state file %s: no migration from schema version %d", s.path, v)
			}
			if err := steps[v-1](tx); err != nil {
				return fmt.Errorf("state file %s: migrate schema version %d to %d: %w", s.path, v, v+1, err)
			}
		}
		return b.Put([]byte("schema"), []byte(fmt.Sprint(target)))
	})
}

// Path is the state file's path, for log and error messages.
func (s *Store) Path() string { return s.path }

// Close closes the state file.
func (s *Store) Close() error { return s.db.Close() }

// Put stores v as JSON under bucket/key, replacing any previous value.
func (s *Store) Put(bucket, key string, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s/%s: %w", bucket, key, err)
	}
	err = s.write(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists([]byte(bucket))
		if err != nil {
			return err
		}
		return b.Put([]byte(key), raw)
	})
	if err != nil {
		return fmt.Errorf("write %s/%s to %s: %w", bucket, key, s.path, err)
	}
	return nil
}

// Get decodes bucket/key into v; ErrNotFound when absent.
func (s *Store) Get(bucket, key string, v any) error {
	var raw []byte
	err := s.view(func(tx *bolt.Tx) error {
		if b := tx.Bucket([]byte(bucket)); b != nil {
			if r := b.Get([]byte(key)); r != nil {
				raw = append([]byte(nil), r...)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("read %s/%s from %s: %w", bucket, key, s.path, err)
	}
	if raw == nil {
		return fmt.Errorf("%s/%s: %w", bucket, key, ErrNotFound)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("decode %s/%s in %s: %w", bucket, key, s.path, err)
	}
	return nil
}

// Delete removes bucket/key. A missing key is not an error: deletes are
// retried by Docker after crashes and must be idempotent.
func (s *Store) Delete(bucket, key string) error {
	err := s.write(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(bucket))
		if b == nil {
			return nil
		}
		return b.Delete([]byte(key))
	})
	if err != nil {
		return fmt.Errorf("delete %s/%s from %s: %w", bucket, key, s.path, err)
	}
	return nil
}

// ForEach calls fn with every key and raw JSON value in bucket, in key order.
// The records are copied out of the transaction first, so fn may write to
// the store, and a panic of bbolt's on a corrupt page is told apart from
// one of fn's.
func (s *Store) ForEach(bucket string, fn func(key string, raw []byte) error) error {
	var keys []string
	var raws [][]byte
	err := s.view(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(bucket))
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			keys = append(keys, string(k))
			raws = append(raws, append([]byte(nil), v...))
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("read bucket %s: %w", bucket, err)
	}
	for i, k := range keys {
		if err := fn(k, raws[i]); err != nil {
			return fmt.Errorf("%s/%s in %s: %w", bucket, k, s.path, err)
		}
	}
	return nil
}
