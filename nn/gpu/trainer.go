package gpu

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/sentibench/sentibench/nn"
)

// Trainer runs one model's training and evaluation steps on a device (see the package doc). It
// holds the model's weights, gradients and Adam moments in device memory; Push and Pull move
// them between the device and the model's Params (and an nn.Adam's state).
type Trainer struct {
	be     backend
	q      queue
	model  nn.Model
	params []*nn.Param
	off    []int64 // element offset of each parameter in the arenas
	steps  []int64 // Adam's step count of each parameter
	adam   nn.AdamConfig
	w, g   uintptr // weights and gradients, one arena each
	m, v   uintptr // Adam's moments
	// scratch holds small device values: the clipping coefficient (float), 1.0 (float), the
	// loss and the gradient norm (double), then the partial sums of squares.
	scratch uintptr

	emb  *embedSpec
	rnn  *rnnSpec
	cnn  *cnnSpec
	fc   fcSpec
	drop struct{ emb, mid, out float64 } // dropout of the embedding, between recurrent layers, before fc

	// per-step host buffers
	lay                          layout
	csr                          csr
	up                           upload
	packed, order, rowOf, padded []int32
	lens                         []int32
	feats                        []float32
	logits, per                  []float32
	loss                         []float64
}

type embedSpec struct {
	p    int // parameter index
	V, E int
	pad  int32
}

type rnnSpec struct {
	gru          bool
	in, H, L, D  int
	p            [][pCount]int // parameter index of each role, by layer*D + direction
	inputGrad    bool
	gates        int     // gates per hidden unit: 4 (LSTM) or 3 (GRU)
	stride       []int64 // by layer: the distance between the two directions' parameters in the arenas
	cellFwd      string
	cellBwd      string
	hasCellState bool
}

// Parameter roles of one layer and direction, in PyTorch's order.
const (
	pWih = iota
	pWhh
	pBih
	pBhh
	pCount
)

type cnnSpec struct {
	widths       []int
	F, E, minLen int
	w, b         []int // parameter indices
}

type fcSpec struct{ w, b, in, out int }

// Scratch layout (4-byte words): 0 the clipping coefficient, 1 the constant 1, 2..3 the loss,
// 4..5 the gradient norm, 6.. the partial sums (doubles, 8-byte aligned).
const (
	scrCoef     = 0
	scrOne      = 1
	scrLoss     = 2
	scrNorm     = 4
	scrPartials = 6
	sumsqBlocks = 64
)

// arenaAlign aligns every parameter in the arenas to 256 bytes.
const arenaAlign = 64

// newTrainer lays the model out on the backend. The weights are copied up by Push.
func newTrainer(be backend, m nn.Model, cfg nn.AdamConfig) (*Trainer, error) {
	sigs, err := kernelSignatures(kernelSource)
	if err != nil {
		return nil, err
	}
	if m == nil {
		return nil, errors.New("gpu: no model")
	}
	if err := checkAdamSupported(cfg); err != nil {
		return nil, err
	}
	t := &Trainer{be: be, q: queue{be: be, sigs: sigs}, model: m, params: m.Params(), adam: cfg}
	if err := t.describe(); err != nil {
		return nil, err
	}
	var size int64
	t.off = make([]int64, len(t.params))
	for i, p := range t.params {
		t.off[i] = size
		size += (int64(p.Size()) + arenaAlign - 1) / arenaAlign * arenaAlign
	}
	t.steps = make([]int64, len(t.params))
	if err := t.strides(); err != nil {
		return nil, err
	}
	done := be.enter() // the driver's calls below need the device's context
	defer done()
	pool := be.pool()
	for _, a := range []*uintptr{&t.w, &t.g, &t.m, &t.v, &t.scratch} {
		n := 4 * size
		if a == &t.scratch {
			n = 4 * (scrPartials + 2*int64(len(t.params))*sumsqBlocks)
		}
		p, err := pool.alloc(max(n, 4))
		if err != nil {
			t.Close()
			return nil, err
		}
		*a = p
	}
	q := t.begin()
	q.fill(t.g, size, 0)
	q.fill(t.m, size, 0)
	q.fill(t.v, size, 0)
	q.fill(f32(t.scratch, scrOne), 1, 1)
	q.download() // wait
	if q.err != nil {
		t.Close()
		return nil, q.err
	}
	return t, nil
}

