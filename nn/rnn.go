package nn

// The machinery shared by the fused recurrent layers (LSTM in lstm.go, GRU in gru.go):
// the layer's parameters and bookkeeping, the packed batch layout, the Gorgonia ops, and the
// CPU engine that runs a whole stack of layers and directions.
//
// # Graph
//
// A layer's Forward adds ONE op for the whole stack (all layers, both directions, the dropout
// between layers) to the graph. Its backward (SymDiff) is one backward op, which returns the
// input gradient and keeps every parameter gradient in the layer's buffers, plus one small
// getter op per parameter that hands that gradient to Gorgonia (ops have one output). The
// graph is rebuilt for every batch, so ops are made per Forward call; each takes a fresh id
// from a counter the layer owns (Gorgonia merges nodes with equal hashes, so two calls must
// never hash alike). The heavy work buffers live in the layer's kernels and are reused, grown
// only when a larger batch comes, so a steady-state training step allocates almost nothing.
//
// A layer serves one graph at a time: building a newer graph with it (another Forward, even
// one that fails) makes the older graph's ops fail with an error rather than read the newer
// batch's buffers.
//
// # Packed layout
//
// Sequences come sorted by length, longest first, in time-major rows (row t*B+b is sequence b
// at step t). At step t the active sequences are the first nb[t] rows. Inside the op every
// per-row buffer is packed as PyTorch's PackedSequence is: row (t, b) of the batch sits at row
// off[t]+b, N = sum of the lengths rows in all, so no work or memory goes to padding.
//
// # Speed
//
// Measured with BenchmarkLSTM and BenchmarkGRU (lstm_test.go, gru_test.go) on the project's
// 2-core AMD EPYC (Zen 4) with OpenBLAS 0.3.21, in the quieter moments of a shared machine
// (best of 3; noise about ±10%), B=64, T=200, "full" = every length T, "varied" = lengths in
// [T/2, T]; GFLOP/s count the matrix products over the real tokens (the CPU spike's count).
// PyTorch 2.15 (2 threads, scripts/bench_torch_rnn.py) ran the same shapes just before.
//
//	                             this op               PyTorch packed     PyTorch unpacked
//	LSTM train full           1.10 s  161 GFLOP/s     1.42 s             1.45 s
//	LSTM train varied         0.88 s  156 GFLOP/s     13-15 s (erratic)  -
//	LSTM forward full         0.38 s  155 GFLOP/s     0.35 s             0.39 s
//	LSTM forward varied       0.32 s  145 GFLOP/s     0.55 s             -
//	GRU train full            0.92 s  164 GFLOP/s     11-15 s            1.56 s
//	GRU forward full          0.35 s  160 GFLOP/s     0.46 s             0.45 s
//
// (LSTM: E=100, H=256, 2 layers, bidirectional, input gradient on; GRU: input 384, H=256, 2
// layers, bidirectional, frozen input.) A training step of the LSTM op uses 2.1 CPU-seconds
// and allocates about 7 KB; run through a Gorgonia graph as the step runner does
// (BenchmarkLSTMGraphStep) it takes 1.14 s.
//
// Where the time goes (perf): about 75% in OpenBLAS's sgemm kernel, 10% in its operand packing
// (most of it repacking W_hh for every step's small product), 6-8% in the cell arithmetic.
// What was measured on the way:
//   - Go's math.Exp-based sigmoid and tanh took about 30% of the step; a rational tanh
//     (sigmoid(x) = (1 + tanh(x/2))/2) in AVX2 assembly takes under 2% (0.3 ns a value).
//   - Directions concurrent on a single-threaded BLAS (the policy) against directions in turn
//     on a two-threaded one: 1.10 s against 1.15 s for the training step, 0.38 s against
//     0.48 s for the forward pass, and fewer CPU-seconds (OpenBLAS's idle threads spin).
//   - The per-step product h W_hhᵀ with W_hhᵀ stored (transposed once per pass) runs at about
//     82 GFLOP per CPU-second against 72 with W_hh transposed on the fly.
//   - The large products (input projections over all steps, weight gradients as one product
//     over all steps, input gradients) run at 95-100 GFLOP per CPU-second, the per-step
//     products at 80-85: a kernel with W_hh packed once per pass is the next step.
//
// # Memory
//
// The time steps of a batch are cut into segments of about 2,048 packed rows, and every pass
// works segment by segment (see cpuRNN). Per packed row (token), a training batch of the
// recipe's LSTM (or GRU) keeps for its backward pass the gate activations, 4H floats per
// layer and direction (16 KB), layer 0's output, which layer 1 reads, and backwards its
// gradient (2 KB each), and per segment its starting states (2 × B×H floats per layer and
// direction). All of it lives in one arena per layer, laid out anew for each batch, whose
// size the activation budget bounds (SetMaxActivationBytes, default 384 MiB: every
// activation kept up to about 19,000 tokens). Beyond it, the activations of the segments
// that do not fit are recomputed in the backward pass from their starting states, with the
// same results bit for bit: the arena stays at the budget whatever the batch, unless layer
// 0's output and gradient alone exceed it (over about 130,000 tokens). Eval mode keeps no
// activations: about 2.3 KB a row (layer 0's output, the starting states) and a segment's
// scratch.
//
// # Kernels
//
// The math sits behind rnnKernels, one implementation per device and precision; the Gorgonia
// glue only calls through it. The CPU implementation (cpuRNN) is generic over float32 and
// float64: training runs float32, the finite-difference gradient checks run the same code in
// float64. A CUDA implementation can slot in beside it without touching the layers or models.

