// Package ids shortens Docker's IDs for messages and logs.
package ids

// Short is an ID as Docker's CLI prints it: its first 12 characters, or
// the whole ID if shorter. IDs come from the wire and are not trusted to
// be 64 characters long, so nothing slices them unchecked.
func Short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
