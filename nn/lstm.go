package nn

import (
	G "gorgonia.org/gorgonia"
)

// LSTM is a fused multi-layer, optionally bidirectional LSTM over packed sequences: PyTorch's
// nn.LSTM run on a pack_padded_sequence batch (enforce_sorted=True), as one Gorgonia op with
// a hand-written backward pass (BPTT).
//
// Semantics, as PyTorch's:
//   - each sequence stops at its true length: its final state is the state at that length, and
//     no work is spent on padding (at step t only the sequences still running are computed);
//   - the reverse direction of sequence b starts at its last real step, len_b-1, from a zero
//     state, and ends at step 0;
//   - with dropout p, the inputs of layers 2..n are dropped (and the kept ones scaled by
//     1/(1-p)) in Train mode only; the masks come from the *RNG given to Forward;
//   - the gates are i, f, g, o:  i = σ(W_ii x + b_ii + W_hi h + b_hi), f likewise with σ,
//     g likewise with tanh, o likewise with σ;  c' = f⊙c + i⊙g;  h' = o⊙tanh(c').
//
// Parameters are named and shaped as PyTorch's state_dict names and shapes them, under a
// prefix: prefix+"weight_ih_l0" [4H, in], "weight_hh_l0" [4H, H], "bias_ih_l0" [4H],
// "bias_hh_l0" [4H], then the same with "_reverse" for the backward direction, then layer 1,
// and so on; the rows of each are the i, f, g, o blocks. Weights therefore move between the
// two frameworks unchanged.
type LSTM struct{ s *rnnStack }

// NewLSTM returns an LSTM with zero weights (call Init, or load weights into Params). inputDim
// is the input width, hidden the state size H, layers the depth; dropout, in [0, 1), is
// applied between layers in training. Its ops compute on dev. The input gradient is computed
// (the LSTM normally sits on a trainable embedding); SetInputGrad(false) turns it off.
func NewLSTM(dev *CPU, prefix string, inputDim, hidden, layers int, bidirectional bool, dropout float64) (*LSTM, error) {
	s, err := newRNNStack(cellLSTM, dev, prefix, inputDim, hidden, layers, bidirectional, dropout, true)
	if err != nil {
		return nil, err
	}
	return &LSTM{s}, nil
}

// Params returns the parameters in PyTorch's state_dict order.
func (l *LSTM) Params() []*Param { return append([]*Param(nil), l.s.params...) }

// Init draws every weight and bias from U(-1/sqrt(H), 1/sqrt(H)), PyTorch's default.
func (l *LSTM) Init(rng *RNG) { l.s.initParams(rng) }

// OutputDim is the width of Forward's outputs: H, or 2H when bidirectional.
func (l *LSTM) OutputDim() int { return l.s.dirs * l.s.hidden }

// SetInputGrad says whether the backward pass computes the gradient of Forward's input x. Turn
// it off when x needs none (frozen features): it saves a large matrix product.
func (l *LSTM) SetInputGrad(on bool) { l.s.inputGrad = on }

// Forward adds the LSTM to x's graph and returns the last layer's final states, (B, H) or,
// when bidirectional, (B, 2H) = [forward | backward] (PyTorch's torch.cat((h_n[-2], h_n[-1]),
// 1)), and, when seq is true, the last layer's output sequence (T*B, dirs*H), time-major
// (row t*B+b is sequence b at step t), zero on padding; outputs is nil when seq is false.
//
// x is (T*B, inputDim) float32, time-major and padded to T steps; lengths holds the B true
// lengths, longest first, each in 1..T. rng draws the dropout masks (Train mode, dropout > 0,
// two layers or more); it may be nil otherwise.
//
// The parameters enter the graph as nodes named Param.Name bound to Param.Value: Forward uses
// such nodes when the graph has them, and adds them otherwise. Gorgonia's Grad gives each its
// gradient the ordinary way. The layer serves one graph at a time: a newer Forward makes the
// older graph's ops fail. The values its ops return (the output sequence, the input and
// parameter gradients) are the layer's own buffers, valid until the next Forward's graph runs.
func (l *LSTM) Forward(x *G.Node, lengths []int, T int, mode Mode, rng *RNG, seq bool) (final, outputs *G.Node, err error) {
	if x == nil {
		return l.s.forward(nil, nil, lengths, T, mode, rng, seq)
	}
	w, err := l.s.bindParams(x.Graph())
	if err != nil {
		return nil, nil, err
	}
	return l.s.forward(x, w, lengths, T, mode, rng, seq)
}