import (
	"errors"
	"fmt"
	"hash"
	"hash/fnv"
	"math"
	"runtime/debug"
	"sync"

	"github.com/chewxy/hm"
	gblas "gonum.org/v1/gonum/blas"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/sentibench/sentibench/internal/blas"
)

// cellKind says which recurrent cell a stack is made of.
type cellKind int

const (
	cellLSTM cellKind = iota
	cellGRU
)

func (k cellKind) String() string {
	if k == cellGRU {
		return "GRU"
	}
	return "LSTM"
}

// gates is the number of H-wide gate blocks of the cell: 4 (i, f, g, o) or 3 (r, z, n).
func (k cellKind) gates() int {
	if k == cellGRU {
		return 3
	}
	return 4
}

// Parameter roles within one layer and direction, in PyTorch's state_dict order.
const (
	pWih = iota // weight_ih [G*H, in]
	pWhh        // weight_hh [G*H, H]
	pBih        // bias_ih [G*H]
	pBhh        // bias_hh [G*H]
	pCount
)

// DefaultMaxActivationBytes is the recurrent layers' default activation budget (see
// LSTM.SetMaxActivationBytes): 384 MiB. With the recipe's LSTM a training batch keeps every
// activation up to about 19,000 tokens (64 reviews of 300), and the batches of the longest
// reviews (75,000 tokens) keep a quarter of them. With 512 MiB a full-IMDB lstm run peaked at
// 1,062 MiB (the arena, the model and Adam state, the token ids and a batch's temporaries,
// plus the collector's headroom); 384 MiB keeps it under 1 GiB.
const DefaultMaxActivationBytes = 384 << 20

// defaultSegRows is the segments' target size in packed rows: large enough for efficient
// products over a segment's rows, small enough that a segment's scratch (about 13 MB per
// direction for the recipe's LSTM, 8 MB more when a segment is recomputed) stays small.
const defaultSegRows = 2048

// rnnStack is a stack of recurrent layers, the common core of LSTM and GRU.
type rnnStack struct {
	cell      cellKind
	dev       *CPU
	prefix    string
	in        int // input width of layer 0
	hidden    int
	layers    int
	dirs      int // 1 or 2
	dropout   float64
	inputGrad bool
	params    []*Param

	// maxActBytes is the activation budget: the most bytes the kernels' buffers of a batch
	// take (≤ 0: no limit); the gate activations of the segments beyond it are recomputed in
	// the backward pass. segRows is the segments' target size in packed rows. See cpuRNN.
	maxActBytes int64
	segRows     int

	// Per-graph state. nextID numbers the ops; current is the run (Forward call) whose graph
	// may execute; forwardOf is the run whose forward pass the kernels' buffers hold.
	nextID    uint64
	current   uint64
	forwardOf uint64
	run       rnnRun
	k32       rnnKernels
	k64       rnnKernels
}

func newRNNStack(cell cellKind, dev *CPU, prefix string, inputDim, hidden, layers int, bidirectional bool, dropout float64, inputGrad bool) (*rnnStack, error) {
	switch {
	case dev == nil:
		return nil, fmt.Errorf("nn: new %v %q: no device", cell, prefix)
	case dev.BLAS == nil:
		return nil, fmt.Errorf("nn: new %v %q: the device has no BLAS", cell, prefix)
	case inputDim < 1 || hidden < 1 || layers < 1:
		return nil, fmt.Errorf("nn: new %v %q: input width %d, hidden size %d and layers %d must all be at least 1", cell, prefix, inputDim, hidden, layers)
	case !(dropout >= 0 && dropout < 1):
		return nil, fmt.Errorf("nn: new %v %q: dropout %v is not in [0, 1)", cell, prefix, dropout)
	}
	s := &rnnStack{cell: cell, dev: dev, prefix: prefix, in: inputDim, hidden: hidden, layers: layers,
		dirs: 1, dropout: dropout, inputGrad: inputGrad, maxActBytes: DefaultMaxActivationBytes, segRows: defaultSegRows}
	if bidirectional {
		s.dirs = 2
	}
	gh := cell.gates() * hidden
	for l := 0; l < layers; l++ {
		for d := 0; d < s.dirs; d++ {
			suffix := fmt.Sprintf("_l%d", l)
			if d == 1 {
				suffix += "_reverse"
			}
			s.params = append(s.params,
				NewParam(prefix+"weight_ih"+suffix, gh, s.layerIn(l)),
				NewParam(prefix+"weight_hh"+suffix, gh, hidden),
				NewParam(prefix+"bias_ih"+suffix, gh),
				NewParam(prefix+"bias_hh"+suffix, gh))
		}
	}
	return s, nil
}

// layerIn is the input width of layer l.
func (s *rnnStack) layerIn(l int) int {
	if l == 0 {
		return s.in
	}
	return s.dirs * s.hidden
}

// param returns the index in params of role p of layer l, direction d.
func (s *rnnStack) param(l, d, p int) int { return (l*s.dirs+d)*pCount + p }

