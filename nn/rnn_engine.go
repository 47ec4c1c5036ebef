package nn

// The CPU engine of a recurrent stack (rnn.go): the forward and backward passes of all its
// layers and directions, segment by segment (the segments and the arena: rnn_plan.go; the
// cells' own steps: lstm.go, gru.go).
//
// The ops (rnn_ops.go) call the math through rnnKernels, one implementation per precision: the
// CPU engine cpuRNN is generic over float32 and float64; training runs float32, the
// finite-difference gradient checks run the same code in float64. The GPU does not slot in
// here: it runs whole training steps with an executor of its own (package nn/gpu, see its
// doc.go), so these ops are CPU-only.

import (
	"fmt"
	"sync"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/sentibench/sentibench/internal/blas"
)

// rnnKernels is the math of a fused recurrent stack on one device, in one precision. The
// Gorgonia ops below are its only callers; every call refers to the layer's current run.
type rnnKernels interface {
	// Forward runs the stack over x ((T*B, in), time-major, padded) with the weights w (in
	// Params order) and returns the last layer's final states (B, dirs*H) or, when r.seq, its
	// output sequence (T*B, dirs*H), zero on padding. It keeps what Backward needs.
	Forward(r *rnnRun, x G.Value, w []G.Value) (G.Value, error)
	// Backward takes the gradient of the loss with respect to Forward's output, computes
	// every parameter gradient (read with Grad) and returns the input gradient ((T*B, in),
	// zero on padding), or nil when r.inputGrad is false.
	Backward(r *rnnRun, dy, x G.Value, w []G.Value) (G.Value, error)
	// BackwardLayer is Backward in stages, one per layer, from the last layer down: the call
	// for layer l computes layer l's parameter gradients and, for l = 0, returns what
	// Backward returns. The last layer's call takes dy; the others ignore it.
	BackwardLayer(r *rnnRun, l int, dy, x G.Value, w []G.Value) (G.Value, error)
	// Grad returns the gradient of parameter i from the last Backward, shaped as the
	// parameter. It stays valid until the next Backward.
	Grad(i int) G.Value
}

// cpuRNN runs a recurrent stack on the CPU in precision F.
//
// Segments. Each batch's time steps are cut into segments of consecutive steps holding about
// segRows packed rows each (segPlan). Every pass works segment by segment, each segment's
// products over its own rows:
//
//   - forward (forwardLayer): for each segment in the direction's order, its input rows
//     (segmentInput), its gate activations (kept for the backward pass when the plan says so,
//     else into a scratch buffer), its states h and c (scratch), then its outputs
//     (writeOutputs: the rows that the next layer reads, or the op's output) and the state
//     that enters the next segment (saveState). Only that entering state, B×H floats per
//     segment, is kept of the states.
//   - backward (backwardLayer): for each segment in the reverse order, the segment's states
//     again from its entering state: from its kept activations (the cell's "states" function,
//     a few operations per value), or, when the plan did not keep them, by running the
//     segment's forward pass again (recomputation: the same function on the same inputs, so
//     the same values bit for bit); then BPTT through the segment, the weight gradients of its
//     rows (added to those of the segments before), and its share of the input gradient.
//
// Memory. All the buffers of a batch are slices of one arena, laid out anew for each batch
// (layout) and reused from batch to batch: the layer outputs that feed the next layer (N ×
// dirs×H floats per layer but the last), backwards the input gradient of the last layer (the
// other layers' go over their outputs, dead by then), the states entering each segment, a
// segment's scratch, and the gate activations of the segments the plan keeps. planBatch keeps
// all of them when the batch fits in the activation budget (rnnStack.maxActBytes), else as
// many as fit beside the rest. Eval mode keeps none.
//
// The two directions add their shares of a segment's input gradient in a fixed order
// (firstShare), whatever the threading, so that the results do not depend on which
// direction gets there first.
//
// Threading. A bidirectional stack on a device with two workers or more runs the two
// directions of each layer in two goroutines (each its input projections, its recurrence and,
// backwards, its weight gradients and input-gradient shares). Every BLAS call is then
// single-threaded: while such an op runs it sets the BLAS to one thread and restores the
// setting afterwards, because OpenBLAS runs concurrent multi-threaded level-3 calls one at a
// time (a lock in its threaded driver), and two single-threaded streams beat one two-threaded
// stream on the recurrence's small products (m = B rows). Otherwise (one direction, or one
// worker) the directions take turns, segment by segment, the BLAS keeps its own thread
// setting, and the products over a segment's rows are split by rows over the workers when the
// BLAS is single-threaded. Measurements: BenchmarkLSTM (lstm_test.go) and the notes there.
type cpuRNN[F float] struct {
	s          *rnnStack
	cell       cellSteps[F]
	bl         blas.Impl
	concurrent bool // the directions run concurrently (set by begin)
	plan       segPlan
	dir        [2]cpuDir[F]

	arena   []F        // the batch's buffers below, laid out by layout
	out     [][][]F    // out[l][j], l < layers-1: layer l's output rows of segment j, then backwards its input gradient rows
	grad    [][]F      // grad[j]: backwards, the last layer's input gradient rows of segment j
	kept    [2][][][]F // kept[d][l][j]: the gate activations of segment j of layer l kept for the backward pass (nil: recomputed)
	dx      []F        // input gradient returned by Backward, T*B*in
	seqOut  []F        // sequence output returned by Forward, T*B*dirs*H
	final   []F        // final states returned by Forward, B*dirs*H
	ones    []F        // a segment's rows of ones, for the bias-gradient column sums
	grads   [][]F      // the last Backward's parameter gradients, in Params order (see setGradBuffers)
	og      outGrad[F] // backwards, the output gradient of layer bwdNext (see BackwardLayer)
	bwdNext int        // the layer whose BackwardLayer call comes next
	own     [][]F      // the kernels' own gradient buffers, made on first need

	// done[j] says that the first direction's share of segment j's input gradient is in (see
	// inputGrad).
	mu   sync.Mutex
	cond *sync.Cond
	done []bool
}

