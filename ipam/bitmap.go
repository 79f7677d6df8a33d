package ipam

import (
	"fmt"
	"math/bits"
)

// bitmap is a set of n bits, one per address offset in a pool, with a
// "next clear bit" search whose cost does not depend on how many bits are
// set.
//
// levels[0] holds the bits themselves. Above it, bit j of levels[k+1] is set
// exactly when word j of levels[k] is full (all 64 bits set); the top level
// is a single word. A search that meets a full word climbs one level and
// skips 64 full words per bit there, then descends along the first
// not-full word, so it touches O(log64 n) words: 4 for 2^24 bits. Set and
// Clear update the summary only when a word turns full or stops being full.
//
// Bits past n in the last word of a level are never set, so that word never
// counts as full; a search that lands there reports "none" because the
// lowest clear bit it finds is >= n.
//
// Words are stored in lazily allocated chunks: a huge, mostly empty bitmap
// (a 2^24 window of an IPv6 /64) costs a few tens of KiB until addresses are
// used, instead of 2 MiB.
type bitmap struct {
	n      int
	count  int
	levels []words
}

const (
	wordBits = 64
	allOnes  = ^uint64(0)
	// chunkWords is the allocation unit of a level: 256 words cover 16384
	// addresses in 2 KiB. Small pools get a chunk sized to fit.
	chunkWords = 256
)

// words is a lazily allocated array of n uint64s; a nil chunk reads as zero.
type words struct {
	n      int
	chunks [][]uint64
}

func newWords(n int) words {
	return words{n: n, chunks: make([][]uint64, (n+chunkWords-1)/chunkWords)}
}

func (w *words) get(i int) uint64 {
	c := w.chunks[i/chunkWords]
	if c == nil {
		return 0
	}
	return c[i%chunkWords]
}

func (w *words) set(i int, v uint64) {
	ci := i / chunkWords
	c := w.chunks[ci]
	if c == nil {
		if v == 0 {
			return
		}
		c = make([]uint64, min(chunkWords, w.n-ci*chunkWords))
		w.chunks[ci] = c
	}
	c[i%chunkWords] = v
}

// newBitmap returns an empty bitmap of n bits.
func newBitmap(n int) *bitmap {
	if n < 0 {
		panic(fmt.Sprintf("ipam: bitmap size %d", n))
	}
	b := &bitmap{n: n}
	for size := n; ; {
		nw := (size + wordBits - 1) / wordBits
		b.levels = append(b.levels, newWords(nw))
		if nw <= 1 {
			return b
		}
		size = nw
	}
}

// Len is the number of bits.
func (b *bitmap) Len() int { return b.n }

// Count is the number of set bits.
func (b *bitmap) Count() int { return b.count }

// bitsAt is the number of meaningful bits in level l.
func (b *bitmap) bitsAt(l int) int {
	if l == 0 {
		return b.n
	}
	return b.levels[l-1].n
}

func (b *bitmap) checkIndex(i int) {
	if i < 0 || i >= b.n {
		panic(fmt.Sprintf("ipam: bit %d out of range [0,%d)", i, b.n))
	}
}

// IsSet reports whether bit i is set.
func (b *bitmap) IsSet(i int) bool {
	b.checkIndex(i)
	return b.levels[0].get(i/wordBits)&(1<<(i%wordBits)) != 0
}

// Set sets bit i and reports whether it was clear before.
func (b *bitmap) Set(i int) bool {
	if b.IsSet(i) {
		return false
	}
	b.count++
	for l := range b.levels {
		wi := i / wordBits
		v := b.levels[l].get(wi) | 1<<(i%wordBits)
		b.levels[l].set(wi, v)
		if v != allOnes {
			break
		}
		i = wi // the word just became full: mark it one level up
	}
	return true
}

// Clear clears bit i and reports whether it was set before.
func (b *bitmap) Clear(i int) bool {
	if !b.IsSet(i) {
		return false
	}
	b.count--
	for l := range b.levels {
		wi := i / wordBits
		old := b.levels[l].get(wi)
		b.levels[l].set(wi, old&^(1<<(i%wordBits)))
		if old != allOnes {
			break
		}
		i = wi // the word was full and no longer is: unmark it one level up
	}
	return true
}

// NextClear returns the lowest clear bit at or after i, and false when every
// bit from i to the end is set.
func (b *bitmap) NextClear(i int) (int, bool) {
	i = max(i, 0)
	l := 0
	// Climb while the rest of the current word is full.
	for {
		if i >= b.bitsAt(l) {
			return 0, false
		}
		w := b.levels[l].get(i/wordBits) | (uint64(1)<<(i%wordBits) - 1)
		if w != allOnes {
			i = i&^(wordBits-1) + bits.TrailingZeros64(^w)
			break
		}
		i = i/wordBits + 1
		l++
		if l == len(b.levels) {
			return 0, false
		}
	}
	// Bit i of level l is clear, so word i of level l-1 has a clear bit:
	// descend to the lowest one.
	for {
		if i >= b.bitsAt(l) {
			return 0, false
		}
		if l == 0 {
			return i, true
		}
		l--
		i = i*wordBits + bits.TrailingZeros64(^b.levels[l].get(i))
	}
}

// NextClearWrap returns the lowest clear bit at or after i, or else the
// lowest clear bit before i: a circular search starting at i.
func (b *bitmap) NextClearWrap(i int) (int, bool) {
	if j, ok := b.NextClear(i); ok {
		return j, true
	}
	return b.NextClear(0)
}
