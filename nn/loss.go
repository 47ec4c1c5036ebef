package nn

// Losses. A Loss adds the scalar to minimise to a batch's graph; the step runner differentiates
// it. Other packages plug their own losses in (distillation, say) by implementing Loss with
// Gorgonia's ops or with the package's.

import (
	"fmt"
	"hash"
	"math"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Loss turns one batch's logits into the scalar to minimise.
type Loss interface {
	// Build adds the loss of logits (B, Outputs) to g and returns a scalar node.
	Build(g *G.ExprGraph, logits *G.Node) (*G.Node, error)
}

// PerExampleLoss is a Loss that also reports each example's own loss after a run, so that a
// trainer can sum losses over examples (the recipe's per-example means).
type PerExampleLoss interface {
	Loss
	// PerExample returns the B per-example losses of the last run (valid until the next run).
	PerExample() []float32
}

// BCEWithLogits is PyTorch's BCEWithLogitsLoss (mean over the batch) for one logit per example:
// loss_i = max(z,0) - z*y + log(1 + exp(-|z|)), computed without overflow. Set Targets (one
// 0/1, or soft, target per logit) before each step; the value is reusable across steps.
type BCEWithLogits struct {
	Targets []float32

	tag opTag
	per []float32
}

// NewBCEWithLogits returns the loss for the given targets.
func NewBCEWithLogits(targets []float32) *BCEWithLogits {
	return &BCEWithLogits{Targets: targets, tag: opTag{name: "bce"}}
}

// Build implements Loss.
func (l *BCEWithLogits) Build(g *G.ExprGraph, logits *G.Node) (*G.Node, error) {
	if n := logits.Shape().TotalSize(); n != len(l.Targets) {
		return nil, fmt.Errorf("nn: binary cross-entropy: %d logits for %d targets", n, len(l.Targets))
	}
	if l.tag.name == "" {
		l.tag.name = "bce"
	}
	op := &bceOp{l: l, name: l.tag.next(), shape: logits.Shape().Clone()}
	return G.ApplyOp(op, logits)
}

// PerExample implements PerExampleLoss.
func (l *BCEWithLogits) PerExample() []float32 { return l.per }

// bceTerm is the loss of logit z against target y and its derivative sigmoid(z) - y.
func bceTerm(z, y float64) (loss, grad float64) {
	loss = math.Max(z, 0) - z*y + math.Log1p(math.Exp(-math.Abs(z)))
	var s float64
	if z >= 0 {
		s = 1 / (1 + math.Exp(-z))
	} else {
		e := math.Exp(z)
		s = e / (1 + e)
	}
	return loss, s - y
}

type bceOp struct {
	l     *BCEWithLogits
	name  string
	shape tensor.Shape
}

func (op *bceOp) Arity() int                                     { return 1 }
func (op *bceOp) Type() hm.Type                                  { return fnType(op.shape.Dims(), 0) }
func (op *bceOp) InferShape(...G.DimSizer) (tensor.Shape, error) { return tensor.ScalarShape(), nil }
func (op *bceOp) ReturnsPtr() bool                               { return false }
func (op *bceOp) CallsExtern() bool                              { return false }
func (op *bceOp) OverwritesInput() int                           { return -1 }
func (op *bceOp) String() string                                 { return "BCEWithLogits(" + op.name + ")" }
func (op *bceOp) WriteHash(h hash.Hash)                          { writeHash(h, op.String()) }
func (op *bceOp) Hashcode() uint32                               { return hashString(op.String()) }
func (op *bceOp) DiffWRT(int) []bool                             { return []bool{true} }
func (op *bceOp) SymDiff(in G.Nodes, out, grad *G.Node) (G.Nodes, error) {
	dz, err := G.ApplyOp(&bceBwdOp{op}, in[0], grad)
	if err != nil {
		return nil, err
	}
	return G.Nodes{dz}, nil
}

func (op *bceOp) Do(vals ...G.Value) (G.Value, error) {
	switch vals[0].Dtype() {
	case tensor.Float32:
		return bceForward[float32](op, vals[0])
	case tensor.Float64:
		return bceForward[float64](op, vals[0])
	}
	return nil, fmt.Errorf("nn: %v: unsupported dtype %v", op, vals[0].Dtype())
}

func bceForward[T float](op *bceOp, zv G.Value) (G.Value, error) {
	z, err := values[T](zv)
	if err != nil {
		return nil, fmt.Errorf("%v: %w", op, err)
	}
	y := op.l.Targets
	if len(z) != len(y) {
		return nil, fmt.Errorf("nn: %v: %d logits for %d targets", op, len(z), len(y))
	}
	per := resize(&op.l.per, len(z))
	var sum float64
	for i := range z {
		loss, _ := bceTerm(float64(z[i]), float64(y[i]))
		per[i] = float32(loss)
		sum += loss
	}
	return scalar[T](sum / float64(len(z))), nil
}

// bceBwdOp computes dz = grad * (sigmoid(z) - y) / N; inputs z and the scalar grad.
type bceBwdOp struct{ *bceOp }

func (op *bceBwdOp) Arity() int    { return 2 }
func (op *bceBwdOp) Type() hm.Type { return fnType(op.shape.Dims(), 0, op.shape.Dims()) }
func (op *bceBwdOp) InferShape(...G.DimSizer) (tensor.Shape, error) {
	return op.shape.Clone(), nil
}
func (op *bceBwdOp) String() string        { return "BCEWithLogitsGrad(" + op.name + ")" }
func (op *bceBwdOp) WriteHash(h hash.Hash) { writeHash(h, op.String()) }
func (op *bceBwdOp) Hashcode() uint32      { return hashString(op.String()) }
func (op *bceBwdOp) DiffWRT(int) []bool    { return []bool{false, false} }
func (op *bceBwdOp) SymDiff(G.Nodes, *G.Node, *G.Node) (G.Nodes, error) {
	return nil, fmt.Errorf("nn: %v: no second derivative", op)
}

func (op *bceBwdOp) Do(vals ...G.Value) (G.Value, error) {
	switch vals[0].Dtype() {
	case tensor.Float32:
		return bceBackward[float32](op, vals)
	case tensor.Float64:
		return bceBackward[float64](op, vals)
	}
	return nil, fmt.Errorf("nn: %v: unsupported dtype %v", op, vals[0].Dtype())
}

func bceBackward[T float](op *bceBwdOp, vals []G.Value) (G.Value, error) {
	z, err := values[T](vals[0])
	if err != nil {
		return nil, fmt.Errorf("%v: %w", op, err)
	}
	g, err := scalarValue(vals[1])
	if err != nil {
		return nil, fmt.Errorf("%v: %w", op, err)
	}
	y := op.l.Targets
	scale := g / float64(len(z))
	dz := make([]T, len(z)) // B values: not worth a reused buffer
	for i := range z {
		_, d := bceTerm(float64(z[i]), float64(y[i]))
		dz[i] = T(d * scale)
	}
	return dense(dz, op.shape...), nil
}
