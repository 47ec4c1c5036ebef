package gpu

// The layers' device code: the recurrent stack (LSTM, GRU) and the text CNN, forward and
// backward, as sequences of GEMMs and kernels. Each mirrors its CPU op in package nn (rnn.go,
// lstm.go, gru.go, textcnn.go): the same packed layout and the same equations; see kernels.cu
// for the buffers' layout.

// rnnState is what a recurrent stack's forward pass keeps for its backward pass, per layer.
type rnnState struct {
	gates, aux, hcat, x []uintptr // x[l] is layer l's input (dropped out for l >= 1 in training)
}

// cnnState is what the text CNN's forward pass keeps.
type cnnState struct {
	x, conv, pooled, arg uintptr
	wf                   []uintptr // each width's weights as [F][w*E]
}

func beta(acc bool) float32 {
	if acc {
		return 1
	}
	return 0
}

// rnnForward queues the recurrent stack over the packed layer-0 input st.x0 and returns the last
// layer's final states [B][D*H].
func (t *Trainer) rnnForward(q *queue, st *stepState) uintptr {
	r, l := t.rnn, &t.lay
	N, B, T := int64(l.N), l.B, l.T
	H, D, W, GH := r.H, r.D, r.D*r.H, r.gates*r.H
	rs := &st.rnn
	rs.gates, rs.aux, rs.hcat, rs.x = make([]uintptr, r.L), make([]uintptr, r.L), make([]uintptr, r.L), make([]uintptr, r.L)
	hs := q.alloc(int64(D * B * H)) // each sequence's h (and c): zero before it starts
	var cs uintptr
	if r.hasCellState {
		cs = q.alloc(int64(D * B * H))
	}
	rec := q.alloc(int64(D * B * GH))
	for layer := 0; layer < r.L; layer++ {
		X, inl := st.x0, r.in
		if layer > 0 {
			X, inl = rs.hcat[layer-1], W
			if st.train && t.drop.mid > 0 {
				X = t.dropout(q, st, siteMid+layer, t.drop.mid, q.alloc(N*int64(W)), X, N*int64(W))
			}
		}
		p := r.p[layer*D] // the forward direction's; the reverse's are r.s* further
		gates, aux, hcat := q.alloc(int64(D)*N*int64(GH)), q.alloc(int64(D)*N*int64(H)), q.alloc(N*int64(W))
		rs.x[layer], rs.gates[layer], rs.aux[layer], rs.hcat[layer] = X, gates, aux, hcat
		// The input projection of every step, both directions: gates_d = X W_ih_d^T.
		q.gemm(false, true, int(N), GH, inl, 1, X, inl, 0, t.pw(p[pWih]), inl, r.stride[layer], 0, gates, GH, N*int64(GH), D)
		q.fill(hs, int64(D*B*H), 0)
		if r.hasCellState {
			q.fill(cs, int64(D*B*H), 0)
		}
		for s := 0; s < T; s++ {
			d0 := dir{row: int(l.off[s]), n: int(l.nb[s])}
			var d1 dir
			if D == 2 {
				d1 = dir{row: int(l.off[T-1-s]), n: int(l.nb[T-1-s])}
			}
			mx := max(d0.n, d1.n)
			// rec_d = h_d W_hh_d^T over the rows of either direction's step (the other's extra rows
			// are never read; sequences that have not started have h = 0).
			q.gemm(false, true, mx, GH, H, 1, hs, H, int64(B*H), t.pw(p[pWhh]), H, r.stride[layer], 0, rec, GH, int64(B*GH), D)
			if r.gru {
				q.launch("gru_fwd_cell", gridFor(int64(mx*H)), D, gates, N*int64(GH), rec, int64(B*GH), t.pw(p[pBih]), t.pw(p[pBhh]),
					r.stride[layer], aux, N*int64(H), hs, hcat, H, B, W, d0, d1)
			} else {
				q.launch("lstm_fwd_cell", gridFor(int64(mx*H)), D, gates, N*int64(GH), rec, int64(B*GH), t.pw(p[pBih]), t.pw(p[pBhh]),
					r.stride[layer], aux, N*int64(H), cs, hs, hcat, H, B, W, d0, d1)
			}
		}
	}
	final := q.alloc(int64(B * W))
	q.launch("rnn_final", gridFor(int64(D*B*H)), 1, final, hs, B, H, D)
	return final
}

// bwdDir describes step t of direction d for the backward cell kernels.
func (t *Trainer) bwdDir(tt, d int) dir {
	l := &t.lay
	prow, m := l.prev(tt, d)
	return dir{row: int(l.off[tt]), n: int(l.nb[tt]), prow: prow, m: m, cont: l.cont(tt, d)}
}