// describe reads the model's architecture.
func (t *Trainer) describe() error {
	index := map[*nn.Param]int{}
	for i, p := range t.params {
		index[p] = i
	}
	idx := func(p *nn.Param) (int, error) {
		i, ok := index[p]
		if !ok {
			return 0, fmt.Errorf("gpu: the %s model's parameter %s is not in its Params", t.model.Config().Kind, p.Name)
		}
		return i, nil
	}
	cfg := t.model.Config()
	var err error
	fc := func(l *nn.Linear) {
		var e1, e2 error
		t.fc.w, e1 = idx(l.Weight)
		t.fc.b, e2 = idx(l.Bias)
		t.fc.in, t.fc.out = l.In, l.Out
		err = errors.Join(err, e1, e2)
	}
	emb := func(e *nn.Embedding) {
		i, e1 := idx(e.Weight)
		t.emb = &embedSpec{p: i, V: e.Vocab, E: e.Dim, pad: int32(e.PadID)}
		err = errors.Join(err, e1)
	}
	rnn := func(ps []*nn.Param, gru bool, in int, inputGrad bool) {
		r := &rnnSpec{gru: gru, in: in, H: cfg.Hidden, L: cfg.Layers, D: 1, inputGrad: inputGrad, gates: 4,
			cellFwd: "lstm_fwd_cell", cellBwd: "lstm_bwd_cell", hasCellState: true}
		if cfg.Bidirectional {
			r.D = 2
		}
		if gru {
			r.gates, r.cellFwd, r.cellBwd, r.hasCellState = 3, "gru_fwd_cell", "gru_bwd_cell", false
		}
		if len(ps) != r.L*r.D*pCount {
			err = errors.Join(err, fmt.Errorf("gpu: the recurrent layers have %d parameters, want %d", len(ps), r.L*r.D*pCount))
			return
		}
		r.p = make([][pCount]int, r.L*r.D)
		for k, p := range ps {
			i, e1 := idx(p)
			err = errors.Join(err, e1)
			r.p[k/pCount][k%pCount] = i
			l := k / pCount / r.D
			want := []int{r.gates * r.H, r.H, 0, 0}[k%pCount]
			inl := in
			if l > 0 {
				inl = r.D * r.H
			}
			shape := []int{r.gates * r.H, []int{inl, r.H, 0, 0}[k%pCount]}
			if want == 0 {
				shape = shape[:1]
			}
			if !sameShape(p.Shape, shape) {
				err = errors.Join(err, fmt.Errorf("gpu: %s has shape %v, want %v", p.Name, p.Shape, shape))
			}
		}
		t.rnn = r
	}
	switch m := t.model.(type) {
	case *nn.LSTMClassifier:
		emb(m.Embedding)
		rnn(m.RNN.Params(), false, cfg.EmbedDim, true)
		fc(m.FC)
		t.drop.emb, t.drop.mid, t.drop.out = m.EmbDrop.P, cfg.Dropout, m.Dropout.P
	case *nn.GRUClassifier:
		rnn(m.RNN.Params(), true, cfg.InputDim, false)
		fc(m.FC)
		t.drop.mid, t.drop.out = cfg.Dropout, m.Dropout.P
	case *nn.CNNClassifier:
		emb(m.Embedding)
		c := &cnnSpec{widths: m.Convs.Widths, F: m.Convs.Filters, E: m.Convs.Dim, minLen: m.Convs.MinLen}
		for i := range c.widths {
			wi, e1 := idx(m.Convs.Weights[i])
			bi, e2 := idx(m.Convs.Biases[i])
			c.w, c.b = append(c.w, wi), append(c.b, bi)
			err = errors.Join(err, e1, e2)
		}
		t.cnn = c
		fc(m.FC)
		t.drop.out = m.Dropout.P
	default:
		return fmt.Errorf("gpu: no GPU implementation of the %T model", t.model)
	}
	if err != nil {
		return err
	}
	if t.rnn != nil && t.fc.in != t.rnn.D*t.rnn.H || t.cnn != nil && t.fc.in != len(t.cnn.widths)*t.cnn.F {
		return fmt.Errorf("gpu: the %s model's linear layer takes %d inputs", cfg.Kind, t.fc.in)
	}
	return nil
}

