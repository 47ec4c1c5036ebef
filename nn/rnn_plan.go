package nn

// Segment planning and the activation arena of the CPU engine (rnn_engine.go).
//
// The time steps of a batch are cut into segments of about defaultSegRows packed rows, and
// every pass works segment by segment. Per packed row (token), a training batch keeps for its
// backward pass the gate activations (G*H floats per layer and direction, plus H for the GRU),
// the output of every layer but the last, which the next layer reads, and backwards its
// gradient, and per segment its starting states (B×H floats per layer and direction, twice
// for the LSTM). All of it lives in one arena per layer and precision, laid out anew for each
// batch, whose size the activation budget bounds (SetMaxActivationBytes, default
// DefaultMaxActivationBytes). Beyond it, the activations of the segments that do not fit are
// recomputed in the backward pass from their starting states, with the same results bit for
// bit: the arena stays at the budget whatever the batch, unless the layer outputs and their
// gradients alone exceed it. Eval mode keeps no activations. The memory figures of the
// recipe's runs are in the README ("Memory").

import (
	"math"
	"runtime/debug"
)

// segPlan is a batch's cut into segments, and which segments' activations the forward pass
// keeps for the backward pass.
type segPlan struct {
	S       int
	step    []int    // segment j spans steps [step[j], step[j+1]); step[S] = T
	keep    [][]bool // keep[l][j]: the activations of segment j of layer l are kept (else recomputed)
	kept    int      // segments (of all layers) kept
	maxRows int      // the most rows in a segment
	scratch bool     // the activations of some segment are not kept: the directions need a scratch for them
	grad    bool     // the layout has the last layer's input gradient (training)
}

// build cuts the batch into S = ceil(N/target) segments of whole steps, cutting after the step
// where the running row count first reaches j*N/S: each segment holds at most N/S + B - 1 rows.
func (p *segPlan) build(r *rnnRun, target int) {
	S := max(1, (r.N+target-1)/target)
	p.step = append(p.step[:0], 0)
	cum := 0
	for t := 0; t < r.T-1; t++ {
		cum += r.nb[t]
		if cum*S >= len(p.step)*r.N && cum < r.N { // (steps past the longest sequence join the last segment)
			p.step = append(p.step, t+1)
		}
	}
	p.step = append(p.step, r.T)
	p.S = len(p.step) - 1
	p.maxRows = 0
	for j := 0; j < p.S; j++ {
		p.maxRows = max(p.maxRows, p.rows(r, j))
	}
}

// rows returns the number of packed rows of segment j.
func (p *segPlan) rows(r *rnnRun, j int) int { return r.off[p.step[j+1]] - r.off[p.step[j]] }

// order returns the segment that direction d processes i-th in the forward pass.
func (p *segPlan) order(i, d int) int {
	if d == 0 {
		return i
	}
	return p.S - 1 - i
}

// actWidth is the width of a row of activations: the G*H gates, and for the GRU W_hn h + b_hn.
func (k *cpuRNN[F]) actWidth() int {
	return k.s.cell.actBlocks() * k.s.hidden
}

// planBatch cuts the batch into segments, chooses the segments whose activations the forward
// pass keeps, and lays the batch's buffers out in the arena. In training it keeps all of them
// when the whole layout fits in the activation budget; otherwise as many as fit beside the
// rest of the layout and the scratch of a recomputed segment, the higher layers first (their
// recomputation costs the most: their input is the widest). Eval mode keeps none. A layout
// that does not fit even with no activation kept grows the arena beyond the budget.
func (k *cpuRNN[F]) planBatch(r *rnnRun) {
	s, p := k.s, &k.plan
	p.build(r, s.segRows)
	p.grad = r.train && (s.layers > 1 || r.inputGrad)
	p.keep = resizeKeep(p.keep, s.layers, p.S)
	p.kept, p.scratch = 0, false
	size := int64(floatBytes[F]())
	fixed := int64(k.layout(r, nil)) * size // no activation kept, no scratch for them
	rowBytes := int64(s.dirs*k.actWidth()) * size
	budget := s.maxActBytes
	if budget <= 0 {
		budget = math.MaxInt64
	}
	if r.train {
		avail := budget - fixed
		if all := int64(r.N*s.layers) * rowBytes; all > avail {
			avail -= int64(p.maxRows) * rowBytes // the scratch of the recomputed segments
		}
		for l := s.layers - 1; l >= 0; l-- {
			for j := 0; j < p.S; j++ {
				if need := int64(p.rows(r, j)) * rowBytes; need <= avail {
					avail -= need
					p.keep[l][j] = true
					p.kept++
				}
			}
		}
	}
	p.scratch = p.kept < s.layers*p.S
	n := k.layout(r, nil)
	if len(k.arena) < n {
		// In training, up to twice the need within the budget, so that the arena grows
		// rarely (the memory pages that no batch touches take no memory).
		c := n
		if r.train {
			c = int(max(int64(n), min(budget/size, int64(2*n))))
		}
		k.dropArena()
		k.arena = make([]F, c)
	}
	k.layout(r, k.arena)
}

