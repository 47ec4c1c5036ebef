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

// SetMaxActivationBytes sets the activation budget: the most bytes the op's buffers of one
// batch take, n (≤ 0: no limit; the default is DefaultMaxActivationBytes). For its backward
// pass a training batch keeps the gate activations of every time step, 4H floats per token,
// layer and direction, besides the layer outputs that feed the next layer and, backwards,
// their gradient (dirs×H floats per token each), the states where each segment of the batch
// begins (a segment: consecutive steps of about 2,048 tokens) and a segment's scratch. When
// all of it does not fit in n bytes, the op keeps the activations of as many segments as fit
// and recomputes the others in the backward pass from their saved states: one more forward
// pass over those segments, at most a third more arithmetic for the batch. The results are
// the same, bit for bit, either way. Only a batch whose layer outputs and gradients alone
// exceed n takes more (then it keeps no activation). Eval mode keeps no activations.
//
// Outside the budget: the op's results (the output, T×B×dirs×H for a sequence, and the input
// gradient, T×B×in) and the dropout masks (bits).
func (l *LSTM) SetMaxActivationBytes(n int64) { l.s.maxActBytes = n }

// MaxActivationBytes returns the activation budget (see SetMaxActivationBytes).
func (l *LSTM) MaxActivationBytes() int64 { return l.s.maxActBytes }

// Forward adds the LSTM to x's graph and returns the last layer's final states, (B, H) or,
// when bidirectional, (B, 2H) = [forward | backward] (PyTorch's torch.cat((h_n[-2], h_n[-1]),
// 1)). ForwardSequence returns the output sequence as well.
//
// x is (T*B, inputDim) float32, time-major and padded to T steps; lengths holds the B true
// lengths, longest first, each in 1..T. rng draws the dropout masks (Train mode, dropout > 0,
// two layers or more); it may be nil otherwise.
//
// The parameters enter the graph as input nodes named Param.Name whose value is Param.Value
// itself (no copy): Forward uses such nodes when the graph has them, and adds them otherwise.
// gorgonia.Grad gives each its gradient the ordinary way (with BindDualValues, node.Grad()).
// In Train mode the dropout masks are drawn here, when the graph is built.
//
// The layer serves one graph at a time: a newer Forward makes the older graph's ops fail. The
// values its ops return (the final states, the output sequence, the input and parameter
// gradients) are the layer's own buffers, valid until its next graph runs.
func (l *LSTM) Forward(x *G.Node, lengths []int, T int, mode Mode, rng *RNG) (final *G.Node, err error) {
	final, _, err = l.s.forwardBound(x, lengths, T, mode, rng, false)
	return final, err
}

// ForwardSequence is Forward that also returns the last layer's output sequence (T*B, dirs*H),
// time-major (row t*B+b is sequence b at step t), zero on padding.
func (l *LSTM) ForwardSequence(x *G.Node, lengths []int, T int, mode Mode, rng *RNG) (final, outputs *G.Node, err error) {
	return l.s.forwardBound(x, lengths, T, mode, rng, true)
}

// ---------------------------------------------------------------------------- the cell

// lstmCell is the LSTM's cellKind.
type lstmCell struct{}

func (lstmCell) String() string     { return "LSTM" }
func (lstmCell) gates() int         { return 4 }
func (lstmCell) actBlocks() int     { return 4 }
func (lstmCell) hasCellState() bool { return true }

// lstmSteps are the LSTM's cellSteps.
type lstmSteps[F float] struct{}

// forwardSegment runs the LSTM over one segment (see cpuRNN): the input projection of the
// segment's rows in one product, then the recurrence step by step, each step one product over
// the sequences still running and the cell arithmetic. It leaves the gate activations in
// sg.gates and the states in sg.h, sg.c and sg.tc. The backward pass runs it again, on the
// same inputs, to recompute a segment whose activations were not kept.
func (lstmSteps[F]) forwardSegment(k *cpuRNN[F], r *rnnRun, sg *segment[F], wih, _, _ []F) {
	H, inl := k.s.hidden, k.s.layerIn(sg.l)
	gh := 4 * H
	dr := &k.dir[sg.d]
	k.bigGemm(false, true, sg.rows, gh, inl, sg.x, inl, wih, inl, 0, sg.gates, gh)
	for i := 0; i < sg.t1-sg.t0; i++ {
		t := sg.stepAt(i)
		lr := r.off[t] - sg.r0
		hp, cp, m := sg.prev(r, t, H)
		if m > 0 {
			gemm(k.bl, false, false, m, gh, H, 1, hp, H, dr.whhT, gh, 1, sg.gates[lr*gh:(lr+m)*gh], gh)
		}
		for b := 0; b < r.nb[t]; b++ {
			var cpb []F
			if b < m {
				cpb = cp[b*H : (b+1)*H]
			}
			row := lr + b
			lstmCellForward(sg.gates[row*gh:(row+1)*gh], dr.bias, cpb, sg.c[row*H:(row+1)*H], sg.tc[row*H:(row+1)*H], sg.h[row*H:(row+1)*H])
		}
	}
}

// segmentStates recomputes the states of a segment whose gate activations were kept: the
// cell arithmetic of forwardSegment without the products.
func (lstmSteps[F]) segmentStates(k *cpuRNN[F], r *rnnRun, sg *segment[F]) {
	H := k.s.hidden
	gh := 4 * H
	for i := 0; i < sg.t1-sg.t0; i++ {
		t := sg.stepAt(i)
		lr := r.off[t] - sg.r0
		_, cp, m := sg.prev(r, t, H)
		for b := 0; b < r.nb[t]; b++ {
			var cpb []F
			if b < m {
				cpb = cp[b*H : (b+1)*H]
			}
			row := lr + b
			lstmCellState(sg.gates[row*gh:(row+1)*gh], cpb, sg.c[row*H:(row+1)*H], sg.tc[row*H:(row+1)*H], sg.h[row*H:(row+1)*H])
		}
	}
}

