package nn

import (
	G "gorgonia.org/gorgonia"
)

// GRU is a fused multi-layer, optionally bidirectional GRU over packed sequences: PyTorch's
// nn.GRU run on a pack_padded_sequence batch (enforce_sorted=True), as one Gorgonia op with a
// hand-written backward pass. Packing, directions, dropout between layers, the final states
// and the parameter names are as for LSTM (see there), with 3H-row gate blocks r, z, n:
//
//	r = σ(W_ir x + b_ir + W_hr h + b_hr)
//	z = σ(W_iz x + b_iz + W_hz h + b_hz)
//	n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))
//	h' = (1 - z) ⊙ n + z ⊙ h
//
// prefix+"weight_ih_l0" [3H, in], "weight_hh_l0" [3H, H], "bias_ih_l0" [3H], "bias_hh_l0"
// [3H], "_reverse" for the backward direction, as in PyTorch's state_dict.
type GRU struct{ s *rnnStack }

// NewGRU returns a GRU with zero weights (call Init, or load weights into Params); the
// arguments are NewLSTM's. The input gradient is computed; SetInputGrad(false) turns it off
// for frozen features (the bigru head over an encoder), which saves the largest matrix product
// of the first layer.
func NewGRU(dev *CPU, prefix string, inputDim, hidden, layers int, bidirectional bool, dropout float64) (*GRU, error) {
	s, err := newRNNStack(cellGRU, dev, prefix, inputDim, hidden, layers, bidirectional, dropout, true)
	if err != nil {
		return nil, err
	}
	return &GRU{s}, nil
}

// Params returns the parameters in PyTorch's state_dict order.
func (l *GRU) Params() []*Param { return append([]*Param(nil), l.s.params...) }

// Init draws every weight and bias from U(-1/sqrt(H), 1/sqrt(H)), PyTorch's default.
func (l *GRU) Init(rng *RNG) { l.s.initParams(rng) }

// OutputDim is the width of Forward's outputs: H, or 2H when bidirectional.
func (l *GRU) OutputDim() int { return l.s.dirs * l.s.hidden }

// SetInputGrad says whether the backward pass computes the gradient of Forward's input.
func (l *GRU) SetInputGrad(on bool) { l.s.inputGrad = on }

// SetMaxActivationBytes sets the activation budget (see LSTM.SetMaxActivationBytes; the GRU
// keeps 4H activations per token, layer and direction: r, z, n and W_hn h + b_hn).
func (l *GRU) SetMaxActivationBytes(n int64) { l.s.maxActBytes = n }

// MaxActivationBytes returns the activation budget (see SetMaxActivationBytes).
func (l *GRU) MaxActivationBytes() int64 { return l.s.maxActBytes }

// Forward adds the GRU to x's graph; arguments, results and lifetimes are LSTM.Forward's.
func (l *GRU) Forward(x *G.Node, lengths []int, T int, mode Mode, rng *RNG) (final *G.Node, err error) {
	final, _, err = l.s.forwardBound(x, lengths, T, mode, rng, false)
	return final, err
}

// ForwardSequence is Forward that also returns the output sequence (see LSTM.ForwardSequence).
func (l *GRU) ForwardSequence(x *G.Node, lengths []int, T int, mode Mode, rng *RNG) (final, outputs *G.Node, err error) {
	return l.s.forwardBound(x, lengths, T, mode, rng, true)
}

// ---------------------------------------------------------------------------- the cell

// gruCell is the GRU's cellKind.
type gruCell struct{}

func (gruCell) String() string     { return "GRU" }
func (gruCell) gates() int         { return 3 }
func (gruCell) actBlocks() int     { return 4 } // r, z, n and W_hn h + b_hn
func (gruCell) hasCellState() bool { return false }

// gruSteps are the GRU's cellSteps.
type gruSteps[F float] struct{}