// rnnBackward queues the recurrent stack's backward pass from the gradient of its final states
// [B][D*H]: every parameter's gradient, and the packed input gradient [N][in] (0 when the input
// needs none).
func (t *Trainer) rnnBackward(q *queue, st *stepState, dfinal uintptr) uintptr {
	r, l := t.rnn, &t.lay
	N, B, T := int64(l.N), l.B, l.T
	H, D, W, GH := r.H, r.D, r.D*r.H, r.gates*r.H
	rs := &st.rnn
	dH := q.zeros(N * int64(W)) // the gradient of the current layer's output
	q.launch("rnn_final_bwd", gridFor(int64(D*B*H)), 1, dH, dfinal, st.at(st.last), B, H, D)
	dprev := q.alloc(int64(D * B * H)) // recurrent gradient of each sequence's previous state
	var carry uintptr
	if r.hasCellState {
		carry = q.alloc(int64(D * B * H)) // the cell state's gradient
	}
	dg := q.alloc(int64(D * B * GH)) // the step's gate gradients, dense, for the recurrent product
	hprev := q.alloc(int64(D) * N * int64(H))
	ones := q.alloc(N)
	q.fill(ones, N, 1)
	inputGrad := r.inputGrad && (t.emb == nil || t.trainable(t.emb.p))
	for layer := r.L - 1; layer >= 0; layer-- {
		p := r.p[layer*D]
		gates, aux, hcat, X := rs.gates[layer], rs.aux[layer], rs.hcat[layer], rs.x[layer]
		inl := r.in
		if layer > 0 {
			inl = W
		}
		q.fill(dprev, int64(D*B*H), 0)
		if r.hasCellState {
			q.fill(carry, int64(D*B*H), 0)
		}
		q.fill(dg, int64(D*B*GH), 0)
		for s := 0; s < T; s++ {
			d0 := t.bwdDir(T-1-s, 0)
			var d1 dir
			if D == 2 {
				d1 = t.bwdDir(s, 1)
			}
			mx, mm := max(d0.n, d1.n), max(d0.m, d1.m)
			// The cell, then the recurrent gradient of the rows that continue: dprev_d = dg_d W_hh_d
			// (the GRU adds it to the direct part its cell wrote).
			if r.gru {
				q.launch("gru_bwd_cell", gridFor(int64(mx*H)), D, gates, N*int64(GH), aux, N*int64(H), hcat, dH, dprev, dg, H, B, W, d0, d1)
			} else {
				q.launch("lstm_bwd_cell", gridFor(int64(mx*H)), D, gates, N*int64(GH), aux, N*int64(H), dH, dprev, carry, dg, H, B, W, d0, d1)
			}
			q.gemm(false, false, mm, H, GH, 1, dg, GH, int64(B*GH), t.pw(p[pWhh]), H, r.stride[layer], beta(r.gru), dprev, H, int64(B*H), D)
		}
		// The weight gradients, three products over all steps at once.
		q.launch("rnn_align_prev", gridFor(int64(D)*N*int64(H)), 1, hprev, hcat, st.at(st.rowT), st.at(st.nb), st.at(st.off), int(N), T, H, W, D)
		gWih, gWhh, gBih, gBhh := t.pg(p[pWih]), t.pg(p[pWhh]), t.pg(p[pBih]), t.pg(p[pBhh])
		q.gemm(true, false, GH, H, int(N), 1, gates, GH, N*int64(GH), hprev, H, N*int64(H), 0, gWhh, H, r.stride[layer], D)
		if r.gru {
			// gates holds [dr, dz, dn*r] (W_hh's side), aux holds dn (W_ih's side of the n gate).
			q.gemm(false, false, 1, GH, int(N), 1, ones, int(N), 0, gates, GH, N*int64(GH), 0, gBhh, GH, r.stride[layer], D)
			q.gemm(true, false, 2*H, inl, int(N), 1, gates, GH, N*int64(GH), X, inl, 0, 0, gWih, inl, r.stride[layer], D)
			q.gemm(true, false, H, inl, int(N), 1, aux, H, N*int64(H), X, inl, 0, 0, f32(gWih, int64(2*H*inl)), inl, r.stride[layer], D)
			for d := 0; d < D; d++ {
				q.copy(f32(gBih, int64(d)*r.stride[layer]), f32(gBhh, int64(d)*r.stride[layer]), int64(2*H))
			}
			q.gemm(false, false, 1, H, int(N), 1, ones, int(N), 0, aux, H, N*int64(H), 0, f32(gBih, int64(2*H)), H, r.stride[layer], D)
		} else {
			q.gemm(true, false, GH, inl, int(N), 1, gates, GH, N*int64(GH), X, inl, 0, 0, gWih, inl, r.stride[layer], D)
			q.gemm(false, false, 1, GH, int(N), 1, ones, int(N), 0, gates, GH, N*int64(GH), 0, gBih, GH, r.stride[layer], D)
			for d := 0; d < D; d++ {
				q.copy(f32(gBhh, int64(d)*r.stride[layer]), f32(gBih, int64(d)*r.stride[layer]), int64(GH))
			}
		}
		if layer == 0 && !inputGrad {
			return 0
		}
		// The input gradient: dX = sum over directions of the gate gradients times W_ih.
		dX := q.alloc(N * int64(inl))
		for d := 0; d < D; d++ {
			wih := t.pw(r.p[layer*D+d][pWih])
			if r.gru {
				q.gemm(false, false, int(N), inl, 2*H, 1, f32(gates, int64(d)*N*int64(GH)), GH, 0, wih, inl, 0, beta(d > 0), dX, inl, 0, 1)
				q.gemm(false, false, int(N), inl, H, 1, f32(aux, int64(d)*N*int64(H)), H, 0, f32(wih, int64(2*H*inl)), inl, 0, 1, dX, inl, 0, 1)
			} else {
				q.gemm(false, false, int(N), inl, GH, 1, f32(gates, int64(d)*N*int64(GH)), GH, 0, wih, inl, 0, beta(d > 0), dX, inl, 0, 1)
			}
		}
		if layer > 0 {
			t.dropout(q, st, siteMid+layer, t.drop.mid, dX, dX, N*int64(W))
		}
		dH = dX
	}
	return dH
}

