package gpu

import (
	"fmt"
	"math"
)

// The host side of a step: what goes up to the device for one batch, assembled in one buffer
// so that a single copy uploads it. Everything here is plain host code, tested without a GPU.

// layout is a batch's packed layout, as nn's recurrent layers use it (PyTorch's
// PackedSequence): sequences sorted longest first, row (t, b) of the batch at packed row
// off[t]+b, nb[t] sequences active at step t, N rows in all.
type layout struct {
	T, B, N int
	nb      []int32 // T+1 values, nb[T] = 0
	off     []int32 // T+1 values, off[T] = N
	rowT    []int32 // N values: the step of each packed row
	last    []int32 // B values: the packed row of each sequence's last step
}

// set fills the layout for lengths (descending, each in 1..T).
func (l *layout) set(lengths []int, T int) error {
	B := len(lengths)
	if B == 0 || T < 1 {
		return fmt.Errorf("gpu: empty batch (%d sequences, T = %d)", B, T)
	}
	n := 0
	for b, x := range lengths {
		if x < 1 || x > T {
			return fmt.Errorf("gpu: sequence %d has length %d, want 1..T=%d", b, x, T)
		}
		if b > 0 && x > lengths[b-1] {
			return fmt.Errorf("gpu: lengths are not sorted longest first (sequence %d: %d after %d)", b, x, lengths[b-1])
		}
		n += x
	}
	if n > math.MaxInt32 {
		return fmt.Errorf("gpu: batch of %d tokens is too large", n)
	}
	l.T, l.B, l.N = T, B, n
	l.nb = resize(l.nb, T+1)
	l.off = resize(l.off, T+1)
	l.rowT = resize(l.rowT, n)
	l.last = resize(l.last, B)
	b, o := B, 0
	for t := 0; t < T; t++ {
		for b > 0 && lengths[b-1] <= t {
			b--
		}
		l.nb[t], l.off[t] = int32(b), int32(o)
		for i := 0; i < b; i++ {
			l.rowT[o+i] = int32(t)
		}
		o += b
	}
	l.nb[T], l.off[T] = 0, int32(o)
	for i, x := range lengths {
		l.last[i] = l.off[x-1] + int32(i)
	}
	return nil
}

// prev returns, for step t of direction d (0 forward, 1 reverse), the first packed row of the
// step processed just before it and how many of t's rows continue a sequence from there.
func (l *layout) prev(t, d int) (row, m int) {
	if d == 0 {
		if t == 0 {
			return 0, 0
		}
		return int(l.off[t-1]), int(l.nb[t])
	}
	if t+1 >= l.T {
		return 0, 0
	}
	return int(l.off[t+1]), int(l.nb[t+1])
}

// cont returns how many of step t's rows of direction d receive a recurrent gradient from the
// step the backward pass processed before it (the rows that continue into that step).
func (l *layout) cont(t, d int) int {
	if d == 0 {
		return int(l.nb[t+1])
	}
	if t == 0 {
		return 0
	}
	return int(l.nb[t])
}

// csr groups the positions of a batch's token ids by id, for the embedding's backward pass: for
// each distinct id (ascending) the rows of the gathered input that hold it, in the order the
// positions were given. Each id's gradient row is then one sum in a fixed order: no atomics, the
// same result every run. Positions holding skip (the padding id) are left out.
type csr struct {
	uniq  []int32 // distinct ids
	start []int32 // len(uniq)+1 offsets into rows
	rows  []int32 // rows of the gathered input, grouped by id
	count []int32 // per vocabulary id (scratch)
}

// build groups positions: ids[i] is the id at position i and rowOf[i] its row (nil: row i).
func (c *csr) build(ids, rowOf []int32, vocab int, skip int32) error {
	c.count = resize(c.count, vocab)
	clear(c.count)
	n := 0
	for i, id := range ids {
		if id < 0 || int(id) >= vocab {
			return fmt.Errorf("gpu: id %d at position %d is outside the vocabulary of %d", id, i, vocab)
		}
		if id != skip {
			c.count[id]++
			n++
		}
	}
	c.uniq = c.uniq[:0]
	c.start = append(c.start[:0], 0)
	for id, k := range c.count {
		if k > 0 {
			c.uniq = append(c.uniq, int32(id))
			c.start = append(c.start, c.start[len(c.start)-1]+k)
			c.count[id] = c.start[len(c.start)-2] // becomes the id's write cursor
		}
	}
	c.rows = resize(c.rows, n)
	for i, id := range ids {
		if id == skip {
			continue
		}
		r := int32(i)
		if rowOf != nil {
			r = rowOf[i]
		}
		c.rows[c.count[id]] = r
		c.count[id]++
	}
	return nil
}

// resize returns s with length n, reallocating only when its capacity is short.
func resize[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}