// cellSteps is a cell's part of the CPU engine in precision F: the passes over one segment
// (see cpuRNN) that differ between the LSTM (lstmSteps, lstm.go) and the GRU (gruSteps,
// gru.go). The engine around them is the same for both.
type cellSteps[F float] interface {
	// forwardSegment runs the cell over the segment: its activations (into sg.gates, sg.hn)
	// and states (sg.h, sg.c, sg.tc). The backward pass runs it again, on the same inputs, to
	// recompute a segment whose activations were not kept.
	forwardSegment(k *cpuRNN[F], r *rnnRun, sg *segment[F], wih, bih, bhh []F)
	// segmentStates recomputes the states of a segment from its kept activations.
	segmentStates(k *cpuRNN[F], r *rnnRun, sg *segment[F])
	// backwardSegment is BPTT through the segment: the activations become the gradients
	// of the pre-activations, the direction's carried gradients go on to the next segment.
	backwardSegment(k *cpuRNN[F], r *rnnRun, sg *segment[F], whh []F, og *outGrad[F])
	// paramGrads adds the segment's share of the weight gradients (first: sets them).
	paramGrads(k *cpuRNN[F], r *rnnRun, sg *segment[F], dWih, dWhh, dBih, dBhh []F, first bool)
	// inputGrad sets (beta 0) or adds to (beta 1) dX, the segment's rows of the input
	// gradient: its direction's share.
	inputGrad(k *cpuRNN[F], sg *segment[F], wih, dX []F, beta F)
	// tieBiasGrads fills, once a layer's segments are done, the bias gradients that equal
	// others (paramGrads computes each once).
	tieBiasGrads(dBih, dBhh []F, H int)
}

// cellStepsOf returns the engine steps of cell c in precision F.
func cellStepsOf[F float](c cellKind) cellSteps[F] {
	if _, ok := c.(gruCell); ok {
		return gruSteps[F]{}
	}
	return lstmSteps[F]{}
}

// cpuDir holds one direction's buffers: the scratch of the segment being processed (reused by
// every segment and layer), and the states entering each segment.
type cpuDir[F float] struct {
	seg    segment[F] // the segment being processed
	bias   []F        // G*H: b_ih + b_hh (LSTM)
	whhT   []F        // H*G*H: W_hh transposed, for the recurrence's per-step products
	step   []F        // B*G*H: GRU recurrent products of one step
	dh, dc []F        // B*H: backwards, the gradients of h and c carried from step to step

	// In the arena:
	act   []F     // segment rows × (G*H, + H for the GRU): the activations of a segment not kept (gates, then GRU's W_hn h + b_hn)
	h     []F     // segment rows × H: hidden states
	c, tc []F     // segment rows × H: LSTM cell states and tanh(c)
	hp    []F     // segment rows × H: h_{t-1} aligned with each row, for the W_hh gradient
	x     []F     // segment rows × max(in, dirs*H): the segment's input rows, packed and dropped out
	hIn   [][][]F // hIn[l][j]: the hidden states entering segment j of layer l (B*H)
	cIn   [][][]F // cIn[l][j]: the LSTM cell states entering segment j of layer l (B*H)
}

