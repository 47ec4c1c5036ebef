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
// A layer serves one graph at a time: building a newer graph with it (another Forward) makes
// the older graph's ops fail with an error rather than read the newer batch's buffers.
//
// # Packed layout
//
// Sequences come sorted by length, longest first, in time-major rows (row t*B+b is sequence b
// at step t). At step t the active sequences are the first nb[t] rows. Inside the op every
// per-row buffer is packed as PyTorch's PackedSequence is: row (t, b) of the batch sits at row
// off[t]+b, N = sum of the lengths rows in all, so no work or memory goes to padding.
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
		dirs: 1, dropout: dropout, inputGrad: inputGrad}
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
	keep      [][]uint8 // keep[l] (l >= 1): dropout keep flags of layer l's input, N*dirs*H; nil: no dropout
	scale     float64   // 1/(1-p): the kept inputs' scale
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

// stepAt returns the time step processed s-th by direction d.
func (r *rnnRun) stepAt(s, d int) int {
	if d == 0 {
		return s
	}
	return r.T - 1 - s
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
	// A draw is 32 random bits; the input is dropped when they fall below p*2^32.
	thr := uint64(s.dropout * (1 << 32))
	width := s.dirs * s.hidden
	for l := 1; l < s.layers; l++ {
		k := resizeBytes(r.keep[l], r.N*width)
		for i := 0; i < len(k); i += 2 {
			u := rng.Uint64()
			k[i] = b2u(u&0xffffffff >= thr)
			if i+1 < len(k) {
				k[i+1] = b2u(u>>32 >= thr)
			}
		}
		r.keep[l] = k
	}
}

