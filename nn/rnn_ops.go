package nn

// The Gorgonia ops of a recurrent stack (rnn.go).
//
// A layer's Forward adds ONE op for the whole stack (all layers, both directions, the dropout
// between layers) to the graph. Its backward (SymDiff) is one backward op, which returns the
// input gradient and keeps every parameter gradient in the layer's buffers, plus one small
// getter op per parameter that hands that gradient to Gorgonia (ops have one output). The
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
	"errors"
	"fmt"
	"hash"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

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
func (op *rnnOp) WriteHash(h hash.Hash) { writeHash(h, op.String()) }
func (op *rnnOp) Hashcode() uint32      { return hashString(op.String()) }

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
func (op *rnnBwdOp) WriteHash(h hash.Hash) { writeHash(h, op.String()) }
func (op *rnnBwdOp) Hashcode() uint32      { return hashString(op.String()) }
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
func (op *rnnGradOp) WriteHash(h hash.Hash) { writeHash(h, op.String()) }
func (op *rnnGradOp) Hashcode() uint32      { return hashString(op.String()) }
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
func (op *rnnFinalOp) WriteHash(h hash.Hash) { writeHash(h, op.String()) }
func (op *rnnFinalOp) Hashcode() uint32      { return hashString(op.String()) }
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
func (op *rnnFinalBwdOp) WriteHash(h hash.Hash) { writeHash(h, op.String()) }
func (op *rnnFinalBwdOp) Hashcode() uint32      { return hashString(op.String()) }
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

var (
	_ G.SDOp = (*rnnOp)(nil)
	_ G.SDOp = (*rnnBwdOp)(nil)
	_ G.SDOp = (*rnnGradOp)(nil)
	_ G.SDOp = (*rnnFinalOp)(nil)
	_ G.SDOp = (*rnnFinalBwdOp)(nil)
)