// segment is one direction's view of one segment of one layer: its steps, its rows and the
// buffers that hold them (rows are local: row 0 is the segment's first packed row).
type segment[F float] struct {
	l, d, j  int
	t0, t1   int  // steps [t0, t1)
	r0, rows int  // packed rows [r0, r0+rows)
	kept     bool // the activations are kept from the forward pass (else recomputed)
	x        []F  // input rows, rows × in_l
	gates    []F  // gate activations (backwards: their gradients), rows × G*H
	hn       []F  // GRU: W_hn h_{t-1} + b_hn (backwards: the n gate's gradient), rows × H
	h, c, tc []F  // hidden states, LSTM cell states and tanh(c), rows × H
	hIn, cIn []F  // the states entering the segment (from the step before it), up to B × H
}

// stepAt returns the segment's i-th step in its direction's order.
func (sg *segment[F]) stepAt(i int) int {
	if sg.d == 0 {
		return sg.t0 + i
	}
	return sg.t1 - 1 - i
}

// prev returns the states (H values per row, rows one after the other) of the step before t in
// the direction's order, for the m rows that continue into t: from inside the segment, or
// its entering state for its first step. c is nil for the GRU.
func (sg *segment[F]) prev(r *rnnRun, t, H int) (h, c []F, m int) {
	prow, m := r.prevStep(t, sg.d)
	if m == 0 {
		return nil, nil, 0
	}
	if sg.d == 0 && t > sg.t0 || sg.d == 1 && t+1 < sg.t1 {
		lr := prow - sg.r0
		h = sg.h[lr*H : (lr+m)*H]
		if sg.c != nil {
			c = sg.c[lr*H : (lr+m)*H]
		}
		return h, c, m
	}
	h = sg.hIn[:m*H]
	if sg.cIn != nil {
		c = sg.cIn[:m*H]
	}
	return h, c, m
}

// segPlan is a batch's cut into segments, and which segments' activations the forward pass
func newCPURNN[F float](s *rnnStack) *cpuRNN[F] {
	k := &cpuRNN[F]{s: s, cell: cellStepsOf[F](s.cell), bl: s.dev.BLAS, grads: make([][]F, len(s.params)), own: make([][]F, len(s.params)), bwdNext: -1}
	k.cond = sync.NewCond(&k.mu)
	return k
}

// setGradBuffers chooses where Backward writes each parameter gradient: straight into
// Param.Grad when the weight value is the parameter's own tensor (the layer's Forward) and
// Param.Grad has the right type and size, so that the step runner, which copies each gradient
// into Param.Grad, finds it there and copies nothing; otherwise into a buffer of the kernels'
// own (the float64 gradient checks, a frozen parameter).
func (k *cpuRNN[F]) setGradBuffers(w []G.Value) {
	for i, p := range k.s.params {
		if g, ok := any(p.Grad).([]F); ok && len(g) == p.Size() && w[i] == G.Value(p.Value) {
			k.grads[i] = g
			continue
		}
		if k.own[i] == nil {
			k.own[i] = make([]F, p.Size())
		}
		k.grads[i] = k.own[i]
	}
}

// Grad implements rnnKernels. Each call wraps the gradient buffer in a new header, so that no
// tensor object is shared between the graphs of successive steps.
func (k *cpuRNN[F]) Grad(i int) G.Value {
	return tensor.New(tensor.WithShape(k.s.params[i].Shape...), tensor.WithBacking(k.grads[i]))
}

// checkWeights checks that the weight values have the parameters' element type and sizes.
func (k *cpuRNN[F]) checkWeights(w []G.Value) error {
	if len(w) != len(k.s.params) {
		return fmt.Errorf("%d weight values, want %d", len(w), len(k.s.params))
	}
	for i, v := range w {
		if d, ok := v.Data().([]F); !ok || len(d) != k.s.params[i].Size() {
			return fmt.Errorf("weight %s: %v values of %v, want %d of the input's type", k.s.params[i].Name, v.Size(), v.Dtype(), k.s.params[i].Size())
		}
	}
	return nil
}

