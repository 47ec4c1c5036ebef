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
// arguments are NewLSTM's. inputGrad says whether the backward pass computes the gradient of
// the input: false for frozen features (the bigru head over an encoder), which saves the
// largest matrix product of the first layer.
func NewGRU(dev *CPU, prefix string, inputDim, hidden, layers int, bidirectional bool, dropout float64, inputGrad bool) (*GRU, error) {
	s, err := newRNNStack(cellGRU, dev, prefix, inputDim, hidden, layers, bidirectional, dropout, inputGrad)
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

// Forward adds the GRU to x's graph; arguments, results and lifetimes are LSTM.Forward's.
func (l *GRU) Forward(x *G.Node, lengths []int, T int, mode Mode, rng *RNG, seq bool) (final, outputs *G.Node, err error) {
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

// gruForwardDir runs direction d of layer l over the packed input X: the input projection of
// all steps in one product, then per step the recurrent product W_hh h over the running
// sequences and the cell arithmetic. The gates buffer keeps r, z, n and aux keeps
// W_hn h + b_hn for the backward pass.
func (k *cpuRNN[F]) gruForwardDir(r *rnnRun, l, d int, X, wih, whh, bih, bhh []F) {
	s := k.s
	H, W, N, inl := s.hidden, s.dirs*s.hidden, r.N, s.layerIn(l)
	gh := 3 * H
	L, dr := &k.lay[l], &k.dir[d]
	gates, hn, hc := L.gates[d][:N*gh], L.aux[d][:N*H], L.hcat
	k.bigGemm(false, true, N, gh, inl, X, inl, wih, inl, gates, gh)
	transposeTo(dr.whhT, whh, gh, H)
	for step := 0; step < r.T; step++ {
		t := r.stepAt(step, d)
		n := r.nb[t]
		if n == 0 {
			continue
		}
		row := r.off[t]
		prow, m := r.prevStep(t, d)
		if m > 0 {
			gemm(k.bl, false, false, m, gh, H, 1, sub(hc, prow, d*H, W, m, H), W, dr.whhT, gh, 0, dr.step[:m*gh], gh)
		}
		for b := 0; b < n; b++ {
			var rec, hp []F
			if b < m {
				rec = dr.step[b*gh : (b+1)*gh]
				hp = hc[(prow+b)*W+d*H : (prow+b)*W+(d+1)*H]
			}
			h := hc[(row+b)*W+d*H : (row+b)*W+(d+1)*H]
			gruCellForward(gates[(row+b)*gh:(row+b+1)*gh], rec, bih, bhh, hp, hn[(row+b)*H:(row+b+1)*H], h)
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
	gr, gz, gn := g[:H], g[H:2*H], g[2*H:3*H]
	bin := bih[2*H:]
	for j := range gn {
		gn[j] += bin[j] + gr[j]*hn[j]
	}
	tanhInPlace(gn)
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

// gruBackwardDir is the backward pass of direction d of layer l (see lstmBackwardDir). Each
// row's gates become the gradients of the recurrent pre-activations, [dr, dz, dn⊙r] (what
// W_hh and b_hh see), and aux becomes dn, the n-gate's input-side gradient, so that the input
// side's gradients are [dr, dz, dn].
func (k *cpuRNN[F]) gruBackwardDir(r *rnnRun, l, d int, X, whh, dH, dWih, dWhh, dBih, dBhh []F) {
	s := k.s
	H, W, N, inl := s.hidden, s.dirs*s.hidden, r.N, s.layerIn(l)
	gh := 3 * H
	L, dr := &k.lay[l], &k.dir[d]
	gates, hn, hc := L.gates[d][:N*gh], L.aux[d][:N*H], L.hcat
	for step := r.T - 1; step >= 0; step-- {
		t := r.stepAt(step, d)
		n := r.nb[t]
		if n == 0 {
			continue
		}
		row := r.off[t]
		prow, m := r.prevStep(t, d)
		for b := 0; b < n; b++ {
			var hp, dhp []F
			if b < m {
				hp = hc[(prow+b)*W+d*H : (prow+b)*W+(d+1)*H]
				dhp = dH[(prow+b)*W+d*H : (prow+b)*W+(d+1)*H]
			}
			dh := dH[(row+b)*W+d*H : (row+b)*W+(d+1)*H]
			gruCellBackward(gates[(row+b)*gh:(row+b+1)*gh], hn[(row+b)*H:(row+b+1)*H], hp, dh, dhp)
		}
		if m > 0 {
			gemm(k.bl, false, false, m, H, gh, 1, sub(gates, row, 0, gh, m, gh), gh, whh, H, 1, sub(dH, prow, d*H, W, m, H), W)
		}
	}
	hp := dr.hprev[:N*H]
	k.alignPrev(hp, hc, r, d)
	k.bigGemm(true, false, gh, H, N, gates, gh, hp, H, dWhh, H)
	k.colSums(dBhh, gates, N, gh, gh, 0)
	k.bigGemm(true, false, 2*H, inl, N, sub(gates, 0, 0, gh, N, 2*H), gh, X, inl, dWih[:2*H*inl], inl)
	k.bigGemm(true, false, H, inl, N, hn, H, X, inl, dWih[2*H*inl:], inl)
	copy(dBih[:2*H], dBhh[:2*H])
	k.colSums(dBih[2*H:], hn, N, H, H, 0)
}

// gruCellBackward turns one row's activations g = [r, z, n] into [dr, dz, dn⊙r] (gradients of
// the pre-activations) and hn (W_hn h_prev + b_hn) into dn, given the gradient dh of the new
// state and the previous state hp (nil: zero); it adds the direct part of h_prev's gradient,
// dh⊙z, to dhp.
func gruCellBackward[F float](g, hn, hp, dh, dhp []F) {
	H := len(dh)
	g, hn = g[:3*H], hn[:H]
	gr, gz, gn := g[:H], g[H:2*H], g[2*H:3*H]
	if hp != nil {
		hp, dhp = hp[:H], dhp[:H]
	}
	for j := range dh {
		rv, zv, nv, dhv := gr[j], gz[j], gn[j], dh[j]
		var hpv F
		if hp != nil {
			hpv = hp[j]
			dhp[j] += dhv * zv
		}
		dnp := dhv * (1 - zv) * (1 - nv*nv)
		gr[j] = dnp * hn[j] * rv * (1 - rv)
		gz[j] = dhv * (hpv - nv) * zv * (1 - zv)
		gn[j] = dnp * rv
		hn[j] = dnp
	}
}

// gruInputGrad sets (or, with acc, adds to) rows [lo, hi) of dX the input gradient of
// direction d of layer l: [dr, dz] W_ih[:2H] + dn W_ih[2H:].
func (k *cpuRNN[F]) gruInputGrad(l, d, lo, hi, inl int, wih, dX []F, acc bool) {
	H := k.s.hidden
	gh := 3 * H
	beta := F(0)
	if acc {
		beta = 1
	}
	gates, hn := k.lay[l].gates[d], k.lay[l].aux[d]
	rows := hi - lo
	dx := sub(dX, lo, 0, inl, rows, inl)
	gemm(k.bl, false, false, rows, inl, 2*H, 1, sub(gates, lo, 0, gh, rows, 2*H), gh, wih[:2*H*inl], inl, beta, dx, inl)
	gemm(k.bl, false, false, rows, inl, H, 1, sub(hn, lo, 0, H, rows, H), H, wih[2*H*inl:], inl, 1, dx, inl)
}