// initParams draws every weight and bias from U(-1/sqrt(H), 1/sqrt(H)), PyTorch's default for
// its recurrent layers, in parameter order.
func (s *rnnStack) initParams(rng *RNG) {
	k := 1 / math.Sqrt(float64(s.hidden))
	for _, p := range s.params {
		data := p.Data()
		for i := range data {
			data[i] = float32((2*rng.Float64() - 1) * k)
		}
	}
}

// rnnRun describes one Forward call: the batch layout and what the op must produce. Its
// slices belong to the layer and are reused by the next Forward.
type rnnRun struct {
	id        uint64
	T, B, N   int
	lengths   []int
	nb        []int // nb[t]: active sequences at step t (a prefix of the batch); nb[T] = 0
	off       []int // off[t]: packed row of (t, 0); off[T] = N
	seq       bool  // output the whole last-layer sequence (T*B, dirs*H), not the final states
	train     bool
	inputGrad bool
	keep      [][]uint64 // keep[l] (l >= 1): dropout keep bits of layer l's input, N*dirs*H of them; empty: no dropout
	scale     float64    // 1/(1-p): the kept inputs' scale
}

// prevStep returns, for step t of direction d (0 forward, 1 reverse), the packed row of the
// step that ran just before it and how many of t's rows continue a sequence from there (the
// others start with a zero state).
func (r *rnnRun) prevStep(t, d int) (row, m int) {
	if d == 0 {
		if t == 0 {
			return 0, 0
		}
		return r.off[t-1], r.nb[t]
	}
	if t+1 >= r.T {
		return 0, 0
	}
	return r.off[t+1], r.nb[t+1]
}

// setBatch validates the lengths and fills the layout.
func (r *rnnRun) setBatch(lengths []int, T int) error {
	B := len(lengths)
	if B == 0 {
		return errors.New("empty batch")
	}
	if T < 1 {
		return fmt.Errorf("padded length T = %d", T)
	}
	n := 0
	for b, l := range lengths {
		if l < 1 || l > T {
			return fmt.Errorf("sequence %d has length %d, want 1..T=%d", b, l, T)
		}
		if b > 0 && l > lengths[b-1] {
			return fmt.Errorf("lengths are not sorted longest first (sequence %d: %d after %d)", b, l, lengths[b-1])
		}
		n += l
	}
	r.T, r.B, r.N = T, B, n
	r.lengths = append(r.lengths[:0], lengths...)
	r.nb = resizeInts(r.nb, T+1)
	r.off = resizeInts(r.off, T+1)
	b, o := B, 0
	for t := 0; t < T; t++ {
		for b > 0 && lengths[b-1] <= t {
			b--
		}
		r.nb[t], r.off[t] = b, o
		o += b
	}
	r.nb[T], r.off[T] = 0, o
	return nil
}

// drawMasks draws the dropout keep flags of the inputs of layers 1..n-1 from rng.
func (r *rnnRun) drawMasks(s *rnnStack, rng *RNG) {
	r.keep = resizeMasks(r.keep, s.layers)
	if !r.train || s.dropout == 0 || s.layers == 1 {
		for l := range r.keep {
			r.keep[l] = r.keep[l][:0]
		}
		r.keep = r.keep[:0]
		return
	}
	r.scale = 1 / (1 - s.dropout)
	// A draw is 16 random bits (four per generator call); the input is dropped when they fall
	// below p*2^16, so p is applied to 1/65536.
	thr := uint64(math.Round(s.dropout * (1 << 16)))
	width := s.dirs * s.hidden
	for l := 1; l < s.layers; l++ {
		n := r.N * width
		k := resizeWords(r.keep[l], (n+63)/64)
		clear(k)
		var u uint64
		for i := 0; i < n; i++ {
			if i&3 == 0 {
				u = rng.Uint64()
			}
			if u&0xffff >= thr {
				k[i>>6] |= 1 << (i & 63)
			}
			u >>= 16
		}
		r.keep[l] = k
	}
}

func resizeInts(s []int, n int) []int {
	if cap(s) < n {
		return make([]int, n)
	}
	return s[:n]
}

func resizeWords(s []uint64, n int) []uint64 {
	if cap(s) < n {
		return make([]uint64, n)
	}
	return s[:n]
}

func resizeMasks(s [][]uint64, n int) [][]uint64 {
	if cap(s) < n {
		t := make([][]uint64, n)
		copy(t, s[:cap(s)])
		return t
	}
	return s[:n]
}

// grow returns buf with length n, reallocating (without copying) only when it is too short.
func grow[F float](buf []F, n int) []F {
	if cap(buf) < n {
		return make([]F, n)
	}
	return buf[:n]
}