// weights returns the weight slices of layer l, direction d.
func (k *cpuRNN[F]) weights(w []G.Value, l, d int) (wih, whh, bih, bhh []F) {
	s := k.s
	return w[s.param(l, d, pWih)].Data().([]F), w[s.param(l, d, pWhh)].Data().([]F),
		w[s.param(l, d, pBih)].Data().([]F), w[s.param(l, d, pBhh)].Data().([]F)
}

// prepareWeights sets direction d's transposed W_hh and, for the LSTM, its summed biases.
func (k *cpuRNN[F]) prepareWeights(d int, whh, bih, bhh []F) {
	dr := &k.dir[d]
	gh := k.s.cell.gates() * k.s.hidden
	transposeTo(dr.whhT, whh, gh, k.s.hidden)
	for j := range dr.bias {
		dr.bias[j] = bih[j] + bhh[j]
	}
}

// prepareBuffers sizes the small per-direction buffers for the batch.
func (k *cpuRNN[F]) prepareBuffers(r *rnnRun) {
	s := k.s
	H, gh := s.hidden, s.cell.gates()*s.hidden
	for d := 0; d < s.dirs; d++ {
		dr := &k.dir[d]
		resize(&dr.bias, gh)
		resize(&dr.whhT, H*gh)
		resize(&dr.step, r.B*gh)
		resize(&dr.dh, r.B*H)
		if s.cell.hasCellState() {
			resize(&dr.dc, r.B*H)
		}
	}
	if rows := k.plan.maxRows; len(k.ones) < rows {
		k.ones = make([]F, rows)
		for i := range k.ones {
			k.ones[i] = 1
		}
	}
}

// setSegment points sg at segment j of layer l for direction d: its steps and rows, its input
// rows (segmentInput), its activations (kept, or the direction's scratch) and the direction's
// state scratch.
func (k *cpuRNN[F]) setSegment(sg *segment[F], r *rnnRun, l, d, j int, x []F) {
	s, p, dr := k.s, &k.plan, &k.dir[d]
	H, gh := s.hidden, s.cell.gates()*s.hidden
	sg.l, sg.d, sg.j = l, d, j
	sg.t0, sg.t1 = p.step[j], p.step[j+1]
	sg.r0 = r.off[sg.t0]
	sg.rows = r.off[sg.t1] - sg.r0
	n := sg.rows
	sg.kept = p.keep[l][j]
	act := dr.act
	if sg.kept {
		act = k.kept[d][l][j]
	}
	sg.gates, sg.hn = act[:n*gh], act[n*gh:n*s.cell.actBlocks()*H] // (hn: empty for the LSTM)
	sg.h, sg.hIn = dr.h[:n*H], dr.hIn[l][j]
	sg.c, sg.tc, sg.cIn = nil, nil, nil
	if s.cell.hasCellState() {
		sg.c, sg.tc, sg.cIn = dr.c[:n*H], dr.tc[:n*H], dr.cIn[l][j]
	}
	sg.x = k.segmentInput(r, sg, x)
}

// segmentInput returns the input rows of the segment (rows × in_l): the batch's rows for layer
// 0 (packed into the direction's scratch when the batch has padding), the previous layer's
// output for the others (dropped out into the scratch in training).
func (k *cpuRNN[F]) segmentInput(r *rnnRun, sg *segment[F], x []F) []F {
	s, dr := k.s, &k.dir[sg.d]
	inl := s.layerIn(sg.l)
	if sg.l == 0 {
		if r.N == r.T*r.B {
			return x[sg.r0*inl : (sg.r0+sg.rows)*inl]
		}
		xs := dr.x[:sg.rows*inl]
		for t := sg.t0; t < sg.t1; t++ {
			lr := r.off[t] - sg.r0
			copy(xs[lr*inl:(lr+r.nb[t])*inl], x[t*r.B*inl:(t*r.B+r.nb[t])*inl])
		}
		return xs
	}
	prev := k.out[sg.l-1][sg.j][:sg.rows*inl]
	if len(r.keep) == 0 {
		return prev
	}
	xs := dr.x[:sg.rows*inl]
	applyKeep(xs, prev, r.keep[sg.l], sg.r0*inl, F(r.scale))
	return xs
}

