package nn

// Losses. A Loss adds the scalar to minimise to a batch's graph; the step runner differentiates
// it. Other packages plug their own losses in (distillation, say) by implementing Loss with
// Gorgonia's ops or with the package's.

import (
	"fmt"
	"math"

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

// PointwiseLoss is a Loss whose value is the mean over the batch of a closed form per example:
// Term(i, z) is example i's loss at its logit z and the loss's derivative in z. It is a RowLoss
// whose rows are one logit wide, so that one op computes both: forward every term, their mean
// and the per-example losses; backward every derivative, scaled by the incoming gradient over
// the batch size, with no intermediate nodes. BCEWithLogits is one; package distill's binary
// losses are others. Set Name and Term before Build.
type PointwiseLoss struct {
	// Name names the loss's ops (with a number of their own per Build): "bce", say.
	Name string
	// Term returns example i's loss at logit z and its derivative dloss/dz.
	Term func(i int, z float64) (loss, dz float64)

	rows RowLoss
}

// Build implements Loss: the mean of Term over logits, (B) or (B, 1).
func (l *PointwiseLoss) Build(g *G.ExprGraph, logits *G.Node) (*G.Node, error) {
	if l.Term == nil {
		return nil, fmt.Errorf("nn: loss %q has no Term", l.Name)
	}
	if s := logits.Shape(); s.Dims() == 2 && s[1] != 1 || s.Dims() > 2 {
		return nil, fmt.Errorf("nn: loss %q wants logits of shape (B) or (B, 1), got %v", l.Name, s)
	}
	term := l.Term
	l.rows.Name = l.Name
	l.rows.Term = func(i int, z, dz []float64) float64 {
		loss, d := term(i, z[0])
		dz[0] = d
		return loss
	}
	return l.rows.Build(g, logits)
}

// PerExample implements PerExampleLoss.
func (l *PointwiseLoss) PerExample() []float32 { return l.rows.PerExample() }

// RowLoss is a loss over each example's row of logits: the logits are (B, K), or (B) for rows
// of one logit, and Term(i, z, dz) returns example i's loss at its K logits z and writes the loss's
// derivatives dloss/dz into dz (K values; Term sets every one). The value is the mean over the
// B examples. One op computes it forward (every row's loss, their mean, the per-example losses)
// and backward (every row's derivatives, scaled by the incoming gradient over the batch size),
// with no intermediate nodes; the rows are handed to Term in float64 whatever the logits' type.
// SoftmaxCrossEntropy is one; package distill's K-class losses are others. Set Name and Term
// before Build.
type RowLoss struct {
	// Name names the loss's ops (with a number of their own per Build).
	Name string
	// Term returns example i's loss at its logits z and writes dloss/dz into dz. z and dz are
	// the loss's own buffers, valid during the call only.
	Term func(i int, z, dz []float64) (loss float64)

	tag   opTag
	per   []float32
	z, dz []float64 // one row, in float64
}

// Build implements Loss: the mean over the rows of logits (B, K), or (B), of Term.
func (l *RowLoss) Build(g *G.ExprGraph, logits *G.Node) (*G.Node, error) {
	if l.Term == nil {
		return nil, fmt.Errorf("nn: loss %q has no Term", l.Name)
	}
	shape := logits.Shape()
	K := 1
	switch shape.Dims() {
	case 1:
	case 2:
		K = shape[1]
	default:
		return nil, fmt.Errorf("nn: loss %q wants logits of shape (B, K) or (B), got %v", l.Name, shape)
	}
	l.tag.name = l.Name
	op := &rowLossOp{opBase: newOp(l.tag.next(), tensor.ScalarShape(), shape.Dims()), l: l,
		shape: shape.Clone(), B: shape[0], K: K}
	return G.ApplyOp(op, logits)
}

// PerExample implements PerExampleLoss.
func (l *RowLoss) PerExample() []float32 { return l.per }

// rowTerm runs Term on row i of z (K values of type T), in float64, and returns its loss; the
// derivatives are left in l.dz.
func rowTerm[T float](l *RowLoss, i int, z []T) float64 {
	K := len(z)
	z64, dz := resize(&l.z, K), resize(&l.dz, K)
	for k, v := range z {
		z64[k] = float64(v)
	}
	return l.Term(i, z64, dz)
}

// rowLossOp is RowLoss's op: the logits (B, K) or (B) in, the mean loss out.
type rowLossOp struct {
	opBase
	l     *RowLoss
	shape tensor.Shape // the logits' shape
	B, K  int
}

func (op *rowLossOp) DiffWRT(int) []bool { return []bool{true} }
func (op *rowLossOp) SymDiff(in G.Nodes, out, grad *G.Node) (G.Nodes, error) {
	bwd := &rowLossBwdOp{newGradOp("Grad"+op.name, op.shape, op.shape.Dims(), 0), op}
	dz, err := G.ApplyOp(bwd, in[0], grad)
	if err != nil {
		return nil, err
	}
	return G.Nodes{dz}, nil
}

func (op *rowLossOp) Do(vals ...G.Value) (G.Value, error) {
	switch vals[0].Dtype() {
	case tensor.Float32:
		return rowLossForward[float32](op, vals[0])
	case tensor.Float64:
		return rowLossForward[float64](op, vals[0])
	}
	return nil, unsupported(op, vals[0])
}

func rowLossForward[T float](op *rowLossOp, zv G.Value) (G.Value, error) {
	z, err := values[T](zv)
	if err != nil {
		return nil, fmt.Errorf("%v: %w", op, err)
	}
	B, K := op.B, op.K
	if len(z) != B*K {
		return nil, fmt.Errorf("nn: %v: %d logits, want %d x %d", op, len(z), B, K)
	}
	per := resize(&op.l.per, B)
	var sum float64
	for i := range B {
		loss := rowTerm(op.l, i, z[i*K:(i+1)*K])
		per[i] = float32(loss)
		sum += loss
	}
	return scalar[T](sum / float64(B)), nil
}

// rowLossBwdOp computes dz_i = grad * dloss_i/dz_i / B row by row; inputs the logits and the
// scalar grad.
type rowLossBwdOp struct {
	gradOpBase
	fwd *rowLossOp
}

func (op *rowLossBwdOp) Do(vals ...G.Value) (G.Value, error) {
	switch vals[0].Dtype() {
	case tensor.Float32:
		return rowLossBackward[float32](op, vals)
	case tensor.Float64:
		return rowLossBackward[float64](op, vals)
	}
	return nil, unsupported(op, vals[0])
}

func rowLossBackward[T float](op *rowLossBwdOp, vals []G.Value) (G.Value, error) {
	z, err := values[T](vals[0])
	if err != nil {
		return nil, fmt.Errorf("%v: %w", op, err)
	}
	g, err := scalarValue(vals[1])
	if err != nil {
		return nil, fmt.Errorf("%v: %w", op, err)
	}
	B, K := op.fwd.B, op.fwd.K
	if len(z) != B*K {
		return nil, fmt.Errorf("nn: %v: %d logits, want %d x %d", op, len(z), B, K)
	}
	scale := g / float64(B)
	dz := make([]T, B*K) // B*K values: not worth a reused buffer
	for i := range B {
		rowTerm(op.fwd.l, i, z[i*K:(i+1)*K])
		for k, d := range op.fwd.l.dz {
			dz[i*K+k] = T(d * scale)
		}
	}
	return dense(dz, op.fwd.shape...), nil
}

// BCEWithLogits is PyTorch's BCEWithLogitsLoss (mean over the batch) for one logit per example:
// loss_i = max(z,0) - z*y + log(1 + exp(-|z|)), computed without overflow. Set Targets (one
// 0/1, or soft, target per logit) before each step; the value is reusable across steps.
type BCEWithLogits struct {
	Targets []float32

	loss PointwiseLoss
}

// NewBCEWithLogits returns the loss for the given targets.
func NewBCEWithLogits(targets []float32) *BCEWithLogits { return &BCEWithLogits{Targets: targets} }

// Build implements Loss.
func (l *BCEWithLogits) Build(g *G.ExprGraph, logits *G.Node) (*G.Node, error) {
	if n := logits.Shape().TotalSize(); n != len(l.Targets) {
		return nil, fmt.Errorf("nn: binary cross-entropy: %d logits for %d targets", n, len(l.Targets))
	}
	targets := l.Targets // the targets of this graph, as BCEWithLogits was when it was built
	l.loss.Name = "BCEWithLogits"
	l.loss.Term = func(i int, z float64) (float64, float64) { return bceTerm(z, float64(targets[i])) }
	return l.loss.Build(g, logits)
}

// PerExample implements PerExampleLoss.
func (l *BCEWithLogits) PerExample() []float32 { return l.loss.PerExample() }

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

var (
	_ PerExampleLoss = (*PointwiseLoss)(nil)
	_ PerExampleLoss = (*BCEWithLogits)(nil)
	_ PerExampleLoss = (*RowLoss)(nil)
)
