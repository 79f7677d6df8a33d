package store

import (
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// DeleteMany removes keys from bucket in one transaction: one fsync however
// many keys, and either all of them go or none. Missing keys (and a
// missing bucket) are not an error, as for Delete.
func (s *Store) DeleteMany(bucket string, keys []string) error {
	err := s.update(func(tx *bolt.Tx) error {
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