func b2u(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

func resizeInts(s []int, n int) []int {
	if cap(s) < n {
		return make([]int, n)
	}
	return s[:n]
}

func resizeBytes(s []uint8, n int) []uint8 {
	if cap(s) < n {
		return make([]uint8, n)
	}
	return s[:n]
}

func resizeMasks(s [][]uint8, n int) [][]uint8 {
	if cap(s) < n {
		t := make([][]uint8, n)
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

	op := &rnnOp{s: s, run: run, id: run.id}
	out, err := G.ApplyOp(op, append(G.Nodes{x}, w...)...)
	if err != nil {
		return fail(err)
	}
	if !seq {
		return out, nil, nil
	}
	final, err = G.ApplyOp(&rnnFinalOp{s: s, run: run, id: run.id}, out)
	if err != nil {
		return fail(err)
	}
	return final, out, nil
}

// bindParams returns the graph nodes of the layer's parameters in g: a node named as the
// parameter that holds its value, made here when the graph has none yet. A step runner that
// makes its parameter nodes before the model's Forward must name them Param.Name.
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

// paramNode returns p's node in g: the node named p.Name when there is one, else a new input
// node bound to p.Value.
func paramNode(g *G.ExprGraph, p *Param) (*G.Node, error) {
	for _, n := range g.ByName(p.Name) {
		if !n.Shape().Eq(tensor.Shape(p.Shape)) {
			return nil, fmt.Errorf("nn: graph node %q has shape %v, the parameter %v", p.Name, n.Shape(), p.Shape)
		}
		return n, nil
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
// (B, dirs*H) or, for a sequence run, the outputs (T*B, dirs*H).
type rnnOp struct {
	s   *rnnStack
	run *rnnRun
	id  uint64
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
	if op.run.seq {
		return tensor.Shape{op.run.T * op.run.B, op.s.dirs * op.s.hidden}, nil
	}
	return tensor.Shape{op.run.B, op.s.dirs * op.s.hidden}, nil
}

func (op *rnnOp) ReturnsPtr() bool     { return false }
func (op *rnnOp) CallsExtern() bool    { return false }
func (op *rnnOp) OverwritesInput() int { return -1 }
func (op *rnnOp) String() string {
	return fmt.Sprintf("%v%q#%d{T=%d,B=%d}", op.s.cell, op.s.prefix, op.id, op.run.T, op.run.B)
}
func (op *rnnOp) WriteHash(h hash.Hash) { fmt.Fprint(h, op.String()) }
func (op *rnnOp) Hashcode() uint32      { return hashOf(op) }

func (op *rnnOp) DiffWRT(n int) []bool {
	d := make([]bool, n)
	for i := range d {
		d[i] = i > 0 || op.s.inputGrad
	}
	return d
}

func (op *rnnOp) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	bw, err := G.ApplyOp(&rnnBwdOp{op}, append(append(G.Nodes{}, inputs...), grad)...)
	if err != nil {
		return nil, err
	}
	res := make(G.Nodes, len(inputs))
	if op.s.inputGrad {
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
	if !op.s.inputGrad {
		return tensor.Shape{1, 1}, nil
	}
	return tensor.Shape{op.run.T * op.run.B, op.s.in}, nil
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
	s   *rnnStack
	run *rnnRun
	id  uint64
}

func (op *rnnFinalOp) Arity() int    { return 1 }
func (op *rnnFinalOp) Type() hm.Type { return hm.NewFnType(tensorType(2), tensorType(2)) }
func (op *rnnFinalOp) InferShape(...G.DimSizer) (tensor.Shape, error) {
	return tensor.Shape{op.run.B, op.s.dirs * op.s.hidden}, nil
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
	return tensor.Shape{op.run.T * op.run.B, op.s.dirs * op.s.hidden}, nil
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
// Threading: the two directions of a layer run in two goroutines (each its input projection,
// its recurrence and, backwards, its weight gradients), and the input gradient's products are
// split by rows over the device's workers. Each BLAS call is then single-threaded work; see
// the package's benchmark notes (lstm_test.go) for the measurements behind this choice.
type cpuRNN[F float] struct {
	s   *rnnStack
	bl  blas.Impl
	lay []cpuLayer[F]
	dir [2]cpuDir[F]

	xp     []F // packed layer-0 input, N*in (unused when the batch has no padding)
	dA, dB []F // the gradient of a layer's output / input, N*max(in, dirs*H) each
	dx     []F // input gradient returned by Backward, T*B*in
	seqOut []F // sequence output returned by Forward, T*B*dirs*H
	final  []F // final states returned by Forward, B*dirs*H
	ones   []F // N ones, for bias-gradient column sums
	grads  [][]F
	gvals  []G.Value
}

// cpuLayer holds what the forward pass of one layer keeps for its backward pass.
type cpuLayer[F float] struct {
	gates [2][]F // per direction, N*G*H: pre-activations, then activations, then their gradients
	aux   [2][]F // per direction, N*H: LSTM cell states c; GRU W_hn h + b_hn
	hcat  []F    // N*dirs*H: the layer's output, directions side by side
	xin   []F    // N*dirs*H: the dropped-out input (layers >= 1 with dropout)
}

// cpuDir holds one direction's small scratch buffers, reused by every layer.
type cpuDir[F float] struct {
	bias  []F // G*H: b_ih + b_hh (LSTM)
	carry []F // B*H: LSTM cell-state gradient carried between steps
	step  []F // B*G*H: GRU recurrent pre-activations of one step
	tmp   []F // H
	hprev []F // N*H: h_{t-1} aligned with each packed row, for the W_hh gradient (GRU; the
	// LSTM reuses its cell-state buffer)
}

func newCPURNN[F float](s *rnnStack) *cpuRNN[F] {
	k := &cpuRNN[F]{s: s, bl: s.dev.BLAS, lay: make([]cpuLayer[F], s.layers)}
	k.grads = make([][]F, len(s.params))
	k.gvals = make([]G.Value, len(s.params))
	for i, p := range s.params {
		k.grads[i] = make([]F, p.Size())
		k.gvals[i] = tensor.New(tensor.WithShape(p.Shape...), tensor.WithBacking(k.grads[i]))
	}
	return k
}

// Grad implements rnnKernels.
func (k *cpuRNN[F]) Grad(i int) G.Value { return k.gvals[i] }

// weights returns the weight slices of layer l, direction d.
func (k *cpuRNN[F]) weights(w []G.Value, l, d int) (wih, whh, bih, bhh []F) {
	s := k.s
	return w[s.param(l, d, pWih)].Data().([]F), w[s.param(l, d, pWhh)].Data().([]F),
		w[s.param(l, d, pBih)].Data().([]F), w[s.param(l, d, pBhh)].Data().([]F)
}

// input returns layer l's input, packed (N*in_l): the batch for layer 0, the previous layer's
// output (dropped out in training) for the others.
func (k *cpuRNN[F]) input(r *rnnRun, l int, x []F) []F {
	if l == 0 {
		if r.N == r.T*r.B {
			return x
		}
		return k.xp[:r.N*k.s.in]
	}
	if len(r.keep) > 0 {
		return k.lay[l].xin
	}
	return k.lay[l-1].hcat
}

// Forward implements rnnKernels.
func (k *cpuRNN[F]) Forward(r *rnnRun, xv G.Value, wv []G.Value) (G.Value, error) {
	s := k.s
	x, ok := xv.Data().([]F)
	if !ok || len(x) != r.T*r.B*s.in {
		return nil, fmt.Errorf("input of %d values, want T*B*in = %d", xv.Size(), r.T*r.B*s.in)
	}
	H, W, N, gh := s.hidden, s.dirs*s.hidden, r.N, s.cell.gates()*s.hidden
	if N != r.T*r.B {
		k.xp = grow(k.xp, N*s.in)
		packRows(k.xp, x, r, s.in)
	}
	for d := 0; d < s.dirs; d++ {
		dr := &k.dir[d]
		dr.bias = grow(dr.bias, gh)
		dr.carry = grow(dr.carry, r.B*H)
		dr.step = grow(dr.step, r.B*gh)
		dr.tmp = grow(dr.tmp, H)
	}
	for l := range k.lay {
		L := &k.lay[l]
		L.hcat = grow(L.hcat, N*W)
		for d := 0; d < s.dirs; d++ {
			L.gates[d] = grow(L.gates[d], N*gh)
			L.aux[d] = grow(L.aux[d], N*H)
		}
		if l > 0 && len(r.keep) > 0 {
			L.xin = grow(L.xin, N*W)
			applyKeep(L.xin, k.lay[l-1].hcat, r.keep[l], F(r.scale))
		}
		X := k.input(r, l, x)
		k.eachDir(func(d int) {
			wih, whh, bih, bhh := k.weights(wv, l, d)
			if s.cell == cellGRU {
				k.gruForwardDir(r, l, d, X, wih, whh, bih, bhh)
			} else {
				k.lstmForwardDir(r, l, d, X, wih, whh, bih, bhh)
			}
		})
	}
	last := k.lay[s.layers-1].hcat
	if r.seq {
		k.seqOut = grow(k.seqOut, r.T*r.B*W)
		unpackRows(k.seqOut, last, r, W)
		return tensor.New(tensor.WithShape(r.T*r.B, W), tensor.WithBacking(k.seqOut)), nil
	}
	k.final = grow(k.final, r.B*W)
	out := k.final
	for b := 0; b < r.B; b++ {
		f := r.off[r.lengths[b]-1] + b
		copy(out[b*W:b*W+H], last[f*W:f*W+H])
		if s.dirs == 2 {
			copy(out[b*W+H:(b+1)*W], last[b*W+H:(b+1)*W]) // (t=0, b) is packed row b
		}
	}
	return tensor.New(tensor.WithShape(r.B, W), tensor.WithBacking(out)), nil
}

// Backward implements rnnKernels.
func (k *cpuRNN[F]) Backward(r *rnnRun, dyv, xv G.Value, wv []G.Value) (G.Value, error) {
	s := k.s
	x := xv.Data().([]F)
	dy, ok := dyv.Data().([]F)
	H, W, N := s.hidden, s.dirs*s.hidden, r.N
	want := r.B * W
	if r.seq {
		want = r.T * r.B * W
	}
	if !ok || len(dy) != want {
		return nil, fmt.Errorf("output gradient of %d values, want %d", dyv.Size(), want)
	}
	width := max(s.in, W)
	k.dA = grow(k.dA, N*width)
	k.dB = grow(k.dB, N*width)
	k.ones = grow(k.ones, N)
	for i := range k.ones {
		k.ones[i] = 1
	}
	if s.cell == cellGRU {
		for d := 0; d < s.dirs; d++ {
			k.dir[d].hprev = grow(k.dir[d].hprev, N*H)
		}
	}

	// The last layer's output gradient, packed.
	dH := k.dA[:N*W]
	if r.seq {
		packRows(dH, dy, r, W)
	} else {
		clear(dH)
		for b := 0; b < r.B; b++ {
			f := r.off[r.lengths[b]-1] + b
			copy(dH[f*W:f*W+H], dy[b*W:b*W+H])
			if s.dirs == 2 {
				copy(dH[b*W+H:(b+1)*W], dy[b*W+H:(b+1)*W])
			}
		}
	}
	other := k.dB
	for l := s.layers - 1; l >= 0; l-- {
		X := k.input(r, l, x)
		inl := s.layerIn(l)
		k.eachDir(func(d int) {
			_, whh, _, _ := k.weights(wv, l, d)
			gi := func(p int) []F { return k.grads[s.param(l, d, p)] }
			if s.cell == cellGRU {
				k.gruBackwardDir(r, l, d, X, whh, dH, gi(pWih), gi(pWhh), gi(pBih), gi(pBhh))
			} else {
				k.lstmBackwardDir(r, l, d, X, whh, dH, gi(pWih), gi(pWhh), gi(pBih), gi(pBhh))
			}
		})
		if l == 0 && !r.inputGrad {
			return nil, nil
		}
		// The gradient of this layer's input: dX = sum over directions of dGates W_ih.
		dX := other[:N*inl]
		k.parallelRows(N, func(lo, hi int) {
			for d := 0; d < s.dirs; d++ {
				wih, _, _, _ := k.weights(wv, l, d)
				if s.cell == cellGRU {
					k.gruInputGrad(l, d, lo, hi, inl, wih, dX, d > 0)
				} else {
					k.lstmInputGrad(l, d, lo, hi, inl, wih, dX, d > 0)
				}
			}
			if l > 0 && len(r.keep) > 0 {
				applyKeep(dX[lo*inl:hi*inl], dX[lo*inl:hi*inl], r.keep[l][lo*inl:hi*inl], F(r.scale))
			}
		})
		other, dH = dH[:cap(dH)], dX
	}
	k.dx = grow(k.dx, r.T*r.B*s.in)
	unpackRows(k.dx, dH, r, s.in)
	return tensor.New(tensor.WithShape(r.T*r.B, s.in), tensor.WithBacking(k.dx)), nil
}

// eachDir runs f for every direction, the two directions concurrently when the device has
// workers to spare.
func (k *cpuRNN[F]) eachDir(f func(d int)) {
	if k.s.dirs == 1 || k.s.dev.Workers < 2 {
		for d := 0; d < k.s.dirs; d++ {
			f(d)
		}
		return
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); f(1) }()
	f(0)
	wg.Wait()
}

// parallelRows splits rows [0, n) into one block per worker and runs f on each concurrently.
func (k *cpuRNN[F]) parallelRows(n int, f func(lo, hi int)) {
	w := min(k.s.dev.Workers, n/64)
	if w < 2 {
		f(0, n)
		return
	}
	var wg sync.WaitGroup
	chunk := (n + w - 1) / w
	for lo := chunk; lo < n; lo += chunk {
		wg.Add(1)
		go func(lo, hi int) { defer wg.Done(); f(lo, hi) }(lo, min(lo+chunk, n))
	}
	f(0, chunk)
	wg.Wait()
}

// packRows copies the active rows of a padded time-major (T*B, w) matrix into packed order.
func packRows[F float](dst, src []F, r *rnnRun, w int) {
	for t := 0; t < r.T; t++ {
		n := r.nb[t]
		copy(dst[r.off[t]*w:(r.off[t]+n)*w], src[t*r.B*w:(t*r.B+n)*w])
	}
}

// unpackRows is packRows' inverse, with zeros on the padding rows.
func unpackRows[F float](dst, src []F, r *rnnRun, w int) {
	for t := 0; t < r.T; t++ {
		n := r.nb[t]
		copy(dst[t*r.B*w:(t*r.B+n)*w], src[r.off[t]*w:(r.off[t]+n)*w])
		clear(dst[(t*r.B+n)*w : (t+1)*r.B*w])
	}
}

// applyKeep sets dst[i] = src[i]*scale where keep[i] is set, else 0.
func applyKeep[F float](dst, src []F, keep []uint8, scale F) {
	src = src[:len(dst)]
	keep = keep[:len(dst)]
	for i := range dst {
		if keep[i] != 0 {
			dst[i] = src[i] * scale
		} else {
			dst[i] = 0
		}
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

// colSums sets dst[j] = alpha*dst[j] + sum over the m rows of a (m×n, leading dimension lda) of
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

// alignPrev fills dst (N*H) with, for each packed row, direction d's hidden state of the step
// before it (zero where the sequence starts), taken from the layer output hcat.
func (k *cpuRNN[F]) alignPrev(dst, hcat []F, r *rnnRun, d int) {
	H, W := k.s.hidden, k.s.dirs*k.s.hidden
	for t := 0; t < r.T; t++ {
		n := r.nb[t]
		row := r.off[t]
		prow, m := r.prevStep(t, d)
		for b := 0; b < m; b++ {
			copy(dst[(row+b)*H:(row+b+1)*H], hcat[(prow+b)*W+d*H:(prow+b)*W+(d+1)*H])
		}
		clear(dst[(row+m)*H : (row+n)*H])
	}
}
