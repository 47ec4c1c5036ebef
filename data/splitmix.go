package data

// SplitMix64 is the recipe's one generator for every data order (RECIPE.md, "Split"): the
// train/valid split first, then each epoch's batches, in that order. It is simple enough that
// any language reproduces the same split and the same batches from the same seed.
//
// Its whole state is one uint64 (State), which checkpoints save and restore.
type SplitMix64 struct {
	State uint64
}

// NewSplitMix64 returns the generator seeded with seed.
func NewSplitMix64(seed uint64) *SplitMix64 { return &SplitMix64{State: seed} }

// Next returns the next 64-bit number.
func (r *SplitMix64) Next() uint64 {
	r.State += 0x9E3779B97F4A7C15
	z := r.State
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
	z = (z ^ (z >> 27)) * 0x94D049BB133111EB
	return z ^ (z >> 31)
}

// Shuffle permutes n items in place with Fisher-Yates from the end (for i = n-1 down to 1,
// j = Next() mod (i+1), swap i and j), as the recipe states it. swap exchanges items i and j.
func (r *SplitMix64) Shuffle(n int, swap func(i, j int)) {
	for i := n - 1; i > 0; i-- {
		j := int(r.Next() % uint64(i+1))
		swap(i, j)
	}
}