// dropArena lets go of the arena and of every buffer laid out in it, and hands the memory
// back to the operating system before a larger arena is made, so that the old and the new
// arena never count together in the process's peak memory (without it the old one stays
// resident until the collector and the scavenger get to it). The arena grows a handful of
// times per run, so the forced collection costs nothing measurable.
func (k *cpuRNN[F]) dropArena() {
	if k.arena == nil {
		return
	}
	for d := range k.dir {
		dr := &k.dir[d]
		dr.seg = segment[F]{}
		dr.act, dr.h, dr.c, dr.tc, dr.hp, dr.x = nil, nil, nil, nil, nil, nil
		dr.hIn, dr.cIn = nil, nil
	}
	k.out, k.grad, k.kept = nil, nil, [2][][][]F{}
	k.arena = nil
	debug.FreeOSMemory()
}

// layout lays the batch's buffers out one after the other in arena and returns how many
// values they take; with a nil arena it only counts. Its parts, in order: per direction the
// segment scratch and the entering states; the layer outputs; the last layer's input
// gradient; the kept activations (plan.keep).
func (k *cpuRNN[F]) layout(r *rnnRun, arena []F) int {
	s, p := k.s, &k.plan
	H, W, L, aw := s.hidden, s.dirs*s.hidden, s.layers, k.actWidth()
	off := 0
	take := func(n int) []F {
		start := off
		off += (n + 15) &^ 15 // 64-byte steps
		if arena == nil {
			return nil
		}
		return arena[start : start+n : start+n]
	}
	rows := p.maxRows
	for d := 0; d < s.dirs; d++ {
		dr := &k.dir[d]
		dr.h, dr.hp = take(rows*H), take(rows*H)
		dr.x = take(rows * max(s.in, W))
		dr.c, dr.tc, dr.act = nil, nil, nil
		if s.cell.hasCellState() {
			dr.c, dr.tc = take(rows*H), take(rows*H)
		}
		if p.scratch {
			dr.act = take(rows * aw)
		}
		dr.hIn = resizeSegs(dr.hIn, L, p.S)
		dr.cIn = resizeSegs(dr.cIn, L, p.S)
		for l := 0; l < L; l++ {
			for j := 0; j < p.S; j++ {
				dr.hIn[l][j] = take(r.B * H)
				if s.cell.hasCellState() {
					dr.cIn[l][j] = take(r.B * H)
				}
			}
		}
	}
	k.out = resizeSegs(k.out, L-1, p.S)
	for l := 0; l < L-1; l++ {
		for j := 0; j < p.S; j++ {
			k.out[l][j] = take(p.rows(r, j) * max(W, s.layerIn(l))) // (layer 0's input gradient may be wider)
		}
	}
	k.grad = resizeList(k.grad, p.S)
	for j := 0; j < p.S && p.grad; j++ {
		k.grad[j] = take(p.rows(r, j) * s.layerIn(L-1))
	}
	for d := 0; d < s.dirs; d++ {
		k.kept[d] = resizeSegs(k.kept[d], L, p.S)
		for l := 0; l < L; l++ {
			for j := 0; j < p.S; j++ {
				if p.keep[l][j] {
					k.kept[d][l][j] = take(p.rows(r, j) * aw)
				}
			}
		}
	}
	return off
}

// resizeSegs returns s as n lists of S slices, all nil.
func resizeSegs[F float](s [][][]F, n, S int) [][][]F {
	if cap(s) < n {
		s = append(s[:cap(s)], make([][][]F, n-cap(s))...)
	}
	s = s[:n]
	for i := range s {
		s[i] = resizeList(s[i], S)
	}
	return s
}

// resizeList returns s with n slices, all nil.
func resizeList[F float](s [][]F, n int) [][]F {
	if cap(s) < n {
		s = append(s[:cap(s)], make([][]F, n-cap(s))...)
	}
	s = s[:n]
	clear(s)
	return s
}

func resizeKeep(s [][]bool, layers, S int) [][]bool {
	if cap(s) < layers {
		s = append(s[:cap(s)], make([][]bool, layers-cap(s))...)
	}
	s = s[:layers]
	for l := range s {
		clear(resize(&s[l], S))
	}
	return s
}

// floatBytes is the size of an F.
func floatBytes[F float]() int {
	var z F
	if _, ok := any(z).(float32); ok {
		return 4
	}
	return 8
}