// forward adds the stack to x's graph with the weight nodes w (in Params order, float32 or
// float64 like x). It is Forward without the parameter binding; the gradient checks call it
// with float64 weights.
func (s *rnnStack) forward(x *G.Node, w G.Nodes, lengths []int, T int, mode Mode, rng *RNG, seq bool) (final, outputs *G.Node, err error) {
	fail := func(err error) (*G.Node, *G.Node, error) {
		return nil, nil, fmt.Errorf("nn: %v %q forward: %w", s.cell, s.prefix, err)
	}
	if x == nil {
		return fail(errors.New("no input node"))
	}
	if len(w) != len(s.params) {
		return fail(fmt.Errorf("%d weight nodes, want %d", len(w), len(s.params)))
	}
	// The run is about to change: older graphs may no longer execute, even if this call fails.
	s.current = 0
	s.nextID++
	run := &s.run
	run.id = s.nextID
	if err := run.setBatch(lengths, T); err != nil {
		return fail(err)
	}
	if shp := x.Shape(); len(shp) != 2 || shp[0] != T*run.B || shp[1] != s.in {
		return fail(fmt.Errorf("input shape %v, want (T*B, %d) = (%d, %d)", x.Shape(), s.in, T*run.B, s.in))
	}
	dt := x.Dtype()
	if dt != tensor.Float32 && dt != tensor.Float64 {
		return fail(fmt.Errorf("input dtype %v, want float32 or float64", dt))
	}
	for i, n := range w {
		p := s.params[i]
		if n == nil || !n.Shape().Eq(tensor.Shape(p.Shape)) || n.Dtype() != dt {
			return fail(fmt.Errorf("weight node %d for %s: want shape %v and dtype %v", i, p.Name, p.Shape, dt))
		}
	}
	run.train = mode == Train
	run.seq = seq
	run.inputGrad = s.inputGrad
	if run.train && s.dropout > 0 && s.layers > 1 && rng == nil {
		return fail(errors.New("training with dropout needs a random generator"))
	}
	run.drawMasks(s, rng)
	s.current = run.id

	op := &rnnOp{s: s, run: run, id: run.id, T: run.T, B: run.B, seq: seq, inputGrad: run.inputGrad}
	out, err := G.ApplyOp(op, append(G.Nodes{x}, w...)...)
	if err != nil {
		return fail(err)
	}
	if !seq {
		return out, nil, nil
	}
	final, err = G.ApplyOp(&rnnFinalOp{s: s, run: run, id: run.id, T: run.T, B: run.B}, out)
	if err != nil {
		return fail(err)
	}
	return final, out, nil
}

// bindParams returns the graph nodes of the layer's parameters in g: the input node named
// Param.Name that wraps Param.Value itself, made here when the graph has none yet. The step
// runner finds them by value after the model's Forward.
func (s *rnnStack) bindParams(g *G.ExprGraph) (G.Nodes, error) {
	nodes := make(G.Nodes, len(s.params))
	for i, p := range s.params {
		n, err := paramNode(g, p)
		if err != nil {
			return nil, err
		}
		nodes[i] = n
	}
	return nodes, nil
}

// paramNode returns p's node in g: the node named p.Name whose value is p.Value (no copy)
// when there is one, else a new input node like it.
func paramNode(g *G.ExprGraph, p *Param) (*G.Node, error) {
	if p.Value == nil {
		return nil, fmt.Errorf("nn: parameter %s has no value", p.Name)
	}
	for _, n := range g.ByName(p.Name) {
		if n.Value() == G.Value(p.Value) {
			return n, nil
		}
	}
	opts := []G.NodeConsOpt{G.WithName(p.Name), G.WithShape(p.Shape...), G.WithValue(p.Value)}
	switch len(p.Shape) {
	case 1:
		return G.NewVector(g, tensor.Float32, opts...), nil
	case 2:
		return G.NewMatrix(g, tensor.Float32, opts...), nil
	}
	return G.NewTensor(g, tensor.Float32, len(p.Shape), opts...), nil
}

// kernels returns the layer's kernels for dtype dt, made on first use.
func (s *rnnStack) kernels(dt tensor.Dtype) (rnnKernels, error) {
	switch dt {
	case tensor.Float32:
		if s.k32 == nil {
			s.k32 = newCPURNN[float32](s)
		}
		return s.k32, nil
	case tensor.Float64:
		if s.k64 == nil {
			s.k64 = newCPURNN[float64](s)
		}
		return s.k64, nil
	}
	return nil, fmt.Errorf("dtype %v is not supported", dt)
}

// ---------------------------------------------------------------------------- kernels

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
	// Grad returns the gradient of parameter i from the last Backward, shaped as the
	// parameter. It stays valid until the next Backward.
	Grad(i int) G.Value
}

// ---------------------------------------------------------------------------- Gorgonia ops

func tensorType(dims int) G.TensorType { return G.TensorType{Dims: dims, Of: hm.TypeVariable('a')} }

// rnnOp is the forward op: inputs x and the weights (Params order); output the final states
// (B, dirs*H) or, for a sequence run, the outputs (T*B, dirs*H). It keeps its own copy of what
// shapes the graph; run is the layer's (shared) description of the newest batch, used only
// once the op has checked that it is that batch's.
type rnnOp struct {
	s         *rnnStack
	run       *rnnRun
	id        uint64
	T, B      int
	seq       bool
	inputGrad bool
}

func (op *rnnOp) Arity() int { return 1 + len(op.s.params) }

func (op *rnnOp) Type() hm.Type {
	ts := []hm.Type{tensorType(2)}
	for _, p := range op.s.params {
		ts = append(ts, tensorType(len(p.Shape)))
	}
	return hm.NewFnType(append(ts, tensorType(2))...)
}

func (op *rnnOp) InferShape(...G.DimSizer) (tensor.Shape, error) {
	if op.seq {
		return tensor.Shape{op.T * op.B, op.s.dirs * op.s.hidden}, nil
	}
	return tensor.Shape{op.B, op.s.dirs * op.s.hidden}, nil
}

