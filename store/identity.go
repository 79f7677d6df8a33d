package store

import (
	"crypto/rand"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// uuidKey holds the instance's UUID in the meta bucket.
const uuidKey = "uuid"

// UUID is the random identity of the mynet instance that owns this state
// file, made once with the file (or at the first start of a build that
// knows it, for an older file) and never changed. mynet writes it into
// every link alias and rule comment it makes, so that a second instance
// on the host, or a new state file, never takes those objects for its own.
func (s *Store) UUID() string { return s.uuid }

// loadUUID reads the UUID from the meta bucket, creating it if absent.
func (s *Store) loadUUID() error {
	return s.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists([]byte(metaBucket))
		if err != nil {
			return fmt.Errorf("state file %s: create meta bucket: %w", s.path, err)
		}
		if raw := b.Get([]byte(uuidKey)); raw != nil {
			s.uuid = string(raw)
			return nil
		}
		id, err := newUUID()
		if err != nil {
			return err
		}
		if err := b.Put([]byte(uuidKey), []byte(id)); err != nil {
			return fmt.Errorf("state file %s: write instance UUID: %w", s.path, err)
		}
		s.uuid = id
		return nil
	})
}

// newUUID returns a random (version 4) UUID.
func newUUID() (string, error) {
	var u [16]byte
	if _, err := rand.Read(u[:]); err != nil {
		return "", fmt.Errorf("instance UUID: %w", err)
	}
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16]), nil
}
