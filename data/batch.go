package data

import (
	"cmp"
	"slices"
)

// PoolBatches is how many batches' worth of examples BucketBatches sorts together.
const PoolBatches = 100

// BucketBatches returns one epoch's training batches (RECIPE.md, Batches; torch_ref.py's
// bucket_batches): shuffle the examples with rng; cut them into pools of PoolBatches*batchSize;
// sort each pool by length, longest first (stable); cut it into batches; shuffle that pool's
// batches with rng; emit the pools in order. lengths is indexed by example index (the values
// in indices). rng is the corpus generator (Corpus.RNG), advanced in place. batchSize must be
// positive.
func BucketBatches(indices []int, lengths []int, batchSize int, rng *SplitMix64) [][]int {
	if batchSize <= 0 {
		panic("data.BucketBatches: batch size must be positive")
	}
	idx := slices.Clone(indices)
	rng.Shuffle(len(idx), func(i, j int) { idx[i], idx[j] = idx[j], idx[i] })
	batches := make([][]int, 0, (len(idx)+batchSize-1)/batchSize)
	poolSize := batchSize * PoolBatches
	for s := 0; s < len(idx); s += poolSize {
		pool := idx[s:min(s+poolSize, len(idx))]
		sortByLengthDesc(pool, lengths)
		first := len(batches)
		for j := 0; j < len(pool); j += batchSize {
			batches = append(batches, pool[j:min(j+batchSize, len(pool)):min(j+batchSize, len(pool))])
		}
		pb := batches[first:]
		rng.Shuffle(len(pb), func(i, j int) { pb[i], pb[j] = pb[j], pb[i] })
	}
	return batches
}

// EvalBatches returns the batches of a validation or test pass (torch_ref.py's eval_batches):
// the whole split sorted by length, longest first (stable), cut into batches; no shuffling.
// batchSize must be positive.
func EvalBatches(indices []int, lengths []int, batchSize int) [][]int {
	if batchSize <= 0 {
		panic("data.EvalBatches: batch size must be positive")
	}
	idx := slices.Clone(indices)
	sortByLengthDesc(idx, lengths)
	batches := make([][]int, 0, (len(idx)+batchSize-1)/batchSize)
	for j := 0; j < len(idx); j += batchSize {
		end := min(j+batchSize, len(idx))
		batches = append(batches, idx[j:end:end])
	}
	return batches
}

func sortByLengthDesc(idx []int, lengths []int) {
	slices.SortStableFunc(idx, func(a, b int) int { return cmp.Compare(lengths[b], lengths[a]) })
}

// PadOptions shape a padded batch.
type PadOptions struct {
	// PadID fills the positions after a sequence's end (PAD for the word vocabulary; an
	// encoder's own pad id for word pieces).
	PadID int32
	// MinLen is the least width T of the batch (the CNN needs 5: its widest filter).
	MinLen int
	// MaxLen, when positive, truncates longer sequences to their first MaxLen ids (off by
	// default: the recipe's word models see whole reviews).
	MaxLen int
}

// Batch is a padded batch, ready for a model.
type Batch struct {
	// Index holds the examples' indices, in batch order.
	Index []int
	// B is the number of examples, T the padded width.
	B, T int
	// IDs is the B x T matrix of token ids, row-major (example b's ids are
	// IDs[b*T : b*T+Lengths[b]], then PadID up to (b+1)*T).
	IDs []int32
	// Lengths are the true lengths (after truncation); for batches from BucketBatches and
	// EvalBatches they are non-increasing.
	Lengths []int
	// Labels are the examples' labels as float32 (the targets of the binary cross-entropy).
	Labels []float32
}

// Pad builds the padded batch of the examples idx: seqs are all examples' id sequences and
// labels all examples' label ids (Corpus.Labels), both indexed by example. dst, when not nil,
// is reused (its slices are overwritten and grown as needed), which saves allocations from
// batch to batch; the result is dst or a new Batch.
func Pad(dst *Batch, seqs [][]int32, labels []int, idx []int, o PadOptions) *Batch {
	if dst == nil {
		dst = &Batch{}
	}
	b := len(idx)
	t := o.MinLen
	dst.Index = append(dst.Index[:0], idx...)
	dst.Lengths = dst.Lengths[:0]
	dst.Labels = dst.Labels[:0]
	for _, i := range idx {
		n := len(seqs[i])
		if o.MaxLen > 0 && n > o.MaxLen {
			n = o.MaxLen
		}
		dst.Lengths = append(dst.Lengths, n)
		t = max(t, n)
		dst.Labels = append(dst.Labels, float32(labels[i]))
	}
	dst.B, dst.T = b, t
	if cap(dst.IDs) < b*t {
		dst.IDs = make([]int32, b*t)
	}
	dst.IDs = dst.IDs[:b*t]
	for r, i := range idx {
		row := dst.IDs[r*t : (r+1)*t]
		n := copy(row, seqs[i][:dst.Lengths[r]])
		for k := n; k < t; k++ {
			row[k] = o.PadID
		}
	}
	return dst
}