func (op *rnnOp) ReturnsPtr() bool     { return false }
func (op *rnnOp) CallsExtern() bool    { return false }
func (op *rnnOp) OverwritesInput() int { return -1 }
func (op *rnnOp) String() string {
	return fmt.Sprintf("%v%q#%d{T=%d,B=%d}", op.s.cell, op.s.prefix, op.id, op.T, op.B)
}
func (op *rnnOp) WriteHash(h hash.Hash) { fmt.Fprint(h, op.String()) }
func (op *rnnOp) Hashcode() uint32      { return hashOf(op) }

func (op *rnnOp) DiffWRT(n int) []bool {
	d := make([]bool, n)
	for i := range d {
		d[i] = i > 0 || op.inputGrad
	}
	return d
}

func (op *rnnOp) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	bw, err := G.ApplyOp(&rnnBwdOp{op}, append(append(G.Nodes{}, inputs...), grad)...)
	if err != nil {
		return nil, err
	}
	res := make(G.Nodes, len(inputs))
	if op.inputGrad {
		res[0] = bw
	}
	for i := range op.s.params {
		if res[i+1], err = G.ApplyOp(&rnnGradOp{op, i}, bw); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// check says whether the op may run: its graph must be the layer's newest.
func (op *rnnOp) check() error {
	if op.s.current != op.id {
		return fmt.Errorf("nn: %v %q: this graph's op #%d is stale: the layer has since been used by a newer graph (#%d); a layer serves one graph at a time", op.s.cell, op.s.prefix, op.id, op.s.current)
	}
	return nil
}

func (op *rnnOp) Do(vals ...G.Value) (G.Value, error) {
	if err := op.check(); err != nil {
		return nil, err
	}
	k, err := op.s.kernels(vals[0].Dtype())
	if err != nil {
		return nil, fmt.Errorf("nn: %v %q: %w", op.s.cell, op.s.prefix, err)
	}
	out, err := k.Forward(op.run, vals[0], vals[1:])
	if err != nil {
		return nil, fmt.Errorf("nn: %v %q forward: %w", op.s.cell, op.s.prefix, err)
	}
	op.s.forwardOf = op.id
	return out, nil
}

// rnnBwdOp is the backward op: inputs x, the weights and the output's gradient; output the
// input gradient (a (1, 1) placeholder when the layer computes none). The parameter
// gradients stay in the kernels, read by rnnGradOp.
type rnnBwdOp struct{ *rnnOp }

func (op *rnnBwdOp) Arity() int { return 2 + len(op.s.params) }

func (op *rnnBwdOp) Type() hm.Type {
	ts := []hm.Type{tensorType(2)}
	for _, p := range op.s.params {
		ts = append(ts, tensorType(len(p.Shape)))
	}
	return hm.NewFnType(append(ts, tensorType(2), tensorType(2))...)
}

func (op *rnnBwdOp) InferShape(...G.DimSizer) (tensor.Shape, error) {
	if !op.inputGrad {
		return tensor.Shape{1, 1}, nil
	}
	return tensor.Shape{op.T * op.B, op.s.in}, nil
}

func (op *rnnBwdOp) String() string        { return "Bwd" + op.rnnOp.String() }
func (op *rnnBwdOp) WriteHash(h hash.Hash) { fmt.Fprint(h, op.String()) }
func (op *rnnBwdOp) Hashcode() uint32      { return hashOf(op) }
func (op *rnnBwdOp) DiffWRT(n int) []bool  { return make([]bool, n) }
func (op *rnnBwdOp) SymDiff(G.Nodes, *G.Node, *G.Node) (G.Nodes, error) {
	return nil, errors.New("nn: recurrent layers have no second derivative")
}

func (op *rnnBwdOp) Do(vals ...G.Value) (G.Value, error) {
	if err := op.check(); err != nil {
		return nil, err
	}
	if op.s.forwardOf != op.id {
		return nil, fmt.Errorf("nn: %v %q: backward op #%d ran before its forward op", op.s.cell, op.s.prefix, op.id)
	}
	k, err := op.s.kernels(vals[0].Dtype())
	if err != nil {
		return nil, fmt.Errorf("nn: %v %q: %w", op.s.cell, op.s.prefix, err)
	}
	n := len(vals)
	dx, err := k.Backward(op.run, vals[n-1], vals[0], vals[1:n-1])
	if err != nil {
		return nil, fmt.Errorf("nn: %v %q backward: %w", op.s.cell, op.s.prefix, err)
	}
	if dx == nil {
		dt := vals[0].Dtype()
		return tensor.New(tensor.Of(dt), tensor.WithShape(1, 1)), nil
	}
	return dx, nil
}

// rnnGradOp hands parameter i's gradient, computed by the backward op (its input), to the
// graph.
type rnnGradOp struct {
	*rnnOp
	i int
}

func (op *rnnGradOp) Arity() int { return 1 }
func (op *rnnGradOp) Type() hm.Type {
	return hm.NewFnType(tensorType(2), tensorType(len(op.s.params[op.i].Shape)))
}
func (op *rnnGradOp) InferShape(...G.DimSizer) (tensor.Shape, error) {
	return tensor.Shape(op.s.params[op.i].Shape).Clone(), nil
}
func (op *rnnGradOp) String() string {
	return fmt.Sprintf("Grad(%s)%v", op.s.params[op.i].Name, op.rnnOp)
}
func (op *rnnGradOp) WriteHash(h hash.Hash) { fmt.Fprint(h, op.String()) }
func (op *rnnGradOp) Hashcode() uint32      { return hashOf(op) }
func (op *rnnGradOp) DiffWRT(n int) []bool  { return make([]bool, n) }
func (op *rnnGradOp) SymDiff(G.Nodes, *G.Node, *G.Node) (G.Nodes, error) {
	return nil, errors.New("nn: recurrent layers have no second derivative")
}

func (op *rnnGradOp) Do(vals ...G.Value) (G.Value, error) {
	if err := op.check(); err != nil {
		return nil, err
	}
	k, err := op.s.kernels(vals[0].Dtype())
	if err != nil {
		return nil, err
	}
	return k.Grad(op.i), nil
}

// rnnFinalOp picks the final states (B, dirs*H) out of a sequence output (T*B, dirs*H): the
// forward direction's state at each sequence's last step, the reverse direction's at step 0.
type rnnFinalOp struct {
	s    *rnnStack
	run  *rnnRun
	id   uint64
	T, B int
}

func (op *rnnFinalOp) Arity() int    { return 1 }
func (op *rnnFinalOp) Type() hm.Type { return hm.NewFnType(tensorType(2), tensorType(2)) }
func (op *rnnFinalOp) InferShape(...G.DimSizer) (tensor.Shape, error) {
	return tensor.Shape{op.B, op.s.dirs * op.s.hidden}, nil
}
func (op *rnnFinalOp) ReturnsPtr() bool     { return false }
func (op *rnnFinalOp) CallsExtern() bool    { return false }
func (op *rnnFinalOp) OverwritesInput() int { return -1 }
func (op *rnnFinalOp) String() string {
	return fmt.Sprintf("Final%v%q#%d", op.s.cell, op.s.prefix, op.id)
}
func (op *rnnFinalOp) WriteHash(h hash.Hash) { fmt.Fprint(h, op.String()) }
func (op *rnnFinalOp) Hashcode() uint32      { return hashOf(op) }
func (op *rnnFinalOp) DiffWRT(n int) []bool  { return []bool{true} }
func (op *rnnFinalOp) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	d, err := G.ApplyOp(&rnnFinalBwdOp{op}, grad)
	return G.Nodes{d}, err
}

