package nn

// The recurrent stack shared by the fused recurrent layers (LSTM in lstm.go, GRU in gru.go):
// its parameters, the packed batch layout of a Forward call, and the Forward that adds the
// stack to a graph. The other parts of the stack live beside it, one job a file:
//   - rnn_ops.go: the Gorgonia ops that put the stack in a graph;
//   - rnn_engine.go: the CPU engine that runs the forward and backward passes;
//   - rnn_plan.go: the cut of a batch into segments and the activation arena;
//   - lstm.go, gru.go: the cells' own math; blas.go: the matrix products.
// The speed of the ops against PyTorch is in the README ("Speed of the parts"), measured by
// BenchmarkLSTM and BenchmarkGRU.
//
// # Packed layout
//
// Sequences come sorted by length, longest first, in time-major rows (row t*B+b is sequence b
// at step t). At step t the active sequences are the first nb[t] rows. Inside the op every
// per-row buffer is packed as PyTorch's PackedSequence is: row (t, b) of the batch sits at row
// off[t]+b, N = sum of the lengths rows in all, so no work or memory goes to padding.

import (
	"errors"
	"fmt"
	"math"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// cellKind is the cell a recurrent stack is made of: what the stack, its ops and the layout of
// its buffers need to know of it. Its steps in the CPU engine are cellSteps (rnn_engine.go);
// both are implemented in lstm.go and gru.go.
type cellKind interface {
	String() string     // "LSTM" or "GRU"
	gates() int         // the H-wide gate blocks: 4 (i, f, g, o) or 3 (r, z, n)
	actBlocks() int     // the H-wide blocks of activations a row keeps: the gates, and the GRU's W_hn h + b_hn
	hasCellState() bool // a cell state c beside the hidden state h (the LSTM)
}

// The two cells.
var (
	cellLSTM cellKind = lstmCell{}
	cellGRU  cellKind = gruCell{}
)

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

	// Per-graph state. tag numbers the runs (Forward calls) and so their ops; current is the
	// run whose graph may execute; forwardOf is the run whose forward pass the kernels'
	// buffers hold.
	tag       opTag
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

// layerOf is the layer of parameter i.
func (s *rnnStack) layerOf(i int) int { return i / (s.dirs * pCount) }

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
	resize(&r.nb, T+1)
	resize(&r.off, T+1)
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
		k := resize(&r.keep[l], (n+63)/64)
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
	}
}

func resizeMasks(s [][]uint64, n int) [][]uint64 {
	if cap(s) < n {
		t := make([][]uint64, n)
		copy(t, s[:cap(s)])
		return t
	}
	return s[:n]
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
	run := &s.run
	run.id = s.tag.nextID()
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

	op := newRNNOp(s, run)
	out, err := G.ApplyOp(op, append(G.Nodes{x}, w...)...)
	if err != nil {
		return fail(err)
	}
	if !seq {
		return out, nil, nil
	}
	final, err = G.ApplyOp(newRNNFinalOp(s, run), out)
	if err != nil {
		return fail(err)
	}
	return final, out, nil
}

// forwardBound is forward with the layer's own parameters, bound to x's graph (bindParams).
func (s *rnnStack) forwardBound(x *G.Node, lengths []int, T int, mode Mode, rng *RNG, seq bool) (final, outputs *G.Node, err error) {
	if x == nil {
		return s.forward(nil, nil, lengths, T, mode, rng, seq)
	}
	w, err := s.bindParams(x.Graph())
	if err != nil {
		return nil, nil, err
	}
	return s.forward(x, w, lengths, T, mode, rng, seq)
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

// paramNode returns p's node in g: its hook when the step's Runner put one in (see
// gradhook.go), else the node named p.Name whose value is p.Value (no copy) when there is
// one, else a new input node like it.
func paramNode(g *G.ExprGraph, p *Param) (*G.Node, error) {
	if p.Value == nil {
		return nil, fmt.Errorf("nn: parameter %s has no value", p.Name)
	}
	var in *G.Node
	for _, n := range g.ByName(p.Name) {
		if h, ok := n.Op().(*gradHookOp); ok && h.p == p {
			return n, nil
		}
		if in == nil && n.Value() == G.Value(p.Value) {
			in = n
		}
	}
	if in != nil {
		return in, nil
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
