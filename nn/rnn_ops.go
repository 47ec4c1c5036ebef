package nn

// The Gorgonia ops of a recurrent stack (rnn.go).
//
// A layer's Forward adds ONE op for the whole stack (all layers, both directions, the dropout
// between layers) to the graph. Its backward (SymDiff) is one backward op per layer, the last
// layer's first, each computing its layer's parameter gradients into the layer's buffers (the
// first layer's also returns the input gradient), plus one small getter op per parameter that
// hands that gradient to Gorgonia (ops have one output); a layer's gradients can so be
// announced before the layers below run (see gradhook.go). The
// graph is rebuilt for every batch, so ops are made per Forward call; each takes a fresh id
// from a counter the layer owns (Gorgonia merges nodes with equal hashes, so two calls must
// never hash alike). The heavy work buffers live in the layer's kernels (rnnKernels,
// rnn_engine.go) and are reused, grown only when a larger batch comes, so a steady-state
// training step allocates almost nothing.
//
// A layer serves one graph at a time: building a newer graph with it (another Forward, even
// one that fails) makes the older graph's ops fail with an error rather than read the newer
// batch's buffers.

import (
	"fmt"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// rnnOp is the forward op: inputs x and the weights (Params order); output the final states
// (B, dirs*H) or, for a sequence run, the outputs (T*B, dirs*H). It keeps its own copy of what
// shapes the graph; run is the layer's (shared) description of the newest batch, used only
// once the op has checked that it is that batch's.
type rnnOp struct {
	opBase
	s         *rnnStack
	run       *rnnRun
	id        uint64
	T, B      int
	inputGrad bool
}

// newRNNOp returns the forward op of run r of stack s.
func newRNNOp(s *rnnStack, r *rnnRun) *rnnOp {
	out := tensor.Shape{r.B, s.dirs * s.hidden}
	if r.seq {
		out[0] = r.T * r.B
	}
	name := fmt.Sprintf("%v%q#%d{T=%d,B=%d}", s.cell, s.prefix, r.id, r.T, r.B)
	return &rnnOp{opBase: newOp(name, out, s.inputDims()...), s: s, run: r, id: r.id, T: r.T, B: r.B, inputGrad: r.inputGrad}
}

// inputDims are the dimensions of the forward op's inputs: x and the weights.
func (s *rnnStack) inputDims() []int {
	dims := []int{2}
	for _, p := range s.params {
		dims = append(dims, len(p.Shape))
	}
	return dims
}

func (op *rnnOp) DiffWRT(n int) []bool {
	d := make([]bool, n)
	for i := range d {
		d[i] = i > 0 || op.inputGrad
	}
	return d
}

func (op *rnnOp) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	s := op.s
	res := make(G.Nodes, len(inputs))
	prev := grad // what the next backward op waits for: the output gradient, then a stage's token
	for l := s.layers - 1; l >= 0; l-- {
		out := tensor.Shape{1} // a token: the next stage reads the kernels' buffers
		if l == 0 {
			out = tensor.Shape{1, 1} // a placeholder when the layer computes no input gradient
			if op.inputGrad {
				out = tensor.Shape{op.T * op.B, s.in}
			}
		}
		name := fmt.Sprintf("Bwd%s/l%d", op.name, l)
		bwd := &rnnBwdOp{newGradOp(name, out, append(s.inputDims(), prev.Shape().Dims())...), op, l}
		bw, err := G.ApplyOp(bwd, append(append(G.Nodes{}, inputs...), prev)...)
		if err != nil {
			return nil, err
		}
		for i, p := range s.params {
			if s.layerOf(i) != l {
				continue
			}
			get := &rnnGradOp{newGradOp(fmt.Sprintf("Grad(%s)%s", p.Name, op.name), tensor.Shape(p.Shape), out.Dims()), op, i}
			if res[i+1], err = G.ApplyOp(get, bw); err != nil {
				return nil, err
			}
		}
		// The layer's gradients are final: announced before the layers below run.
		if err := announceGrads(inputs, res); err != nil {
			return nil, err
		}
		prev = bw
	}
	if op.inputGrad {
		res[0] = prev
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

// rnnBwdOp is the backward op of one layer of the stack, the last layer's first: inputs x,
// the weights and the output's gradient (the last layer) or the token of the layer above (the
// others); output a token, or, for layer 0, the input gradient (a (1, 1) placeholder when the
// stack computes none). The parameter gradients stay in the kernels, read by rnnGradOp. One op
// per layer lets the step announce a layer's gradients while the layers below run
// (announceGrads).
type rnnBwdOp struct {
	gradOpBase
	fwd   *rnnOp
	layer int
}

func (op *rnnBwdOp) Do(vals ...G.Value) (G.Value, error) {
	f := op.fwd
	if err := f.check(); err != nil {
		return nil, err
	}
	if f.s.forwardOf != f.id {
		return nil, fmt.Errorf("nn: %v %q: backward op #%d ran before its forward op", f.s.cell, f.s.prefix, f.id)
	}
	k, err := f.s.kernels(vals[0].Dtype())
	if err != nil {
		return nil, fmt.Errorf("nn: %v %q: %w", f.s.cell, f.s.prefix, err)
	}
	n := len(vals)
	dx, err := k.BackwardLayer(f.run, op.layer, vals[n-1], vals[0], vals[1:n-1])
	if err != nil {
		return nil, fmt.Errorf("nn: %v %q backward: %w", f.s.cell, f.s.prefix, err)
	}
	dt := vals[0].Dtype()
	switch {
	case op.layer > 0:
		return tensor.New(tensor.Of(dt), tensor.WithShape(1)), nil // the token
	case dx == nil:
		return tensor.New(tensor.Of(dt), tensor.WithShape(1, 1)), nil
	}
	return dx, nil
}

// rnnGradOp hands parameter i's gradient, computed by the backward op (its input), to the
// graph.
type rnnGradOp struct {
	gradOpBase
	fwd *rnnOp
	i   int
}

func (op *rnnGradOp) Do(vals ...G.Value) (G.Value, error) {
	if err := op.fwd.check(); err != nil {
		return nil, err
	}
	k, err := op.fwd.s.kernels(vals[0].Dtype())
	if err != nil {
		return nil, err
	}
	return k.Grad(op.i), nil
}

// rnnFinalOp picks the final states (B, dirs*H) out of a sequence output (T*B, dirs*H): the
// forward direction's state at each sequence's last step, the reverse direction's at step 0.
type rnnFinalOp struct {
	opBase
	s    *rnnStack
	run  *rnnRun
	id   uint64
	T, B int
}

func newRNNFinalOp(s *rnnStack, r *rnnRun) *rnnFinalOp {
	name := fmt.Sprintf("Final%v%q#%d", s.cell, s.prefix, r.id)
	return &rnnFinalOp{newOp(name, tensor.Shape{r.B, s.dirs * s.hidden}, 2), s, r, r.id, r.T, r.B}
}

func (op *rnnFinalOp) DiffWRT(n int) []bool { return []bool{true} }
func (op *rnnFinalOp) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	seq := tensor.Shape{op.T * op.B, op.s.dirs * op.s.hidden}
	d, err := G.ApplyOp(&rnnFinalBwdOp{newGradOp("Bwd"+op.name, seq, 2), op}, grad)
	return G.Nodes{d}, err
}

// rows returns, for sequence b, the padded rows holding its final forward and reverse states.
func (op *rnnFinalOp) rows(b int) (fwd, rev int) {
	return (op.run.lengths[b]-1)*op.run.B + b, b
}

// check says whether the op may run: its graph must be the layer's newest.
func (op *rnnFinalOp) check() error {
	if op.s.current != op.id {
		return fmt.Errorf("nn: %v %q: stale graph", op.s.cell, op.s.prefix)
	}
	return nil
}

func (op *rnnFinalOp) Do(vals ...G.Value) (G.Value, error) {
	if err := op.check(); err != nil {
		return nil, err
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
type rnnFinalBwdOp struct {
	gradOpBase
	fwd *rnnFinalOp
}

func (op *rnnFinalBwdOp) Do(vals ...G.Value) (G.Value, error) {
	f := op.fwd
	if err := f.check(); err != nil {
		return nil, err
	}
	switch d := vals[0].Data().(type) {
	case []float32:
		return finalScatter(f, d), nil
	case []float64:
		return finalScatter(f, d), nil
	}
	return nil, fmt.Errorf("nn: %v %q: dtype %v is not supported", f.s.cell, f.s.prefix, vals[0].Dtype())
}

func finalScatter[F float](op *rnnFinalOp, d []F) G.Value {
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

var (
	_ G.SDOp = (*rnnOp)(nil)
	_ G.SDOp = (*rnnBwdOp)(nil)
	_ G.SDOp = (*rnnGradOp)(nil)
	_ G.SDOp = (*rnnFinalOp)(nil)
	_ G.SDOp = (*rnnFinalBwdOp)(nil)
)
