package ipam

import (
	"math/rand/v2"
	"testing"
)

// setRange sets bits [from, to).
func setRange(b *bitmap, from, to int) {
	for i := from; i < to; i++ {
		b.Set(i)
	}
}

func TestBitmapNextClear(t *testing.T) {
	tests := []struct {
		name   string
		n      int
		set    [][2]int // ranges [from, to) set before the search
		clear  []int    // then cleared
		from   int
		want   int
		wantOK bool
	}{
		{name: "empty", n: 256, from: 0, want: 0, wantOK: true},
		{name: "from middle", n: 256, from: 77, want: 77, wantOK: true},
		{name: "zero size", n: 0, from: 0, wantOK: false},
		{name: "negative from", n: 10, from: -5, want: 0, wantOK: true},
		{name: "from past end", n: 10, from: 10, wantOK: false},
		{name: "skip set prefix", n: 256, set: [][2]int{{0, 5}}, from: 0, want: 5, wantOK: true},
		{name: "full", n: 256, set: [][2]int{{0, 256}}, from: 0, wantOK: false},
		{name: "full odd size", n: 100, set: [][2]int{{0, 100}}, from: 0, wantOK: false},
		{name: "full 1 bit", n: 1, set: [][2]int{{0, 1}}, from: 0, wantOK: false},
		{name: "last bit free", n: 100, set: [][2]int{{0, 99}}, from: 0, want: 99, wantOK: true},
		{name: "word edge 63", n: 128, set: [][2]int{{0, 63}}, from: 0, want: 63, wantOK: true},
		{name: "word edge 64", n: 128, set: [][2]int{{0, 64}}, from: 0, want: 64, wantOK: true},
		{name: "word edge 65", n: 128, set: [][2]int{{0, 65}}, from: 0, want: 65, wantOK: true},
		{name: "from 63 in full word", n: 128, set: [][2]int{{0, 64}}, from: 63, want: 64, wantOK: true},
		{name: "from 64", n: 128, set: [][2]int{{64, 70}}, from: 64, want: 70, wantOK: true},
		{name: "summary edge 4095", n: 8192, set: [][2]int{{0, 4095}}, from: 0, want: 4095, wantOK: true},
		{name: "summary edge 4096", n: 8192, set: [][2]int{{0, 4096}}, from: 0, want: 4096, wantOK: true},
		{name: "summary edge 4097", n: 8192, set: [][2]int{{0, 4097}}, from: 1, want: 4097, wantOK: true},
		{name: "hole behind from", n: 8192, set: [][2]int{{0, 8192}}, clear: []int{10}, from: 11, wantOK: false},
		{name: "hole after long run", n: 8192, set: [][2]int{{0, 8192}}, clear: []int{8000}, from: 3, want: 8000, wantOK: true},
		{name: "clear unfills summary", n: 300000, set: [][2]int{{0, 300000}}, clear: []int{262143}, from: 0, want: 262143, wantOK: true},
		{name: "partial last word all set", n: 64*64 + 10, set: [][2]int{{0, 64*64 + 10}}, from: 0, wantOK: false},
		{name: "three levels partial tail", n: 64*64*2 + 1, set: [][2]int{{0, 64*64*2 + 1}}, from: 5, wantOK: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBitmap(tt.n)
			for _, r := range tt.set {
				setRange(b, r[0], r[1])
			}
			for _, i := range tt.clear {
				b.Clear(i)
			}
			got, ok := b.NextClear(tt.from)
			if ok != tt.wantOK || (ok && got != tt.want) {
				t.Fatalf("NextClear(%d) = %d, %v; want %d, %v", tt.from, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestBitmapNextClearWrap(t *testing.T) {
	tests := []struct {
		name   string
		n      int
		set    [][2]int
		from   int
		want   int
		wantOK bool
	}{
		{name: "no wrap needed", n: 256, set: [][2]int{{0, 10}}, from: 3, want: 10, wantOK: true},
		{name: "wraps to start", n: 256, set: [][2]int{{2, 256}}, from: 100, want: 0, wantOK: true},
		{name: "wraps past set head", n: 256, set: [][2]int{{0, 5}, {7, 256}}, from: 200, want: 5, wantOK: true},
		{name: "from at end wraps", n: 256, set: [][2]int{{1, 256}}, from: 256, want: 0, wantOK: true},
		{name: "full", n: 256, set: [][2]int{{0, 256}}, from: 17, wantOK: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBitmap(tt.n)
			for _, r := range tt.set {
				setRange(b, r[0], r[1])
			}
			got, ok := b.NextClearWrap(tt.from)
			if ok != tt.wantOK || (ok && got != tt.want) {
				t.Fatalf("NextClearWrap(%d) = %d, %v; want %d, %v", tt.from, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestBitmapSetClearCount(t *testing.T) {
	b := newBitmap(130)
	steps := []struct {
		op      string
		i       int
		changed bool
		count   int
	}{
		{"set", 0, true, 1},
		{"set", 0, false, 1},
		{"set", 129, true, 2},
		{"clear", 5, false, 2},
		{"clear", 0, true, 1},
		{"clear", 0, false, 1},
		{"set", 64, true, 2},
	}
	for _, s := range steps {
		var changed bool
		if s.op == "set" {
			changed = b.Set(s.i)
		} else {
			changed = b.Clear(s.i)
		}
		if changed != s.changed || b.Count() != s.count {
			t.Fatalf("%s(%d) = %v, count %d; want %v, count %d", s.op, s.i, changed, b.Count(), s.changed, s.count)
		}
		if got := b.IsSet(s.i); got != (s.op == "set") {
			t.Fatalf("after %s(%d): IsSet = %v", s.op, s.i, got)
		}
	}
}

func TestBitmapOutOfRangePanics(t *testing.T) {
	for _, i := range []int{-1, 10} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Set(%d) on 10 bits did not panic", i)
				}
			}()
			newBitmap(10).Set(i)
		}()
	}
}

// TestBitmapHuge checks sizes of a /8 and beyond: construction is cheap
// thanks to lazy chunks, and a search crosses a long full run quickly.
func TestBitmapHuge(t *testing.T) {
	for _, n := range []int{1 << 24, 1<<24 + 3, 1 << 30} {
		b := newBitmap(n)
		for _, i := range []int{0, 1, n / 2, n - 1} {
			b.Set(i)
		}
		if got, ok := b.NextClear(0); !ok || got != 2 {
			t.Fatalf("n=%d: NextClear(0) = %d, %v; want 2", n, got, ok)
		}
		if got, ok := b.NextClear(n - 1); ok {
			t.Fatalf("n=%d: NextClear(n-1) = %d; want none", n, got)
		}
		if got, ok := b.NextClearWrap(n - 1); !ok || got != 2 {
			t.Fatalf("n=%d: NextClearWrap(n-1) = %d, %v; want 2", n, got, ok)
		}
	}
	// Fill a /8-sized bitmap but one bit, then find it from the start.
	n := 1 << 24
	b := newBitmap(n)
	setRange(b, 0, n)
	b.Clear(n - 2)
	if got, ok := b.NextClear(0); !ok || got != n-2 {
		t.Fatalf("NextClear(0) = %d, %v; want %d", got, ok, n-2)
	}
	b.Set(n - 2)
	if got, ok := b.NextClearWrap(12345); ok {
		t.Fatalf("full bitmap: NextClearWrap = %d; want none", got)
	}
}

// TestBitmapRandomAgainstModel compares every operation with a plain []bool.
func TestBitmapRandomAgainstModel(t *testing.T) {
	for _, n := range []int{1, 63, 64, 65, 4095, 4096, 4097, 20000} {
		rng := rand.New(rand.NewPCG(uint64(n), 42))
		b := newBitmap(n)
		model := make([]bool, n)
		for op := 0; op < 20000; op++ {
			i := rng.IntN(n)
			switch rng.IntN(4) {
			case 0, 1: // bias towards filling so searches cross full runs
				b.Set(i)
				model[i] = true
			case 2:
				b.Clear(i)
				model[i] = false
			case 3:
				want, wantOK := -1, false
				for j := i; j < n; j++ {
					if !model[j] {
						want, wantOK = j, true
						break
					}
				}
				got, ok := b.NextClear(i)
				if ok != wantOK || (ok && got != want) {
					t.Fatalf("n=%d op %d: NextClear(%d) = %d, %v; want %d, %v", n, op, i, got, ok, want, wantOK)
				}
			}
		}
		count := 0
		for _, v := range model {
			if v {
				count++
			}
		}
		if b.Count() != count {
			t.Fatalf("n=%d: Count = %d, want %d", n, b.Count(), count)
		}
	}
}

// BenchmarkBitmapNextClear measures a search that must cross a run of full
// words: the worst case for a flat bitmap, O(log64 n) here.
func BenchmarkBitmapNextClear(b *testing.B) {
	n := 1 << 24
	bm := newBitmap(n)
	setRange(bm, 0, n-1)
	for b.Loop() {
		if _, ok := bm.NextClear(0); !ok {
			b.Fatal("no clear bit")
		}
	}
}