// rows returns, for sequence b, the padded rows holding its final forward and reverse states.
func (op *rnnFinalOp) rows(b int) (fwd, rev int) {
	return (op.run.lengths[b]-1)*op.run.B + b, b
}

func (op *rnnFinalOp) Do(vals ...G.Value) (G.Value, error) {
	if op.s.current != op.id {
		return nil, fmt.Errorf("nn: %v %q: stale graph", op.s.cell, op.s.prefix)
	}
	switch seq := vals[0].Data().(type) {
	case []float32:
		return finalGather(op, seq), nil
	case []float64:
		return finalGather(op, seq), nil
	}
	return nil, fmt.Errorf("nn: %v %q: dtype %v is not supported", op.s.cell, op.s.prefix, vals[0].Dtype())
}

func finalGather[F float](op *rnnFinalOp, seq []F) G.Value {
	H, W := op.s.hidden, op.s.dirs*op.s.hidden
	out := make([]F, op.run.B*W)
	for b := 0; b < op.run.B; b++ {
		f, r := op.rows(b)
		copy(out[b*W:b*W+H], seq[f*W:f*W+H])
		if op.s.dirs == 2 {
			copy(out[b*W+H:(b+1)*W], seq[r*W+H:(r+1)*W])
		}
	}
	return tensor.New(tensor.WithShape(op.run.B, W), tensor.WithBacking(out))
}

// rnnFinalBwdOp scatters the final states' gradient back into a sequence-shaped gradient.
type rnnFinalBwdOp struct{ *rnnFinalOp }

func (op *rnnFinalBwdOp) InferShape(...G.DimSizer) (tensor.Shape, error) {
	return tensor.Shape{op.T * op.B, op.s.dirs * op.s.hidden}, nil
}
func (op *rnnFinalBwdOp) String() string        { return "Bwd" + op.rnnFinalOp.String() }
func (op *rnnFinalBwdOp) WriteHash(h hash.Hash) { fmt.Fprint(h, op.String()) }
func (op *rnnFinalBwdOp) Hashcode() uint32      { return hashOf(op) }
func (op *rnnFinalBwdOp) DiffWRT(n int) []bool  { return make([]bool, n) }
func (op *rnnFinalBwdOp) SymDiff(G.Nodes, *G.Node, *G.Node) (G.Nodes, error) {
	return nil, errors.New("nn: recurrent layers have no second derivative")
}

func (op *rnnFinalBwdOp) Do(vals ...G.Value) (G.Value, error) {
	if op.s.current != op.id {
		return nil, fmt.Errorf("nn: %v %q: stale graph", op.s.cell, op.s.prefix)
	}
	switch d := vals[0].Data().(type) {
	case []float32:
		return finalScatter(op, d), nil
	case []float64:
		return finalScatter(op, d), nil
	}
	return nil, fmt.Errorf("nn: %v %q: dtype %v is not supported", op.s.cell, op.s.prefix, vals[0].Dtype())
}

func finalScatter[F float](op *rnnFinalBwdOp, d []F) G.Value {
	H, W := op.s.hidden, op.s.dirs*op.s.hidden
	out := make([]F, op.run.T*op.run.B*W)
	for b := 0; b < op.run.B; b++ {
		f, r := op.rows(b)
		copy(out[f*W:f*W+H], d[b*W:b*W+H])
		if op.s.dirs == 2 {
			copy(out[r*W+H:(r+1)*W], d[b*W+H:(b+1)*W])
		}
	}
	return tensor.New(tensor.WithShape(op.run.T*op.run.B, W), tensor.WithBacking(out))
}