// Forward implements rnnKernels.
func (k *cpuRNN[F]) Forward(r *rnnRun, xv G.Value, wv []G.Value) (G.Value, error) {
	defer k.begin()()
	s := k.s
	x, ok := xv.Data().([]F)
	if !ok || len(x) != r.T*r.B*s.in {
		return nil, fmt.Errorf("input of %d values, want T*B*in = %d", xv.Size(), r.T*r.B*s.in)
	}
	if err := k.checkWeights(wv); err != nil {
		return nil, err
	}
	k.planBatch(r)
	k.prepareBuffers(r)
	W := s.dirs * s.hidden
	if r.seq {
		resize(&k.seqOut, r.T*r.B*W)
	} else {
		resize(&k.final, r.B*W)
	}
	for l := 0; l < s.layers; l++ {
		k.forwardLayer(r, l, x, wv)
	}
	if r.seq {
		return tensor.New(tensor.WithShape(r.T*r.B, W), tensor.WithBacking(k.seqOut)), nil
	}
	return tensor.New(tensor.WithShape(r.B, W), tensor.WithBacking(k.final)), nil
}

// forwardLayer runs layer l over the batch, each direction segment by segment in its order.
func (k *cpuRNN[F]) forwardLayer(r *rnnRun, l int, x []F, wv []G.Value) {
	for d := 0; d < k.s.dirs; d++ {
		_, whh, bih, bhh := k.weights(wv, l, d)
		k.prepareWeights(d, whh, bih, bhh)
	}
	k.bySegment(func(d, i int) {
		wih, _, bih, bhh := k.weights(wv, l, d)
		sg := &k.dir[d].seg
		k.setSegment(sg, r, l, d, k.plan.order(i, d), x)
		k.segmentForward(r, sg, wih, bih, bhh)
		k.writeOutputs(r, sg)
		k.saveState(r, sg)
	})
}

// segmentForward runs the cell over the segment: its activations and states.
func (k *cpuRNN[F]) segmentForward(r *rnnRun, sg *segment[F], wih, bih, bhh []F) {
	k.cell.forwardSegment(k, r, sg, wih, bih, bhh)
}

// writeOutputs copies the segment's hidden states where the layer's output goes: the rows that
// the next layer reads, or, for the last layer, the op's output sequence (zero on padding) or
// the final states (each sequence's last step forwards, step 0 backwards).
func (k *cpuRNN[F]) writeOutputs(r *rnnRun, sg *segment[F]) {
	s := k.s
	H, W, d := s.hidden, s.dirs*s.hidden, sg.d
	if sg.l < s.layers-1 {
		out := k.out[sg.l][sg.j]
		for i := 0; i < sg.rows; i++ {
			copy(out[i*W+d*H:i*W+(d+1)*H], sg.h[i*H:(i+1)*H])
		}
		return
	}
	for t := sg.t0; t < sg.t1; t++ {
		n, lr := r.nb[t], r.off[t]-sg.r0
		if r.seq {
			for b := 0; b < r.B; b++ {
				dst := k.seqOut[(t*r.B+b)*W+d*H : (t*r.B+b)*W+(d+1)*H]
				if b < n {
					copy(dst, sg.h[(lr+b)*H:(lr+b+1)*H])
				} else {
					clear(dst)
				}
			}
			continue
		}
		lo := r.nb[t+1] // forwards, the sequences ending at t
		if d == 1 {
			if t > 0 {
				continue
			}
			lo = 0
		}
		for b := lo; b < n; b++ {
			copy(k.final[b*W+d*H:b*W+(d+1)*H], sg.h[(lr+b)*H:(lr+b+1)*H])
		}
	}
}

// saveState copies the state leaving the segment (its last step in the direction's order, the
// rows that continue) to the entering state of the next segment.
func (k *cpuRNN[F]) saveState(r *rnnRun, sg *segment[F]) {
	H, dr := k.s.hidden, &k.dir[sg.d]
	last, next := sg.t1-1, sg.j+1 // forwards
	if sg.d == 1 {
		last, next = sg.t0, sg.j-1
	}
	if next < 0 || next >= k.plan.S {
		return
	}
	first := k.plan.step[next] // the next segment's first step in the direction's order
	if sg.d == 1 {
		first = k.plan.step[next+1] - 1
	}
	_, m := r.prevStep(first, sg.d) // the rows of first that continue from last
	lr := r.off[last] - sg.r0
	copy(dr.hIn[sg.l][next], sg.h[lr*H:(lr+m)*H])
	if sg.c != nil {
		copy(dr.cIn[sg.l][next], sg.c[lr*H:(lr+m)*H])
	}
}

