package data

import (
	"slices"
	"testing"
)

// TestSplitMix64CheckValues checks the values that RECIPE.md states for seed 1234.
func TestSplitMix64CheckValues(t *testing.T) {
	r := NewSplitMix64(1234)
	want := []uint64{13478418381427711195, 10936887474700444964, 3728693401281897946}
	for i, w := range want {
		if got := r.Next(); got != w {
			t.Fatalf("next() #%d = %d, want %d", i+1, got, w)
		}
	}
	r = NewSplitMix64(1234)
	xs := []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}
	r.Shuffle(len(xs), func(i, j int) { xs[i], xs[j] = xs[j], xs[i] })
	if want := []int{0, 1, 8, 6, 4, 3, 7, 2, 9, 5}; !slices.Equal(xs, want) {
		t.Fatalf("shuffle(0..9) = %v, want %v", xs, want)
	}
}