// ---------------------------------------------------------------------------- CPU kernels

// lstmForwardDir runs direction d of layer l over the packed input X (N*in_l): the input
// projection of all steps in one product, then the recurrence step by step, each step one
// product over the sequences still running and the cell arithmetic. It keeps the gate
// activations and cell states for the backward pass and writes h into the layer output.
func (k *cpuRNN[F]) lstmForwardDir(r *rnnRun, l, d int, X, wih, whh, bih, bhh []F) {
	s := k.s
	H, W, N, inl := s.hidden, s.dirs*s.hidden, r.N, s.layerIn(l)
	gh := 4 * H
	L, dr := &k.lay[l], &k.dir[d]
	gates, cs, hc := L.gates[d][:N*gh], L.aux[d][:N*H], L.hcat
	gemm(k.bl, false, true, N, gh, inl, 1, X, inl, wih, inl, 0, gates, gh)
	for j := range dr.bias {
		dr.bias[j] = bih[j] + bhh[j]
	}
	for step := 0; step < r.T; step++ {
		t := r.stepAt(step, d)
		n := r.nb[t]
		if n == 0 {
			continue
		}
		row := r.off[t]
		prow, m := r.prevStep(t, d)
		if m > 0 {
			gemm(k.bl, false, true, m, gh, H, 1, sub(hc, prow, d*H, W, m, H), W, whh, H, 1, sub(gates, row, 0, gh, m, gh), gh)
		}
		for b := 0; b < n; b++ {
			var cp []F
			if b < m {
				cp = cs[(prow+b)*H : (prow+b+1)*H]
			}
			h := hc[(row+b)*W+d*H : (row+b)*W+(d+1)*H]
			lstmCellForward(gates[(row+b)*gh:(row+b+1)*gh], dr.bias, cp, cs[(row+b)*H:(row+b+1)*H], h, dr.tmp)
		}
	}
}

// lstmCellForward turns one row's gate pre-activations g (4H, without bias) into activations
// in place and computes the cell state c and hidden state h from the previous cell state cp
// (nil: zero).
func lstmCellForward[F float](g, bias, cp, c, h, tmp []F) {
	H := len(c)
	g, bias = g[:4*H], bias[:4*H]
	for j := range g {
		g[j] += bias[j]
	}
	sigmoidInPlace(g[:2*H])
	tanhInPlace(g[2*H : 3*H])
	sigmoidInPlace(g[3*H:])
	gi, gf, gg, gout := g[:H], g[H:2*H], g[2*H:3*H], g[3*H:4*H]
	if cp != nil {
		cp = cp[:H]
		for j := range c {
			c[j] = gf[j]*cp[j] + gi[j]*gg[j]
		}
	} else {
		for j := range c {
			c[j] = gi[j] * gg[j]
		}
	}
	tmp = tmp[:H]
	tanhTo(tmp, c)
	h = h[:H]
	for j := range h {
		h[j] = gout[j] * tmp[j]
	}
}