// forwardSegment runs the GRU over one segment (see cpuRNN): the input projection of the
// segment's rows in one product, then per step the recurrent product W_hh h over the running
// sequences and the cell arithmetic. It leaves r, z, n in sg.gates, W_hn h + b_hn in sg.hn and
// the hidden states in sg.h. The backward pass runs it again, on the same inputs, to recompute
// a segment whose activations were not kept.
func (gruSteps[F]) forwardSegment(k *cpuRNN[F], r *rnnRun, sg *segment[F], wih, bih, bhh []F) {
	H, inl := k.s.hidden, k.s.layerIn(sg.l)
	gh := 3 * H
	dr := &k.dir[sg.d]
	k.bigGemm(false, true, sg.rows, gh, inl, sg.x, inl, wih, inl, 0, sg.gates, gh)
	for i := 0; i < sg.t1-sg.t0; i++ {
		t := sg.stepAt(i)
		lr := r.off[t] - sg.r0
		hp, _, m := sg.prev(r, t, H)
		if m > 0 {
			gemm(k.bl, false, false, m, gh, H, 1, hp, H, dr.whhT, gh, 0, dr.step[:m*gh], gh)
		}
		for b := 0; b < r.nb[t]; b++ {
			var rec, hpb []F
			if b < m {
				rec = dr.step[b*gh : (b+1)*gh]
				hpb = hp[b*H : (b+1)*H]
			}
			row := lr + b
			gruCellForward(sg.gates[row*gh:(row+1)*gh], rec, bih, bhh, hpb, sg.hn[row*H:(row+1)*H], sg.h[row*H:(row+1)*H])
		}
	}
}

// segmentStates recomputes the hidden states of a segment whose activations were kept.
func (gruSteps[F]) segmentStates(k *cpuRNN[F], r *rnnRun, sg *segment[F]) {
	H := k.s.hidden
	gh := 3 * H
	for i := 0; i < sg.t1-sg.t0; i++ {
		t := sg.stepAt(i)
		lr := r.off[t] - sg.r0
		hp, _, m := sg.prev(r, t, H)
		for b := 0; b < r.nb[t]; b++ {
			var hpb []F
			if b < m {
				hpb = hp[b*H : (b+1)*H]
			}
			row := lr + b
			gruCellState(sg.gates[row*gh:(row+1)*gh], hpb, sg.h[row*H:(row+1)*H])
		}
	}
}

// gruCellForward turns one row's input projection g (3H, without bias) into the activations
// r, z, n in place, given the recurrent product rec = W_hh h_prev (3H; nil when h_prev is
// zero) and the previous state hp (nil: zero). It stores W_hn h_prev + b_hn in hn and the new
// state in h.
func gruCellForward[F float](g, rec, bih, bhh, hp, hn, h []F) {
	H := len(h)
	g, bih, bhh, hn = g[:3*H], bih[:3*H], bhh[:3*H], hn[:H]
	if rec != nil {
		rec = rec[:3*H]
		for j := 0; j < 2*H; j++ {
			g[j] += bih[j] + bhh[j] + rec[j]
		}
		for j := range hn {
			hn[j] = rec[2*H+j] + bhh[2*H+j]
		}
	} else {
		for j := 0; j < 2*H; j++ {
			g[j] += bih[j] + bhh[j]
		}
		copy(hn, bhh[2*H:])
	}
	sigmoidInPlace(g[:2*H])
	gr, gn := g[:H], g[2*H:3*H]
	bin := bih[2*H:]
	for j := range gn {
		gn[j] += bin[j] + gr[j]*hn[j]
	}
	tanhInPlace(gn)
	gruCellState(g, hp, h)
}

// gruCellState computes the new state h = (1-z)⊙n + z⊙hp from one row's activations
// g = [r, z, n] and the previous state hp (nil: zero).
func gruCellState[F float](g, hp, h []F) {
	H := len(h)
	gz, gn := g[H:2*H], g[2*H:3*H]
	if hp != nil {
		hp = hp[:H]
		for j := range h {
			h[j] = (1-gz[j])*gn[j] + gz[j]*hp[j]
		}
	} else {
		for j := range h {
			h[j] = (1 - gz[j]) * gn[j]
		}
	}
}