// outGrad is where the backward pass of a layer finds the gradient of its output.
type outGrad[F float] struct {
	rows [][]F // the next layer's input gradient, per segment (rows × dirs*H); nil for the last layer
	dy   []F   // the last layer: the op's output gradient
	seq  bool  // dy is (T*B, dirs*H) (an output sequence), else (B, dirs*H) (final states)
}

// row returns the output gradient of row b at step t for the segment's direction (H values),
// or nil when there is none.
func (g *outGrad[F]) row(r *rnnRun, sg *segment[F], t, b, H, W int) []F {
	d := sg.d
	var i int
	switch {
	case g.rows != nil:
		i = (r.off[t]+b-sg.r0)*W + d*H
		return g.rows[sg.j][i : i+H]
	case g.seq:
		i = (t*r.B+b)*W + d*H
	case d == 0 && t == r.lengths[b]-1 || d == 1 && t == 0: // the final states
		i = b*W + d*H
	default:
		return nil
	}
	return g.dy[i : i+H]
}

// Backward implements rnnKernels.
func (k *cpuRNN[F]) Backward(r *rnnRun, dy, x G.Value, w []G.Value) (dx G.Value, err error) {
	for l := k.s.layers - 1; l >= 0 && err == nil; l-- {
		dx, err = k.BackwardLayer(r, l, dy, x, w)
	}
	return dx, err
}

// BackwardLayer implements rnnKernels. The last layer's call checks the inputs and sets the
// backward pass up; each call leaves the gradient of the layer's input, which the call of the
// layer below takes as its output gradient, in k.og.
func (k *cpuRNN[F]) BackwardLayer(r *rnnRun, l int, dyv, xv G.Value, wv []G.Value) (G.Value, error) {
	defer k.begin()()
	s := k.s
	x, ok := xv.Data().([]F)
	if !ok || len(x) != r.T*r.B*s.in {
		return nil, fmt.Errorf("input of %d values, want T*B*in = %d", xv.Size(), r.T*r.B*s.in)
	}
	if err := k.checkWeights(wv); err != nil {
		return nil, err
	}
	if l < 0 || l >= s.layers {
		return nil, fmt.Errorf("backward pass of layer %d of %d", l, s.layers)
	}
	switch {
	case l == s.layers-1:
		if err := k.startBackward(r, dyv); err != nil {
			return nil, err
		}
		k.setGradBuffers(wv)
	case l != k.bwdNext:
		return nil, fmt.Errorf("backward pass of layer %d before that of layer %d", l, l+1)
	}
	k.bwdNext = l - 1
	// Layer l's input gradient goes over its output rows (the next layer, which read them, is
	// done), or into rows of its own for the last layer.
	var dst [][]F
	if l > 0 || r.inputGrad {
		dst = k.grad
		if l < s.layers-1 {
			dst = k.out[l]
		}
	}
	k.backwardLayer(r, l, x, wv, &k.og, dst)
	k.og = outGrad[F]{rows: dst}
	if l > 0 || !r.inputGrad {
		return nil, nil
	}
	return tensor.New(tensor.WithShape(r.T*r.B, s.in), tensor.WithBacking(k.dx)), nil
}

// startBackward checks the output gradient dyv and prepares the backward pass of run r.
func (k *cpuRNN[F]) startBackward(r *rnnRun, dyv G.Value) error {
	s := k.s
	dy, ok := dyv.Data().([]F)
	W := s.dirs * s.hidden
	want := r.B * W
	if r.seq {
		want = r.T * r.B * W
	}
	if !ok || len(dy) != want {
		return fmt.Errorf("output gradient of %d values, want %d", dyv.Size(), want)
	}
	if !k.plan.grad && (s.layers > 1 || r.inputGrad) {
		// An Eval-mode graph differentiated all the same (the parity tests): lay the
		// gradient out now. Nothing was kept; every segment is recomputed.
		k.plan.grad = true
		n := k.layout(r, nil)
		if len(k.arena) < n {
			arena := make([]F, n)
			copy(arena, k.arena) // the layer outputs and entering states of the forward pass
			k.arena = arena
		}
		k.layout(r, k.arena)
	}
	if r.inputGrad {
		resize(&k.dx, r.T*r.B*s.in)
	}
	k.og = outGrad[F]{dy: dy, seq: r.seq}
	return nil
}