// lstmBackwardDir is the backward pass of direction d of layer l. dH (N*dirs*H) holds the
// gradient of the layer's output; this direction adds into its own half the recurrent
// gradient of each step's previous state, just before that step is processed. The gate
// gradients replace the activations in the gates buffer, and the weight gradients are then
// three products over all steps at once.
func (k *cpuRNN[F]) lstmBackwardDir(r *rnnRun, l, d int, X, whh, dH, dWih, dWhh, dBih, dBhh []F) {
	s := k.s
	H, W, N, inl := s.hidden, s.dirs*s.hidden, r.N, s.layerIn(l)
	gh := 4 * H
	L, dr := &k.lay[l], &k.dir[d]
	gates, cs, hc := L.gates[d][:N*gh], L.aux[d][:N*H], L.hcat
	carry := dr.carry
	for step := r.T - 1; step >= 0; step-- {
		t := r.stepAt(step, d)
		n := r.nb[t]
		if n == 0 {
			continue
		}
		row := r.off[t]
		prow, m := r.prevStep(t, d)
		// Sequences whose backward pass starts here have no cell-state gradient yet.
		if d == 0 {
			clear(carry[r.nb[t+1]*H : n*H])
		} else if t == 0 {
			clear(carry[:n*H])
		}
		for b := 0; b < n; b++ {
			var cp []F
			if b < m {
				cp = cs[(prow+b)*H : (prow+b+1)*H]
			}
			dh := dH[(row+b)*W+d*H : (row+b)*W+(d+1)*H]
			lstmCellBackward(gates[(row+b)*gh:(row+b+1)*gh], cs[(row+b)*H:(row+b+1)*H], cp, dh, carry[b*H:(b+1)*H], dr.tmp)
		}
		if m > 0 {
			gemm(k.bl, false, false, m, H, gh, 1, sub(gates, row, 0, gh, m, gh), gh, whh, H, 1, sub(dH, prow, d*H, W, m, H), W)
		}
	}
	// The cell states are no longer needed: their buffer takes h_{t-1} aligned with each row.
	hp := cs
	k.alignPrev(hp, hc, r, d)
	gemm(k.bl, true, false, gh, H, N, 1, gates, gh, hp, H, 0, dWhh, H)
	gemm(k.bl, true, false, gh, inl, N, 1, gates, gh, X, inl, 0, dWih, inl)
	k.colSums(dBih, gates, N, gh, gh, 0)
	copy(dBhh, dBih)
}

// lstmCellBackward turns one row's gate activations g into the gradients of the gate
// pre-activations, given the gradient dh of h, the cell states c and cp (previous; nil: zero)
// and dc, the gradient of c from the step after; dc becomes the gradient of cp.
func lstmCellBackward[F float](g, c, cp, dh, dc, tmp []F) {
	H := len(c)
	g, dh, dc, tmp = g[:4*H], dh[:H], dc[:H], tmp[:H]
	tanhTo(tmp, c)
	gi, gf, gg, gout := g[:H], g[H:2*H], g[2*H:3*H], g[3*H:4*H]
	if cp == nil {
		cp = tmp[:0]
	}
	for j := range tmp {
		i, f, gv, o, tc := gi[j], gf[j], gg[j], gout[j], tmp[j]
		dcv := dc[j] + dh[j]*o*(1-tc*tc)
		gout[j] = dh[j] * tc * o * (1 - o)
		gi[j] = dcv * gv * i * (1 - i)
		gg[j] = dcv * i * (1 - gv*gv)
		if len(cp) > 0 {
			gf[j] = dcv * cp[j] * f * (1 - f)
		} else {
			gf[j] = 0
		}
		dc[j] = dcv * f
	}
}

// lstmInputGrad sets (or, with acc, adds to) rows [lo, hi) of dX (N*in_l) the input gradient
// of direction d of layer l: dGates W_ih.
func (k *cpuRNN[F]) lstmInputGrad(l, d, lo, hi, inl int, wih, dX []F, acc bool) {
	gh := 4 * k.s.hidden
	beta := F(0)
	if acc {
		beta = 1
	}
	gates := k.lay[l].gates[d]
	gemm(k.bl, false, false, hi-lo, inl, gh, 1, sub(gates, lo, 0, gh, hi-lo, gh), gh, wih, inl, beta, sub(dX, lo, 0, inl, hi-lo, inl), inl)
}