// cnnForward queues the embedding and the text CNN and returns the pooled features [B][nW*F].
func (t *Trainer) cnnForward(q *queue, st *stepState, B int) uintptr {
	c, T := t.cnn, st.T
	E, F := c.E, c.F
	nWF := len(c.widths) * F
	rows := int64(B * T)
	cs := &st.cnn
	cs.x = q.alloc(rows * int64(E))
	q.launch("embed_gather", gridFor(rows*int64(E)), 1, cs.x, t.pw(t.emb.p), st.at(st.ids), rows, E)
	cs.conv = q.alloc(rows * int64(nWF))
	cs.wf = make([]uintptr, len(c.widths))
	for i, w := range c.widths {
		cs.wf[i] = q.alloc(int64(F * w * E))
		q.launch("cnn_pack_weights", gridFor(int64(F*E*w)), 1, cs.wf[i], t.pw(c.w[i]), F, E, w)
		// Tap k of every window at once: conv[p] += x[p+k] wf[:, k*E:(k+1)*E]^T, for the windows that
		// fit in the batch (the others are never pooled).
		R := B*T - w + 1
		for k := 0; k < w; k++ {
			q.gemm(false, true, R, F, E, 1, f32(cs.x, int64(k*E)), E, 0, f32(cs.wf[i], int64(k*E)), w*E, 0,
				beta(k > 0), f32(cs.conv, int64(i*F)), nWF, 0, 1)
		}
	}
	cs.pooled, cs.arg = q.alloc(int64(B*nWF)), q.alloc(int64(B*nWF))
	for i, w := range c.widths {
		q.launch("cnn_pool", gridFor(int64(B*F)), 1, cs.pooled, cs.arg, cs.conv, t.pw(c.b[i]), st.at(st.lens), B, T, F, nWF, i*F, w, c.minLen)
	}
	return cs.pooled
}

// cnnBackward queues the text CNN's and the embedding's gradients from the features' gradient.
func (t *Trainer) cnnBackward(q *queue, st *stepState, dfeat uintptr) {
	c, T, B := t.cnn, st.T, st.B
	E, F := c.E, c.F
	nWF := len(c.widths) * F
	cs := &st.cnn
	for i, w := range c.widths {
		if t.trainable(c.b[i]) {
			q.launch("cnn_bias_grad", gridFor(int64(F)), 1, t.pg(c.b[i]), dfeat, cs.pooled, B, F, nWF, i*F)
		}
		if t.trainable(c.w[i]) {
			q.launch("cnn_weight_grad", gridFor(int64(F*E*w)), 1, t.pg(c.w[i]), cs.x, dfeat, cs.pooled, cs.arg, B, T, E, F, nWF, i*F, w)
		}
	}
	if !t.trainable(t.emb.p) {
		return
	}
	dx := q.alloc(int64(B * T * E))
	for i, w := range c.widths {
		q.launch("cnn_input_grad", gridFor(int64(B*E)), 1, dx, cs.wf[i], dfeat, cs.pooled, cs.arg, B, T, E, F, nWF, i*F, w, b2int(i == 0))
	}
	t.embedGrad(q, st, dx)
}

func b2int(b bool) int {
	if b {
		return 1
	}
	return 0
}