// backwardLayer is the backward pass of layer l: each direction segment by segment in the
// reverse of its forward order, the segment's states (from its kept activations, or by
// recomputing its forward pass), BPTT through it, its weight gradients (added to those of the
// segments before), and its share of the input gradient (into dst; nil: none).
func (k *cpuRNN[F]) backwardLayer(r *rnnRun, l int, x []F, wv []G.Value, og *outGrad[F], dst [][]F) {
	s := k.s
	for d := 0; d < s.dirs; d++ {
		_, whh, bih, bhh := k.weights(wv, l, d)
		k.prepareWeights(d, whh, bih, bhh)
	}
	gi := func(d, p int) []F { return k.grads[s.param(l, d, p)] }
	clear(resize(&k.done, k.plan.S))
	k.bySegment(func(d, i int) {
		wih, whh, bih, bhh := k.weights(wv, l, d)
		sg := &k.dir[d].seg
		k.setSegment(sg, r, l, d, k.plan.order(k.plan.S-1-i, d), x)
		if sg.kept {
			k.segmentStates(r, sg)
		} else {
			k.segmentForward(r, sg, wih, bih, bhh)
		}
		k.cell.backwardSegment(k, r, sg, whh, og)
		k.cell.paramGrads(k, r, sg, gi(d, pWih), gi(d, pWhh), gi(d, pBih), gi(d, pBhh), i == 0)
		if dst != nil {
			k.inputGrad(r, sg, wih, dst[sg.j])
		}
	})
	for d := 0; d < s.dirs; d++ {
		k.cell.tieBiasGrads(gi(d, pBih), gi(d, pBhh), s.hidden)
	}
}

// segmentStates recomputes the segment's states from its kept activations and its entering
// state.
func (k *cpuRNN[F]) segmentStates(r *rnnRun, sg *segment[F]) {
	k.cell.segmentStates(k, r, sg)
}

// startStep, backwards, brings the carried gradient dh of each row of step t up to date: the
// rows that continue into the step after t (in the direction's order) carry the gradient
// flowing back from it, to which the output gradient of t is added; the others start here,
// with the output gradient alone (and, for the LSTM, no cell-state gradient).
func (k *cpuRNN[F]) startStep(r *rnnRun, sg *segment[F], t int, og *outGrad[F]) {
	H, W, dr := k.s.hidden, k.s.dirs*k.s.hidden, &k.dir[sg.d]
	carried := 0 // rows of t that continue into the step after it
	if sg.d == 0 && t+1 < r.T {
		carried = r.nb[t+1]
	} else if sg.d == 1 && t > 0 {
		carried = r.nb[t]
	}
	for b := 0; b < r.nb[t]; b++ {
		dh := dr.dh[b*H : (b+1)*H]
		e := og.row(r, sg, t, b, H, W)
		switch {
		case b >= carried && e != nil:
			copy(dh, e)
		case b >= carried:
			clear(dh)
		case e != nil:
			for i := range dh {
				dh[i] += e[i]
			}
		}
		if b >= carried && dr.dc != nil {
			clear(dr.dc[b*H : (b+1)*H])
		}
	}
}

// alignPrev fills the direction's hp scratch with, for each row of the segment, its hidden
// state at the step before (zero where the sequence starts), and returns it.
func (k *cpuRNN[F]) alignPrev(r *rnnRun, sg *segment[F]) []F {
	H := k.s.hidden
	hp := k.dir[sg.d].hp[:sg.rows*H]
	for t := sg.t0; t < sg.t1; t++ {
		lr := r.off[t] - sg.r0
		h, _, m := sg.prev(r, t, H)
		copy(hp[lr*H:(lr+m)*H], h)
		clear(hp[(lr+m)*H : (lr+r.nb[t])*H])
	}
	return hp
}

// firstShare is the direction whose share of segment j's input gradient is added first. The
// reverse direction reaches the early segments first, the forward direction the late ones, so
// that in the concurrent backward pass the second direction rarely waits for the first, and
// in the sequential one (the directions taking turns, segment by segment) never does.
func (k *cpuRNN[F]) firstShare(j int) int {
	if k.s.dirs == 2 && j < k.plan.S/2 {
		return 1
	}
	return 0
}