func sameShape(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// strides finds, for each layer, the arena distance between the two directions' parameters,
// which the batched GEMMs and the cell kernels step by: every role's must be the same.
func (t *Trainer) strides() error {
	r := t.rnn
	if r == nil {
		return nil
	}
	r.stride = make([]int64, r.L)
	if r.D == 1 {
		return nil
	}
	for l := 0; l < r.L; l++ {
		f, b := r.p[l*2], r.p[l*2+1]
		s := t.off[b[pWih]] - t.off[f[pWih]]
		for role := range pCount {
			if t.off[b[role]]-t.off[f[role]] != s {
				return errors.New("gpu: the two directions' parameters are not laid out alike")
			}
		}
		r.stride[l] = s
	}
	return nil
}

// Close gives the trainer's device memory back to the pool.
func (t *Trainer) Close() error {
	var errs []error
	for _, p := range []*uintptr{&t.w, &t.g, &t.m, &t.v, &t.scratch} {
		if *p != 0 {
			errs = append(errs, t.be.pool().free(*p))
			*p = 0
		}
	}
	return errors.Join(errs...)
}

// begin starts a queue of work.
func (t *Trainer) begin() *queue {
	t.q.err = nil
	return &t.q
}

// pw and pg are the device addresses of parameter i's weights and gradient.
func (t *Trainer) pw(i int) uintptr { return f32(t.w, t.off[i]) }
func (t *Trainer) pg(i int) uintptr { return f32(t.g, t.off[i]) }

// trainable says whether parameter i gets a gradient and updates (as nn.Adam decides).
func (t *Trainer) trainable(i int) bool { return !t.params[i].Frozen && t.params[i].Grad != nil }

// ---------------------------------------------------------------------------- step

// stepState holds the device buffers of one step.
type stepState struct {
	B     int
	train bool
	seed  uint64 // dropout seed of the step
	base  uintptr
	// upload offsets (4-byte words from base)
	ids, uniq, start, rows, nb, off, rowT, last, lens, targets, feats int
	nUniq                                                             int
	T                                                                 int // padded length as the device sees it (the CNN's at least minLen)
	// the head
	feat, dropped, logits uintptr
	rnn                   rnnState
	cnn                   cnnState
	x0                    uintptr // layer-0 input: the embedded (and dropped out) or uploaded batch
}

// Step runs one batch, as nn.Runner.Step does: in Eval mode the forward pass and the loss (when
// not nil); in Train mode also the backward pass, leaving the gradients on the device for Update.
// Binary cross-entropy runs on the device; any other loss runs on the host, on the logits.
func (t *Trainer) Step(in *nn.Input, loss nn.Loss, mode nn.Mode, rng *nn.RNG) (res nn.StepResult, err error) {
	start := time.Now()
	kind := t.model.Config().Kind
	if in == nil || len(in.Lengths) == 0 {
		return res, fmt.Errorf("gpu: %s model: empty batch", kind)
	}
	train := mode == nn.Train
	if train && loss == nil {
		return res, errors.New("gpu: a training step needs a loss")
	}
	B, O := in.B(), t.fc.out
	st := &stepState{B: B, train: train}
	if train && t.hasDropout() {
		if rng == nil {
			return res, fmt.Errorf("gpu: %s model: training with dropout needs a random generator", kind)
		}
		st.seed = rng.Uint64()
	}
	bce, deviceLoss := loss.(*nn.BCEWithLogits)
	deviceLoss = deviceLoss && train
	if deviceLoss && len(bce.Targets) != B*O {
		return res, fmt.Errorf("gpu: binary cross-entropy: %d logits for %d targets", B*O, len(bce.Targets))
	}
	if err := t.plan(in, st, deviceLoss, bce); err != nil {
		return res, err
	}

	done := t.be.enter()
	defer done()
	q := t.begin()
	defer q.release()
	st.base = q.alloc(int64(t.up.words()))
	q.upload(st.base, &t.up)
	res.BuildSeconds = time.Since(start).Seconds()
	q.record(0)
	t.forward(q, st, in)
	q.record(1)

	t.logits = resize(t.logits, B*O)
	res.Loss = math.NaN()
	if train {
		dz := q.alloc(int64(B * O))
		if deviceLoss {
			t.per = resize(t.per, B*O)
			q.launch("bce", 1, 1, st.logits, f32(st.base, int64(st.targets)), q.alloc(int64(B*O)), dz, f32(t.scratch, scrLoss), B*O)
		} else {
			// The loss on the host: the step's one extra wait.
			q.download(part{st.logits, t.logits})
			if q.err != nil {
				return res, q.err
			}
			val, grad, per, err := hostLoss(loss, t.logits, B, O, true)
			if err != nil {
				return res, err
			}
			res.Loss, res.PerExample = val, per
			q.fail(t.be.upload(dz, [][]byte{f32bytes(grad)}))
		}
		t.backward(q, st, dz)
	}
	q.record(2)

	parts := []part{{st.logits, t.logits}}
	if deviceLoss {
		t.loss = resize(t.loss, 1)
		parts = append(parts, part{f32(t.scratch, scrLoss), t.loss})
	}
	q.download(parts...)
	if q.err != nil {
		return res, fmt.Errorf("gpu: %s step: %w", kind, q.err)
	}
	if fwd, err := t.be.elapsed(0, 1); err == nil {
		res.ForwardSeconds = fwd / 1e3
	}
	if train {
		if bwd, err := t.be.elapsed(1, 2); err == nil {
			res.BackwardSeconds = bwd / 1e3
		}
	}
	res.Logits = t.logits
	if deviceLoss {
		res.Loss = t.loss[0]
		// Per-example losses on the host, from the logits: B values, not worth a download.
		t.per = resize(t.per, B*O)
		for i, z := range t.logits {
			t.per[i] = float32(bceTerm(float64(z), float64(bce.Targets[i])))
		}
		res.PerExample = t.per
	} else if !train && loss != nil {
		val, _, per, err := hostLoss(loss, t.logits, B, O, false)
		if err != nil {
			return res, err
		}
		res.Loss, res.PerExample = val, per
	}
	return res, nil
}

// bceTerm is nn's binary cross-entropy of one logit.
func bceTerm(z, y float64) float64 {
	return math.Max(z, 0) - z*y + math.Log1p(math.Exp(-math.Abs(z)))
}

// hasDropout says whether a training step draws dropout masks.
func (t *Trainer) hasDropout() bool {
	return t.drop.emb > 0 || t.drop.out > 0 || (t.rnn != nil && t.rnn.L > 1 && t.drop.mid > 0)
}

// Dropout sites of a step (each gets its own seed).
const (
	siteEmb = iota
	siteOut
	siteMid // + layer
)

// dropout queues y = dropout(x) over n values at a site (train mode, p > 0); with y == x it is
// in place. It returns y, or x itself when there is nothing to drop.
func (t *Trainer) dropout(q *queue, st *stepState, site int, p float64, y, x uintptr, n int64) uintptr {
	if !st.train || p == 0 {
		return x
	}
	q.launch("dropout", gridFor(n), 1, y, x, n, siteSeed(st.seed, site), dropThreshold(p), float32(1/(1-p)))
	return y
}

// plan assembles the step's upload.
func (t *Trainer) plan(in *nn.Input, st *stepState, deviceLoss bool, bce *nn.BCEWithLogits) error {
	u := &t.up
	u.reset()
	B := in.B()
	switch {
	case t.rnn != nil:
		if err := t.lay.set(in.Lengths, in.T); err != nil {
			return err
		}
		st.T = in.T
		if t.emb != nil {
			if len(in.IDs) != B*in.T {
				return fmt.Errorf("gpu: %d ids for a batch of %d x %d", len(in.IDs), B, in.T)
			}
			t.packed, t.order, t.rowOf = packIDs(&t.lay, in.IDs, t.packed, t.order, t.rowOf)
			if err := t.csr.build(t.order, t.rowOf, t.emb.V, t.emb.pad); err != nil {
				return err
			}
			st.ids = u.addInts(t.packed)
		} else if in.Dim != t.rnn.in || len(in.Feats) != in.T*B*in.Dim {
			return fmt.Errorf("gpu: features are %d values of width %d, want %d x %d x %d", len(in.Feats), in.Dim, in.T, B, t.rnn.in)
		}
		st.nb = u.addInts(t.lay.nb)
		st.off = u.addInts(t.lay.off)
		st.rowT = u.addInts(t.lay.rowT)
		st.last = u.addInts(t.lay.last)
	case t.cnn != nil:
		for b, l := range in.Lengths {
			if l < 1 || l > in.T {
				return fmt.Errorf("gpu: sequence %d has length %d, outside [1, T=%d]", b, l, in.T)
			}
		}
		if len(in.IDs) != B*in.T {
			return fmt.Errorf("gpu: %d ids for a batch of %d x %d", len(in.IDs), B, in.T)
		}
		pad := max(t.emb.pad, 0)
		var ids []int32
		ids, st.T = padIDs(in.IDs, B, in.T, t.cnn.minLen, pad, t.padded)
		if st.T != in.T {
			t.padded = ids
		}
		if err := t.csr.build(ids, nil, t.emb.V, t.emb.pad); err != nil {
			return err
		}
		st.ids = u.addInts(ids)
		t.lens = resize(t.lens, B)
		for b, l := range in.Lengths {
			t.lens[b] = int32(l)
		}
		st.lens = u.addInts(t.lens)
	}
	if t.emb != nil {
		st.nUniq = len(t.csr.uniq)
		st.uniq = u.addInts(t.csr.uniq)
		st.start = u.addInts(t.csr.start)
		st.rows = u.addInts(t.csr.rows)
	}
	if deviceLoss {
		st.targets = u.addFloats(bce.Targets)
	}
	if t.rnn != nil && t.emb == nil {
		t.feats = packFeats(&t.lay, in.Feats, t.feats, in.Dim)
		st.feats = u.addFloats(t.feats)
	}
	return nil
}

// at is the device address of upload word o.
func (st *stepState) at(o int) uintptr { return f32(st.base, int64(o)) }

// forward queues the model's forward pass up to the logits.
func (t *Trainer) forward(q *queue, st *stepState, in *nn.Input) {
	B := in.B()
	switch {
	case t.rnn != nil:
		N := int64(t.lay.N)
		if t.emb != nil {
			E := t.emb.E
			st.x0 = q.alloc(N * int64(E))
			q.launch("embed_gather", gridFor(N*int64(E)), 1, st.x0, t.pw(t.emb.p), st.at(st.ids), N, E)
			t.dropout(q, st, siteEmb, t.drop.emb, st.x0, st.x0, N*int64(E))
		} else {
			st.x0 = st.at(st.feats)
		}
		st.feat = t.rnnForward(q, st)
	case t.cnn != nil:
		st.feat = t.cnnForward(q, st, B)
	}
	F, O := t.fc.in, t.fc.out
	st.dropped = st.feat
	if st.train && t.drop.out > 0 {
		st.dropped = t.dropout(q, st, siteOut, t.drop.out, q.alloc(int64(B*F)), st.feat, int64(B*F))
	}
	st.logits = q.alloc(int64(B * O))
	q.launch("bias_rows", gridFor(int64(B*O)), 1, st.logits, t.pw(t.fc.b), int64(B), O)
	q.gemm(false, true, B, O, F, 1, st.dropped, F, 0, t.pw(t.fc.w), F, 0, 1, st.logits, O, 0, 1)
}

// backward queues the backward pass from dz, the loss's gradient with respect to the logits.
func (t *Trainer) backward(q *queue, st *stepState, dz uintptr) {
	B, F, O := st.B, t.fc.in, t.fc.out
	ones := q.alloc(int64(B))
	q.fill(ones, int64(B), 1)
	if t.trainable(t.fc.w) {
		q.gemm(true, false, O, F, B, 1, dz, O, 0, st.dropped, F, 0, 0, t.pg(t.fc.w), F, 0, 1)
	}
	if t.trainable(t.fc.b) {
		q.gemm(false, false, 1, O, B, 1, ones, B, 0, dz, O, 0, 0, t.pg(t.fc.b), O, 0, 1)
	}
	dfeat := q.alloc(int64(B * F))
	q.gemm(false, false, B, F, O, 1, dz, O, 0, t.pw(t.fc.w), F, 0, 0, dfeat, F, 0, 1)
	t.dropout(q, st, siteOut, t.drop.out, dfeat, dfeat, int64(B*F))
	switch {
	case t.rnn != nil:
		dx0 := t.rnnBackward(q, st, dfeat)
		if t.emb != nil && dx0 != 0 {
			N := int64(t.lay.N)
			t.dropout(q, st, siteEmb, t.drop.emb, dx0, dx0, N*int64(t.emb.E))
			t.embedGrad(q, st, dx0)
		}
	case t.cnn != nil:
		t.cnnBackward(q, st, dfeat)
	}
}

// embedGrad queues the embedding table's gradient from the gradient of the gathered rows.
func (t *Trainer) embedGrad(q *queue, st *stepState, dx uintptr) {
	e := t.emb
	q.fill(t.pg(e.p), int64(e.V*e.E), 0)
	if st.nUniq > 0 {
		q.launch("embed_grad", gridFor(int64(st.nUniq*e.E)), 1, t.pg(e.p), dx, st.at(st.uniq), st.at(st.start),
			st.at(st.rows), st.nUniq, e.E)
	}
}

// ---------------------------------------------------------------------------- optimiser

// Update runs Adam on every trainable parameter from its gradient on the device (after
// clipping the gradients' global norm when the configuration asks), as nn.Adam.Step does.
func (t *Trainer) Update() error {
	done := t.be.enter()
	defer done()
	q := t.begin()
	defer q.release()
	var count int
	clip := f32(t.scratch, scrOne)
	if t.adam.MaxGradNorm > 0 {
		for i := range t.params {
			if t.params[i].Frozen { // as nn.ClipGradNorm
				continue
			}
			q.launch("sumsq", sumsqBlocks, 1, t.pg(i), int64(t.params[i].Size()), f32(t.scratch, scrPartials+2*int64(count)))
			count += sumsqBlocks
		}
		clip = f32(t.scratch, scrCoef)
		q.launch("clip_coef", 1, 1, f32(t.scratch, scrPartials), count, t.adam.MaxGradNorm, clip, f32(t.scratch, scrNorm))
	}
	a := t.adam
	w1, b2, w2 := float32(1-a.Beta1), float32(a.Beta2), float32(1-a.Beta2)
	for i, p := range t.params {
		if !t.trainable(i) {
			continue
		}
		t.steps[i]++
		step := float64(t.steps[i])
		bc1 := 1 - math.Pow(a.Beta1, step)
		bc2 := 1 - math.Pow(a.Beta2, step)
		n := int64(p.Size())
		q.launch("adam", gridFor(n), 1, t.pw(i), t.pg(i), f32(t.m, t.off[i]), f32(t.v, t.off[i]), n, w1, b2, w2,
			float32(a.Eps), float32(a.WeightDecay), float32(-(a.LR / bc1)), float32(math.Sqrt(bc2)), clip)
	}
	if q.err != nil {
		return fmt.Errorf("gpu: optimiser step: %w", q.err)
	}
	return nil
}

// checkAdamSupported refuses the optimiser settings that the device's Adam kernel does not
// implement yet: decoupled weight decay (AdamW) and a learning rate that varies per step.
func checkAdamSupported(cfg nn.AdamConfig) error {
	if cfg.DecoupledWeightDecay != 0 {
		return errors.New("gpu: decoupled weight decay (AdamW) is not implemented on the GPU yet")
	}
	if s := cfg.Schedule; (s.Kind != "" && s.Kind != nn.ScheduleConstant) || s.WarmupSteps > 0 || s.WarmupRatio > 0 {
		return fmt.Errorf("gpu: a learning-rate schedule (%s, warmup %d steps or ratio %v) is not implemented on the GPU yet", s.Kind, s.WarmupSteps, s.WarmupRatio)
	}
	return nil
}

// Push copies the model's weights and opt's state (nil: fresh moments) to the device, and takes
// opt's settings.
func (t *Trainer) Push(opt *nn.Adam) error {
	done := t.be.enter()
	defer done()
	var errs []error
	for i, p := range t.params {
		errs = append(errs, t.be.write(t.pw(i), f32bytes(p.Data())))
	}
	q := t.begin()
	for i, p := range t.params {
		q.fill(f32(t.m, t.off[i]), int64(p.Size()), 0)
		q.fill(f32(t.v, t.off[i]), int64(p.Size()), 0)
		t.steps[i] = 0
	}
	q.download()
	errs = append(errs, q.err)
	if opt != nil {
		if err := checkAdamSupported(opt.Config()); err != nil {
			return err
		}
		t.adam = opt.Config()
		byName := map[string]int{}
		for i, p := range t.params {
			byName[p.Name] = i
		}
		for name, s := range opt.State() {
			i, ok := byName[name]
			if !ok || len(s.ExpAvg) != t.params[i].Size() || len(s.ExpAvgSq) != t.params[i].Size() {
				errs = append(errs, fmt.Errorf("gpu: optimiser state %q does not match the model", name))
				continue
			}
			t.steps[i] = s.Step
			errs = append(errs, t.be.write(f32(t.m, t.off[i]), f32bytes(s.ExpAvg)), t.be.write(f32(t.v, t.off[i]), f32bytes(s.ExpAvgSq)))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("gpu: copying the model to the device: %w", err)
	}
	return nil
}

// Pull copies the weights into the model's Params and, when opt is not nil, Adam's state into
// opt (for checkpoints and evaluation on the host).
func (t *Trainer) Pull(opt *nn.Adam) error {
	done := t.be.enter()
	defer done()
	var errs []error
	for i, p := range t.params {
		errs = append(errs, t.be.read(f32bytes(p.Data()), t.pw(i)))
	}
	if opt != nil {
		state := map[string]nn.AdamParamState{}
		for i, p := range t.params {
			if t.steps[i] == 0 {
				continue
			}
			s := nn.AdamParamState{Step: t.steps[i], ExpAvg: make([]float32, p.Size()), ExpAvgSq: make([]float32, p.Size())}
			errs = append(errs, t.be.read(f32bytes(s.ExpAvg), f32(t.m, t.off[i])), t.be.read(f32bytes(s.ExpAvgSq), f32(t.v, t.off[i])))
			state[p.Name] = s
		}
		if err := errors.Join(errs...); err == nil {
			errs = append(errs, opt.SetState(state, t.params))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("gpu: copying the model to the host: %w", err)
	}
	return nil
}

// Grads copies the gradients of the last training step into the trainable parameters' Grad (for
// the tests, and for callers that want them on the host).
func (t *Trainer) Grads() error {
	done := t.be.enter()
	defer done()
	var errs []error
	for i, p := range t.params {
		if t.trainable(i) {
			errs = append(errs, t.be.read(f32bytes(p.Grad), t.pg(i)))
		}
	}
	return errors.Join(errs...)
}
