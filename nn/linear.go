package nn

// The fully connected layer, in PyTorch's layout (weight [out, in], bias [out], y = x W^T + b),
// as one fused op with its backward, and ReLU.

import (
	"fmt"
	"math"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Linear is nn.Linear: y = x W^T + b for x of shape (B, In).
type Linear struct {
	Weight *Param // [Out, In], named prefix+"weight"
	Bias   *Param // [Out], named prefix+"bias"
	In     int
	Out    int

	dev *CPU
	tag opTag
	w32 linearWork[float32]
	w64 linearWork[float64]
}

type linearWork[T float] struct{ y, dx, dW, db []T }

// NewLinear returns a zero in->out layer; call Init for PyTorch's initialisation.
func NewLinear(dev *CPU, prefix string, in, out int) *Linear {
	return &Linear{
		Weight: NewParam(prefix+"weight", out, in),
		Bias:   NewParam(prefix+"bias", out),
		In:     in,
		Out:    out,
		dev:    dev,
		tag:    opTag{name: prefix + "linear"},
	}
}

// Params returns the weight and the bias.
func (l *Linear) Params() []*Param { return []*Param{l.Weight, l.Bias} }

// Init draws the weight and the bias from U(-1/sqrt(In), 1/sqrt(In)): PyTorch's default
// (kaiming_uniform with a = sqrt(5) for the weight).
func (l *Linear) Init(rng *RNG) {
	bound := 1 / math.Sqrt(float64(l.In))
	uniform(rng, l.Weight.Data(), bound)
	uniform(rng, l.Bias.Data(), bound)
}

// uniform fills w from U(-bound, bound).
func uniform(rng *RNG, w []float32, bound float64) {
	for i := range w {
		w[i] = float32((2*rng.Float64() - 1) * bound)
	}
}

// Forward applies the layer to x (B, In), binding its parameters to x's graph.
func (l *Linear) Forward(x *G.Node) (*G.Node, error) {
	w, err1 := paramNode(x.Graph(), l.Weight)
	b, err2 := paramNode(x.Graph(), l.Bias)
	if err := firstErr(err1, err2); err != nil {
		return nil, err
	}
	return l.Apply(x, w, b)
}

// Apply applies the layer with the given weight [Out, In] and bias [Out] nodes.
func (l *Linear) Apply(x, w, b *G.Node) (*G.Node, error) {
	xs := x.Shape()
	if len(xs) != 2 || xs[1] != l.In {
		return nil, fmt.Errorf("nn: linear %s: input has shape %v, want (B, %d)", l.Weight.Name, xs, l.In)
	}
	op := &linearOp{opBase: newOp("Linear("+l.tag.next()+")", tensor.Shape{xs[0], l.Out}, 2, 2, 1), l: l, B: xs[0]}
	return G.ApplyOp(op, x, w, b)
}

// linearOp computes y = x W^T + b; inputs x, W, b.
type linearOp struct {
	opBase
	l *Linear
	B int
}

func (op *linearOp) DiffWRT(int) []bool { return []bool{true, true, true} }

func (op *linearOp) SymDiff(in G.Nodes, out, grad *G.Node) (G.Nodes, error) {
	bw, err := G.ApplyOp(&linearBwdOp{newGradOp("Backward"+op.name, tensor.Shape{1}, 2, 2, 2), op}, in[0], in[1], grad)
	if err != nil {
		return nil, err
	}
	res := make(G.Nodes, 3)
	for k := range res {
		if res[k], err = G.ApplyOp(op.gradGetter(k), bw); err != nil {
			return nil, err
		}
	}
	return res, announceGrads(in, res)
}

func (op *linearOp) Do(vals ...G.Value) (G.Value, error) {
	switch vals[0].Dtype() {
	case tensor.Float32:
		return linearForward(op, &op.l.w32, vals)
	case tensor.Float64:
		return linearForward(op, &op.l.w64, vals)
	}
	return nil, unsupported(op, vals[0])
}

func linearForward[T float](op *linearOp, ws *linearWork[T], vals []G.Value) (G.Value, error) {
	x, err1 := values[T](vals[0])
	w, err2 := values[T](vals[1])
	b, err3 := values[T](vals[2])
	if err := firstErr(err1, err2, err3); err != nil {
		return nil, fmt.Errorf("%v: %w", op, err)
	}
	B, In, Out := op.B, op.l.In, op.l.Out
	y := resize(&ws.y, B*Out)
	for i := 0; i < B; i++ {
		copy(y[i*Out:(i+1)*Out], b)
	}
	gemm(op.l.dev.BLAS, false, true, B, Out, In, 1, x, In, w, In, 1, y, Out)
	return dense(y, B, Out), nil
}

// linearBwdOp computes dx = dy W, dW = dy^T x, db = sum over rows of dy; inputs x, W, dy.
type linearBwdOp struct {
	gradOpBase
	fwd *linearOp
}

func (op *linearBwdOp) Do(vals ...G.Value) (G.Value, error) {
	switch vals[0].Dtype() {
	case tensor.Float32:
		return linearBackward(op, &op.fwd.l.w32, vals)
	case tensor.Float64:
		return linearBackward(op, &op.fwd.l.w64, vals)
	}
	return nil, unsupported(op, vals[0])
}

func linearBackward[T float](op *linearBwdOp, ws *linearWork[T], vals []G.Value) (G.Value, error) {
	x, err1 := values[T](vals[0])
	w, err2 := values[T](vals[1])
	dy, err3 := values[T](vals[2])
	if err := firstErr(err1, err2, err3); err != nil {
		return nil, fmt.Errorf("%v: %w", op, err)
	}
	B, In, Out := op.fwd.B, op.fwd.l.In, op.fwd.l.Out
	dx := resize(&ws.dx, B*In)
	dW := resize(&ws.dW, Out*In)
	db := resize(&ws.db, Out)
	gemm(op.fwd.l.dev.BLAS, false, false, B, In, Out, 1, dy, Out, w, In, 0, dx, In)
	gemm(op.fwd.l.dev.BLAS, true, false, Out, In, B, 1, dy, Out, x, In, 0, dW, In)
	zero(db)
	for i := 0; i < B; i++ {
		for j, v := range dy[i*Out : (i+1)*Out] {
			db[j] += v
		}
	}
	return token[T](), nil
}

// linearGradOp reads one gradient of linearBwdOp: k = 0 dx, 1 dW, 2 db.
type linearGradOp struct {
	gradOpBase
	l *Linear
	k int
}

// gradGetter returns the getter of gradient k (0 dx, 1 dW, 2 db) of the op's backward op.
func (op *linearOp) gradGetter(k int) *linearGradOp {
	shape := []tensor.Shape{{op.B, op.l.In}, {op.l.Out, op.l.In}, {op.l.Out}}[k]
	return &linearGradOp{newGradOp(fmt.Sprintf("Grad%d%s", k, op.name), shape, 1), op.l, k}
}

func (op *linearGradOp) Do(vals ...G.Value) (G.Value, error) {
	s := op.out.Clone()
	switch vals[0].Dtype() {
	case tensor.Float32:
		return dense([][]float32{op.l.w32.dx, op.l.w32.dW, op.l.w32.db}[op.k], s...), nil
	case tensor.Float64:
		return dense([][]float64{op.l.w64.dx, op.l.w64.dW, op.l.w64.db}[op.k], s...), nil
	}
	return nil, unsupported(op, vals[0])
}

// ReLU is max(0, x), element-wise (Gorgonia's Rectify).
func ReLU(x *G.Node) (*G.Node, error) { return G.Rectify(x) }

// firstErr returns the first non-nil error.
func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