// inputGrad adds the segment's share of the input gradient, dGates W_ih, into dX, its rows of
// the layer's input gradient: the first direction's share (firstShare) sets them, the
// second's, after waiting for the first, adds to them. Once both are in, the dropout of the
// layer's input applies (layer 1 and up), or they are copied into the padded input gradient
// (layer 0).
func (k *cpuRNN[F]) inputGrad(r *rnnRun, sg *segment[F], wih, dX []F) {
	inl := k.s.layerIn(sg.l)
	dX = dX[:sg.rows*inl]
	first := k.firstShare(sg.j) == sg.d
	if !first {
		k.mu.Lock()
		for !k.done[sg.j] {
			k.cond.Wait()
		}
		k.mu.Unlock()
	}
	beta := F(1)
	if first {
		beta = 0
	}
	k.cell.inputGrad(k, sg, wih, dX, beta)
	if first && k.s.dirs == 2 {
		k.mu.Lock()
		k.done[sg.j] = true
		k.cond.Broadcast()
		k.mu.Unlock()
		return
	}
	if sg.l > 0 && len(r.keep) > 0 {
		applyKeep(dX, dX, r.keep[sg.l], sg.r0*inl, F(r.scale))
	}
	if sg.l == 0 {
		for t := sg.t0; t < sg.t1; t++ {
			n, lr := r.nb[t], r.off[t]-sg.r0
			copy(k.dx[t*r.B*inl:(t*r.B+n)*inl], dX[lr*inl:(lr+n)*inl])
			clear(k.dx[(t*r.B+n)*inl : (t+1)*r.B*inl])
		}
	}
}

// bigGemm is gemm (alpha 1) for the products over a segment's rows (input projections, weight
// gradients, input gradients). When the directions do not already occupy the workers and the
// BLAS is single-threaded, it splits the rows of C over the workers.
func (k *cpuRNN[F]) bigGemm(transA, transB bool, m, n, kk int, a []F, lda int, b []F, ldb int, beta F, c []F, ldc int) {
	w := k.s.dev.Workers
	if k.concurrent || w < 2 || k.bl.Threads() > 1 || m < 128 {
		gemm(k.bl, transA, transB, m, n, kk, 1, a, lda, b, ldb, beta, c, ldc)
		return
	}
	gemmRows(k.bl, w, transA, transB, m, n, kk, a, lda, b, ldb, beta, c, ldc)
}

// colSums sets dst[j] = beta*dst[j] + sum over the m rows of a (m×n, leading dimension lda) of
// a[i][j].
func (k *cpuRNN[F]) colSums(dst []F, a []F, m, n, lda int, beta F) {
	colSums(k.bl, dst, a, k.ones, m, n, lda, beta)
}

// begin chooses the threading of one Forward or Backward (see cpuRNN) and returns the function
// that restores the BLAS thread setting.
func (k *cpuRNN[F]) begin() (restore func()) {
	k.concurrent = k.s.dirs == 2 && k.s.dev.Workers >= 2
	if n := k.bl.Threads(); k.concurrent && n > 1 {
		k.bl.SetThreads(1)
		return func() { k.bl.SetThreads(n) }
	}
	return func() {}
}

// bySegment runs f(d, i) for every direction d and i = 0, 1, ..., S-1 in turn: the two
// directions concurrently when k.concurrent, else taking turns segment by segment (the
// backward pass's shares of the input gradient need the two to progress together: see
// firstShare).
func (k *cpuRNN[F]) bySegment(f func(d, i int)) {
	S := k.plan.S
	if !k.concurrent {
		for i := 0; i < S; i++ {
			for d := 0; d < k.s.dirs; d++ {
				f(d, i)
			}
		}
		return
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < S; i++ {
			f(1, i)
		}
	}()
	for i := 0; i < S; i++ {
		f(0, i)
	}
	wg.Wait()
}

// applyKeep sets dst[i] = src[i]*scale where bit off+i of keep is 1, else 0 (the
// multiplication avoids a branch on random bits).
func applyKeep[F float](dst, src []F, keep []uint64, off int, scale F) {
	src = src[:len(dst)]
	for i := range dst {
		bit := keep[(off+i)>>6] >> ((off + i) & 63) & 1
		dst[i] = src[i] * (scale * F(bit))
	}
}

// sub returns the rows×cols block of the row-major matrix buf (leading dimension ld) that