func hashOf(op interface{ WriteHash(hash.Hash) }) uint32 {
	h := fnv.New32a()
	op.WriteHash(h)
	return h.Sum32()
}

var (
	_ G.SDOp = (*rnnOp)(nil)
	_ G.SDOp = (*rnnBwdOp)(nil)
	_ G.SDOp = (*rnnGradOp)(nil)
	_ G.SDOp = (*rnnFinalOp)(nil)
	_ G.SDOp = (*rnnFinalBwdOp)(nil)
)

// ---------------------------------------------------------------------------- CPU engine

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
	bl         blas.Impl
	concurrent bool // the directions run concurrently (set by begin)
	plan       segPlan
	dir        [2]cpuDir[F]

	arena  []F        // the batch's buffers below, laid out by layout
	out    [][][]F    // out[l][j], l < layers-1: layer l's output rows of segment j, then backwards its input gradient rows
	grad   [][]F      // grad[j]: backwards, the last layer's input gradient rows of segment j
	kept   [2][][][]F // kept[d][l][j]: the gate activations of segment j of layer l kept for the backward pass (nil: recomputed)
	dx     []F        // input gradient returned by Backward, T*B*in
	seqOut []F        // sequence output returned by Forward, T*B*dirs*H
	final  []F        // final states returned by Forward, B*dirs*H
	ones   []F        // a segment's rows of ones, for the bias-gradient column sums
	grads  [][]F      // the last Backward's parameter gradients, in Params order (see setGradBuffers)
	own    [][]F      // the kernels' own gradient buffers, made on first need

	// done[j] says that the first direction's share of segment j's input gradient is in (see
	// inputGrad).
	mu   sync.Mutex
	cond *sync.Cond
	done []bool
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
	gh := k.s.cell.gates() * k.s.hidden
	if k.s.cell == cellGRU {
		return gh + k.s.hidden
	}
	return gh
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
		if s.cell == cellLSTM {
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
				if s.cell == cellLSTM {
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
		s[l] = resizeBools(s[l], S)
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

func newCPURNN[F float](s *rnnStack) *cpuRNN[F] {
	k := &cpuRNN[F]{s: s, bl: s.dev.BLAS, grads: make([][]F, len(s.params)), own: make([][]F, len(s.params))}
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
		dr.bias = grow(dr.bias, gh)
		dr.whhT = grow(dr.whhT, H*gh)
		dr.step = grow(dr.step, r.B*gh)
		dr.dh = grow(dr.dh, r.B*H)
		if s.cell == cellLSTM {
			dr.dc = grow(dr.dc, r.B*H)
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
	sg.gates, sg.hn = act[:n*gh], nil
	if s.cell == cellGRU {
		sg.hn = act[n*gh : n*(gh+H)]
	}
	sg.h, sg.hIn = dr.h[:n*H], dr.hIn[l][j]
	sg.c, sg.tc, sg.cIn = nil, nil, nil
	if s.cell == cellLSTM {
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
		k.seqOut = grow(k.seqOut, r.T*r.B*W)
	} else {
		k.final = grow(k.final, r.B*W)
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
	if k.s.cell == cellGRU {
		k.gruForwardSegment(r, sg, wih, bih, bhh)
	} else {
		k.lstmForwardSegment(r, sg, wih)
	}
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
func (k *cpuRNN[F]) Backward(r *rnnRun, dyv, xv G.Value, wv []G.Value) (G.Value, error) {
	defer k.begin()()
	s := k.s
	x, ok := xv.Data().([]F)
	if !ok || len(x) != r.T*r.B*s.in {
		return nil, fmt.Errorf("input of %d values, want T*B*in = %d", xv.Size(), r.T*r.B*s.in)
	}
	if err := k.checkWeights(wv); err != nil {
		return nil, err
	}
	dy, ok := dyv.Data().([]F)
	W := s.dirs * s.hidden
	want := r.B * W
	if r.seq {
		want = r.T * r.B * W
	}
	if !ok || len(dy) != want {
		return nil, fmt.Errorf("output gradient of %d values, want %d", dyv.Size(), want)
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
	k.setGradBuffers(wv)
	if r.inputGrad {
		k.dx = grow(k.dx, r.T*r.B*s.in)
	}
	og := outGrad[F]{dy: dy, seq: r.seq}
	for l := s.layers - 1; l >= 0; l-- {
		// Layer l's input gradient goes over its output rows (the next layer, which read
		// them, is done), or into rows of its own for the last layer.
		var dst [][]F
		if l > 0 || r.inputGrad {
			dst = k.grad
			if l < s.layers-1 {
				dst = k.out[l]
			}
		}
		k.backwardLayer(r, l, x, wv, &og, dst)
		og = outGrad[F]{rows: dst}
	}
	if !r.inputGrad {
		return nil, nil
	}
	return tensor.New(tensor.WithShape(r.T*r.B, s.in), tensor.WithBacking(k.dx)), nil
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
	k.done = resizeBools(k.done, k.plan.S)
	k.bySegment(func(d, i int) {
		wih, whh, bih, bhh := k.weights(wv, l, d)
		sg := &k.dir[d].seg
		k.setSegment(sg, r, l, d, k.plan.order(k.plan.S-1-i, d), x)
		if sg.kept {
			k.segmentStates(r, sg)
		} else {
			k.segmentForward(r, sg, wih, bih, bhh)
		}
		if s.cell == cellGRU {
			k.gruBackwardSegment(r, sg, whh, og)
			k.gruParamGrads(r, sg, gi(d, pWih), gi(d, pWhh), gi(d, pBih), gi(d, pBhh), i == 0)
		} else {
			k.lstmBackwardSegment(r, sg, whh, og)
			k.lstmParamGrads(r, sg, gi(d, pWih), gi(d, pWhh), gi(d, pBih), i == 0)
		}
		if dst != nil {
			k.inputGrad(r, sg, wih, dst[sg.j])
		}
	})
	for d := 0; d < s.dirs; d++ {
		if s.cell == cellGRU {
			copy(gi(d, pBih)[:2*s.hidden], gi(d, pBhh)[:2*s.hidden])
		} else {
			copy(gi(d, pBhh), gi(d, pBih))
		}
	}
}

// segmentStates recomputes the segment's states from its kept activations and its entering
// state.
func (k *cpuRNN[F]) segmentStates(r *rnnRun, sg *segment[F]) {
	if k.s.cell == cellGRU {
		k.gruSegmentStates(r, sg)
	} else {
		k.lstmSegmentStates(r, sg)
	}
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
	if k.s.cell == cellGRU {
		k.gruInputGrad(sg, wih, dX, beta)
	} else {
		k.lstmInputGrad(sg, wih, dX, beta)
	}
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
func resizeBools(s []bool, n int) []bool {
	if cap(s) < n {
		return make([]bool, n)
	}
	s = s[:n]
	clear(s)
	return s
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
// starts at (row, col), as the shortest slice BLAS accepts.
func sub[F float](buf []F, row, col, ld, rows, cols int) []F {
	if rows == 0 || cols == 0 {
		return nil
	}
	start := row*ld + col
	return buf[start : start+(rows-1)*ld+cols]
}

// gemm computes C = alpha*op(A)*op(B) + beta*C (row-major) with the device's BLAS.
func gemm[F float](bl blas.Impl, transA, transB bool, m, n, kk int, alpha F, a []F, lda int, b []F, ldb int, beta F, c []F, ldc int) {
	if m == 0 || n == 0 {
		return
	}
	tA, tB := gblas.NoTrans, gblas.NoTrans
	if transA {
		tA = gblas.Trans
	}
	if transB {
		tB = gblas.Trans
	}
	switch cc := any(c).(type) {
	case []float32:
		bl.Sgemm(tA, tB, m, n, kk, float32(alpha), any(a).([]float32), lda, any(b).([]float32), ldb, float32(beta), cc, ldc)
	case []float64:
		bl.Dgemm(tA, tB, m, n, kk, float64(alpha), any(a).([]float64), lda, any(b).([]float64), ldb, float64(beta), cc, ldc)
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
	var wg sync.WaitGroup
	chunk := (m + w - 1) / w
	part := func(lo, hi int) {
		rows := hi - lo
		var ab []F
		if transA {
			ab = sub(a, 0, lo, lda, kk, rows)
		} else {
			ab = sub(a, lo, 0, lda, rows, kk)
		}
		gemm(k.bl, transA, transB, rows, n, kk, 1, ab, lda, b, ldb, beta, sub(c, lo, 0, ldc, rows, n), ldc)
	}
	for lo := chunk; lo < m; lo += chunk {
		wg.Add(1)
		go func(lo, hi int) { defer wg.Done(); part(lo, hi) }(lo, min(lo+chunk, m))
	}
	part(0, chunk)
	wg.Wait()
}

// colSums sets dst[j] = beta*dst[j] + sum over the m rows of a (m×n, leading dimension lda) of
// a[i][j], as a BLAS matrix-vector product with k.ones.
func (k *cpuRNN[F]) colSums(dst []F, a []F, m, n, lda int, beta F) {
	if m == 0 {
		for j := range dst[:n] {
			dst[j] *= beta
		}
		return
	}
	switch d := any(dst).(type) {
	case []float32:
		k.bl.Sgemv(gblas.Trans, m, n, 1, any(a).([]float32), lda, any(k.ones).([]float32), 1, float32(beta), d, 1)
	case []float64:
		k.bl.Dgemv(gblas.Trans, m, n, 1, any(a).([]float64), lda, any(k.ones).([]float64), 1, float64(beta), d, 1)
	}
}

// transposeTo sets dst (cols×rows) to the transpose of the row-major rows×cols matrix src.
// The per-step product h W_hhᵀ runs faster on OpenBLAS with W_hhᵀ stored than with W_hh
// transposed on the fly (its packing of a transposed operand is the slower one), and the
// transpose costs one pass over W_hh per layer and pass.
func transposeTo[F float](dst, src []F, rows, cols int) {
	dst, src = dst[:rows*cols], src[:rows*cols]
	const blk = 32
	for i0 := 0; i0 < rows; i0 += blk {
		for j0 := 0; j0 < cols; j0 += blk {
			for i := i0; i < min(i0+blk, rows); i++ {
				for j := j0; j < min(j0+blk, cols); j++ {
					dst[j*rows+i] = src[i*cols+j]
				}
			}
		}
	}
}