// backwardSegment is BPTT through one segment (see lstmSteps.backwardSegment). Each row's gates
// become the gradients of the recurrent pre-activations, [dr, dz, dn⊙r] (what W_hh and b_hh
// see), and hn becomes dn, the n gate's input-side gradient, so that the input side's
// gradients are [dr, dz, dn].
func (gruSteps[F]) backwardSegment(k *cpuRNN[F], r *rnnRun, sg *segment[F], whh []F, og *outGrad[F]) {
	H := k.s.hidden
	gh := 3 * H
	dr := &k.dir[sg.d]
	for i := sg.t1 - sg.t0 - 1; i >= 0; i-- {
		t := sg.stepAt(i)
		lr := r.off[t] - sg.r0
		k.startStep(r, sg, t, og)
		hp, _, m := sg.prev(r, t, H)
		for b := 0; b < r.nb[t]; b++ {
			var hpb []F
			if b < m {
				hpb = hp[b*H : (b+1)*H]
			}
			row := lr + b
			gruCellBackward(sg.gates[row*gh:(row+1)*gh], sg.hn[row*H:(row+1)*H], hpb, dr.dh[b*H:(b+1)*H])
		}
		// The gradient of the previous step's h: its direct part dh⊙z (left in dh by the
		// cell) plus dGates W_hh.
		if m > 0 {
			gemm(k.bl, false, false, m, H, gh, 1, sg.gates[lr*gh:(lr+m)*gh], gh, whh, H, 1, dr.dh[:m*H], H)
		}
	}
}

// gruCellBackward turns one row's activations g = [r, z, n] into [dr, dz, dn⊙r] (gradients of
// the pre-activations) and hn (W_hn h_prev + b_hn) into dn, given the gradient dh of the new
// state and the previous state hp (nil: zero). When hp is not nil, dh becomes the direct part
// of h_prev's gradient, dh⊙z.
func gruCellBackward[F float](g, hn, hp, dh []F) {
	H := len(dh)
	g, hn = g[:3*H], hn[:H]
	gr, gz, gn := g[:H], g[H:2*H], g[2*H:3*H]
	if hp != nil {
		hp = hp[:H]
	}
	tiny := smallestNormal[F]() // the carried gradient is flushed: see denormal.go
	for j := range dh {
		rv, zv, nv, dhv := gr[j], gz[j], gn[j], dh[j]
		var hpv F
		if hp != nil {
			hpv = hp[j]
			dh[j] = flushSubnormal(dhv*zv, tiny)
		}
		dnp := dhv * (1 - zv) * (1 - nv*nv)
		gr[j] = dnp * hn[j] * rv * (1 - rv)
		gz[j] = dhv * (hpv - nv) * zv * (1 - zv)
		gn[j] = dnp * rv
		hn[j] = dnp
	}
}

// paramGrads adds the segment's share of the weight gradients (first: sets them): dW_hh and
// db_hh from the recurrent-side gradients, dW_ih and db_ih[2H:] from [dr, dz] and dn (db_ih[:2H]
// is db_hh[:2H], copied at the end).
func (gruSteps[F]) paramGrads(k *cpuRNN[F], r *rnnRun, sg *segment[F], dWih, dWhh, dBih, dBhh []F, first bool) {
	H, inl := k.s.hidden, k.s.layerIn(sg.l)
	gh := 3 * H
	beta := F(1)
	if first {
		beta = 0
	}
	n := sg.rows
	hp := k.alignPrev(r, sg)
	k.bigGemm(true, false, gh, H, n, sg.gates, gh, hp, H, beta, dWhh, H)
	k.colSums(dBhh, sg.gates, n, gh, gh, beta)
	k.bigGemm(true, false, 2*H, inl, n, sub(sg.gates, 0, 0, gh, n, 2*H), gh, sg.x, inl, beta, dWih[:2*H*inl], inl)
	k.bigGemm(true, false, H, inl, n, sg.hn, H, sg.x, inl, beta, dWih[2*H*inl:], inl)
	k.colSums(dBih[2*H:], sg.hn, n, H, H, beta)
}

// inputGrad sets (beta 0) or adds to (beta 1) dX, the segment's rows of the input
// gradient, its direction's share: [dr, dz] W_ih[:2H] + dn W_ih[2H:].
func (gruSteps[F]) inputGrad(k *cpuRNN[F], sg *segment[F], wih, dX []F, beta F) {
	H, inl, n := k.s.hidden, k.s.layerIn(sg.l), sg.rows
	gh := 3 * H
	k.bigGemm(false, false, n, inl, 2*H, sub(sg.gates, 0, 0, gh, n, 2*H), gh, wih[:2*H*inl], inl, beta, dX, inl)
	k.bigGemm(false, false, n, inl, H, sg.hn, H, wih[2*H*inl:], inl, 1, dX, inl)
}

// tieBiasGrads sets db_ih[:2H] = db_hh[:2H] (the r and z biases add up before the cell).
func (gruSteps[F]) tieBiasGrads(dBih, dBhh []F, H int) { copy(dBih[:2*H], dBhh[:2*H]) }