// upload is one batch's upload: int32 sections then float32 sections, copied to the device in
// one piece. Offsets are in 4-byte elements from the start of the buffer.
type upload struct {
	ints   []int32
	floats []float32
}

// addInts appends a section and returns its offset.
func (u *upload) addInts(s []int32) int {
	o := len(u.ints)
	u.ints = append(u.ints, s...)
	return o
}

// addFloats appends a float section and returns its offset (counted after every int section:
// call it once all int sections are added).
func (u *upload) addFloats(s []float32) int {
	o := len(u.ints) + len(u.floats)
	u.floats = append(u.floats, s...)
	return o
}

// reset empties the upload, keeping its buffers.
func (u *upload) reset() { u.ints, u.floats = u.ints[:0], u.floats[:0] }

// words is the upload's size in 4-byte elements.
func (u *upload) words() int { return len(u.ints) + len(u.floats) }

// packIDs writes the ids of a batch-major (B x T) batch in packed order (for each step t, the
// nb[t] active sequences) into dst, with rowOf giving the packed row of every (b, t < len_b) in
// batch order (b outer, t inner: the order nn's embedding sums its gradient in).
func packIDs(l *layout, ids []int32, dst, order, rowOf []int32) (packed, ord, rows []int32) {
	dst = resize(dst, l.N)
	order = resize(order, l.N)
	rowOf = resize(rowOf, l.N)
	for t := 0; t < l.T; t++ {
		o := int(l.off[t])
		for b := 0; b < int(l.nb[t]); b++ {
			dst[o+b] = ids[b*l.T+t]
		}
	}
	i := 0
	for b := 0; b < l.B; b++ {
		for t := 0; t < l.T && b < int(l.nb[t]); t++ {
			order[i] = ids[b*l.T+t]
			rowOf[i] = l.off[t] + int32(b)
			i++
		}
	}
	return dst, order, rowOf
}

// packFeats writes the active rows of time-major (T*B, dim) features in packed order.
func packFeats(l *layout, feats, dst []float32, dim int) []float32 {
	dst = resize(dst, l.N*dim)
	for t := 0; t < l.T; t++ {
		n := int(l.nb[t])
		copy(dst[int(l.off[t])*dim:(int(l.off[t])+n)*dim], feats[t*l.B*dim:(t*l.B+n)*dim])
	}
	return dst
}

// padIDs returns the B x T ids padded to at least minT steps with pad (the CNN's minimum
// length), and the padded T.
func padIDs(ids []int32, B, T, minT int, pad int32, dst []int32) ([]int32, int) {
	if T >= minT {
		return ids, T
	}
	dst = resize(dst, B*minT)
	for b := 0; b < B; b++ {
		row := dst[b*minT : (b+1)*minT]
		n := copy(row, ids[b*T:(b+1)*T])
		for i := n; i < minT; i++ {
			row[i] = pad
		}
	}
	return dst, minT
}

// ---------------------------------------------------------------------------- launches

// blockSize is the threads per block of the element-wise kernels.
const blockSize = 256

// maxBlocks bounds a grid; the kernels loop over the elements beyond it (grid-stride loops).
const maxBlocks = 1 << 20

// gridFor returns the number of blocks of blockSize threads for n elements (at least 1).
func gridFor(n int64) int {
	if n <= 0 {
		return 1
	}
	return int(min((n+blockSize-1)/blockSize, maxBlocks))
}

// ---------------------------------------------------------------------------- dropout masks

// Dropout on the device draws no numbers: element i of a site is kept when the 32 high bits of
// SplitMix64's mix of (seed + (i+1) * golden) reach p * 2^32, the same function in kernels.cu and
// here. Each training step draws one seed from the model's RNG and each dropout site of the step
// derives its own from it, so the same seed gives the same masks, and a resumed run (whose RNG
// state is in its checkpoint) draws the masks it would have drawn. The masks are not those of the
// CPU ops, which draw theirs from the RNG element by element.

const golden = 0x9E3779B97F4A7C15

// mix64 is SplitMix64's output function.
func mix64(z uint64) uint64 {
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
	z = (z ^ (z >> 27)) * 0x94D049BB133111EB
	return z ^ (z >> 31)
}

// keep says whether element i of a dropout site with this seed and threshold is kept.
func keep(seed uint64, i int64, thr uint32) bool {
	return uint32(mix64(seed+uint64(i+1)*golden)>>32) >= thr
}

// siteSeed is the seed of dropout site s of a step.
func siteSeed(step uint64, site int) uint64 { return mix64(step + uint64(site+1)*golden) }

// dropThreshold is p * 2^32, rounded, for p in [0, 1).
func dropThreshold(p float64) uint32 {
	t := math.Round(p * (1 << 32))
	if t >= 1<<32 {
		return math.MaxUint32
	}
	return uint32(t)
}