// lstmCellForward turns one row's gate pre-activations g (4H, without bias) into activations
// in place and computes the cell state c, tanh(c) and the hidden state h from the previous
// cell state cp (nil: zero).
func lstmCellForward[F float](g, bias, cp, c, tc, h []F) {
	H := len(c)
	g, bias = g[:4*H], bias[:4*H]
	for j := range g {
		g[j] += bias[j]
	}
	sigmoidInPlace(g[:2*H])
	tanhInPlace(g[2*H : 3*H])
	sigmoidInPlace(g[3*H:])
	lstmCellState(g, cp, c, tc, h)
}

// lstmCellState computes, from one row's gate activations g = [i, f, g, o] and the previous
// cell state cp (nil: zero), the cell state c = f⊙cp + i⊙g, tc = tanh(c) and h = o⊙tc.
func lstmCellState[F float](g, cp, c, tc, h []F) {
	H := len(c)
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
	tc = tc[:H]
	tanhTo(tc, c)
	h = h[:H]
	for j := range h {
		h[j] = gout[j] * tc[j]
	}
}

// backwardSegment is BPTT through one segment, its steps in reverse order. The carried
// gradients of h and c (the direction's dh and dc, one row per sequence) come in from the
// segment processed before (the later steps) and go out to the next; startStep adds each
// step's output gradient. The gate gradients replace the activations in sg.gates.
func (lstmSteps[F]) backwardSegment(k *cpuRNN[F], r *rnnRun, sg *segment[F], whh []F, og *outGrad[F]) {
	H := k.s.hidden
	gh := 4 * H
	dr := &k.dir[sg.d]
	for i := sg.t1 - sg.t0 - 1; i >= 0; i-- {
		t := sg.stepAt(i)
		lr := r.off[t] - sg.r0
		k.startStep(r, sg, t, og)
		_, cp, m := sg.prev(r, t, H)
		for b := 0; b < r.nb[t]; b++ {
			var cpb []F
			if b < m {
				cpb = cp[b*H : (b+1)*H]
			}
			row := lr + b
			lstmCellBackward(sg.gates[row*gh:(row+1)*gh], sg.tc[row*H:(row+1)*H], cpb, dr.dh[b*H:(b+1)*H], dr.dc[b*H:(b+1)*H])
		}
		// The gradient of the previous step's h: dGates W_hh.
		if m > 0 {
			gemm(k.bl, false, false, m, H, gh, 1, sg.gates[lr*gh:(lr+m)*gh], gh, whh, H, 0, dr.dh[:m*H], H)
		}
	}
}

// lstmCellBackward turns one row's gate activations g into the gradients of the gate
// pre-activations, given tc = tanh(c), the previous cell state cp (nil: zero), the gradient
// dh of h and dc, the gradient of c from the step after; dc becomes the gradient of cp.
func lstmCellBackward[F float](g, tc, cp, dh, dc []F) {
	H := len(tc)
	g, dh, dc = g[:4*H], dh[:H], dc[:H]
	gi, gf, gg, gout := g[:H], g[H:2*H], g[2*H:3*H], g[3*H:4*H]
	if cp == nil {
		cp = tc[:0]
	}
	tiny := smallestNormal[F]() // the carried gradient is flushed: see denormal.go
	for j := range tc {
		i, f, gv, o, tcv := gi[j], gf[j], gg[j], gout[j], tc[j]
		dcv := dc[j] + dh[j]*o*(1-tcv*tcv)
		gout[j] = dh[j] * tcv * o * (1 - o)
		gi[j] = dcv * gv * i * (1 - i)
		gg[j] = dcv * i * (1 - gv*gv)
		if len(cp) > 0 {
			gf[j] = dcv * cp[j] * f * (1 - f)
		} else {
			gf[j] = 0
		}
		dc[j] = flushSubnormal(dcv*f, tiny)
	}
}

// paramGrads adds the segment's share of the weight gradients, three products over its
// rows: dW_hh += dGatesᵀ h_{t-1}, dW_ih += dGatesᵀ x, db_ih += column sums of dGates (first: set
// them instead; db_hh is db_ih, copied at the end).
func (lstmSteps[F]) paramGrads(k *cpuRNN[F], r *rnnRun, sg *segment[F], dWih, dWhh, dBih, _ []F, first bool) {
	H, inl := k.s.hidden, k.s.layerIn(sg.l)
	gh := 4 * H
	beta := F(1)
	if first {
		beta = 0
	}
	hp := k.alignPrev(r, sg)
	k.bigGemm(true, false, gh, H, sg.rows, sg.gates, gh, hp, H, beta, dWhh, H)
	k.bigGemm(true, false, gh, inl, sg.rows, sg.gates, gh, sg.x, inl, beta, dWih, inl)
	k.colSums(dBih, sg.gates, sg.rows, gh, gh, beta)
}

// inputGrad sets (beta 0) or adds to (beta 1) dX, the segment's rows of the input
// gradient, its direction's share: dGates W_ih.
func (lstmSteps[F]) inputGrad(k *cpuRNN[F], sg *segment[F], wih, dX []F, beta F) {
	inl, gh := k.s.layerIn(sg.l), 4*k.s.hidden
	k.bigGemm(false, false, sg.rows, inl, gh, sg.gates, gh, wih, inl, beta, dX, inl)
}

// tieBiasGrads sets db_hh = db_ih (the two biases add up before the cell).
func (lstmSteps[F]) tieBiasGrads(dBih, dBhh []F, _ int) { copy(dBhh, dBih) }
