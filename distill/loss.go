package distill

// The distillation losses, as one fused Gorgonia op (forward and backward in this file) that
// both losses share: each example's loss and its derivative come from a closed form, so the op
// needs no intermediate nodes and no second pass.

import (
	"fmt"
	"hash"
	"hash/fnv"
	"math"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/sentibench/sentibench/nn"
)

// The loss kinds.
const (
	LossKD  = "kd"  // Hinton et al. 2015: hard BCE + temperature-softened KL
	LossMSE = "mse" // Tang et al. 2019: squared error between the logits
)

// KD is Hinton et al.'s (2015) distillation loss for one logit per example, averaged over the
// batch:
//
//	loss_i = Alpha * BCE(z_i, y_i) + (1 - Alpha) * T^2 * KL(p_i || q_i)
//
// where z_i is the student's logit, y_i the label, and p_i = sigmoid(t_i / T), q_i =
// sigmoid(z_i / T) the Bernoulli distributions of the teacher's logit t_i and of the student's,
// softened by the temperature T. The T^2 keeps the soft term's gradient, T (q_i - p_i), on the
// scale of the hard term's as T grows. An example without a label (NaN in Labels) has no hard
// term: its loss is the soft term alone. The mean is over every example of the batch.
//
// KD implements nn.PerExampleLoss. Set Teacher and Labels for each batch.
type KD struct {
	// Teacher holds the teacher's logit of each example; Labels its label (0 or 1; NaN: none).
	Teacher, Labels []float32
	// T is the temperature (> 0); Alpha the weight of the hard term, in [0, 1].
	T, Alpha float64

	per []float32
	ops uint64
}

// Build implements nn.Loss.
func (l *KD) Build(g *G.ExprGraph, logits *G.Node) (*G.Node, error) {
	if !(l.T > 0) || math.IsInf(l.T, 0) {
		return nil, fmt.Errorf("distill: temperature %v must be positive", l.T)
	}
	if !(l.Alpha >= 0 && l.Alpha <= 1) {
		return nil, fmt.Errorf("distill: alpha %v is outside [0, 1]", l.Alpha)
	}
	l.ops++
	name := fmt.Sprintf("KD(T=%g,alpha=%g)@%p#%d", l.T, l.Alpha, l, l.ops)
	return buildLoss(g, logits, name, l.Teacher, l.Labels, &l.per, l.term)
}

// PerExample implements nn.PerExampleLoss.
func (l *KD) PerExample() []float32 { return l.per }

// term is example i's loss at logit z and its derivative.
func (l *KD) term(i int, z float64) (loss, dz float64) {
	T := l.T
	s, a := z/T, float64(l.Teacher[i])/T
	p := sigmoid(a)
	// KL(p || q) = BCE(s; p) - BCE(a; p) = softplus(s) - softplus(a) - p (s - a), without
	// overflow for any logits; its derivative in z is (sigmoid(s) - p) / T.
	kl := softplus(s) - softplus(a) - p*(s-a)
	loss = (1 - l.Alpha) * T * T * kl
	dz = (1 - l.Alpha) * T * (sigmoid(s) - p)
	if y := float64(l.Labels[i]); y == y && l.Alpha > 0 {
		loss += l.Alpha * (softplus(z) - z*y)
		dz += l.Alpha * (sigmoid(z) - y)
	}
	return loss, dz
}

// MSE is Tang et al.'s (2019) distillation loss: the squared difference between the student's
// logit and the teacher's, optionally mixed with the hard loss, averaged over the batch:
//
//	loss_i = Alpha * BCE(z_i, y_i) + (1 - Alpha) * (z_i - t_i)^2
//
// (no factor 1/2). As in KD, an example without a label (NaN) has only the soft term.
//
// MSE implements nn.PerExampleLoss. Set Teacher and Labels for each batch.
type MSE struct {
	// Teacher holds the teacher's logit of each example; Labels its label (0 or 1; NaN: none).
	Teacher, Labels []float32
	// Alpha is the weight of the hard term, in [0, 1] (Tang et al.: 0).
	Alpha float64

	per []float32
	ops uint64
}

// Build implements nn.Loss.
func (l *MSE) Build(g *G.ExprGraph, logits *G.Node) (*G.Node, error) {
	if !(l.Alpha >= 0 && l.Alpha <= 1) {
		return nil, fmt.Errorf("distill: alpha %v is outside [0, 1]", l.Alpha)
	}
	l.ops++
	name := fmt.Sprintf("MSE(alpha=%g)@%p#%d", l.Alpha, l, l.ops)
	return buildLoss(g, logits, name, l.Teacher, l.Labels, &l.per, l.term)
}

// PerExample implements nn.PerExampleLoss.
func (l *MSE) PerExample() []float32 { return l.per }

func (l *MSE) term(i int, z float64) (loss, dz float64) {
	d := z - float64(l.Teacher[i])
	loss = (1 - l.Alpha) * d * d
	dz = (1 - l.Alpha) * 2 * d
	if y := float64(l.Labels[i]); y == y && l.Alpha > 0 {
		loss += l.Alpha * (softplus(z) - z*y)
		dz += l.Alpha * (sigmoid(z) - y)
	}
	return loss, dz
}

// softplus is log(1 + e^x), without overflow.
func softplus(x float64) float64 { return math.Max(x, 0) + math.Log1p(math.Exp(-math.Abs(x))) }

// sigmoid is 1 / (1 + e^-x), without overflow.
func sigmoid(x float64) float64 {
	if x >= 0 {
		return 1 / (1 + math.Exp(-x))
	}
	e := math.Exp(x)
	return e / (1 + e)
}

// termFunc is one example's loss and its derivative in the logit z.
type termFunc func(i int, z float64) (loss, dz float64)

// buildLoss checks the batch and adds the loss op to g.
func buildLoss(g *G.ExprGraph, logits *G.Node, name string, teacher, labels []float32, per *[]float32, term termFunc) (*G.Node, error) {
	n := logits.Shape().TotalSize()
	if n != len(teacher) || n != len(labels) {
		return nil, fmt.Errorf("distill: %d logits for %d teacher logits and %d labels", n, len(teacher), len(labels))
	}
	if logits.Shape().Dims() == 2 && logits.Shape()[1] != 1 {
		return nil, fmt.Errorf("distill: the losses want one logit per example, got shape %v", logits.Shape())
	}
	for i, t := range teacher {
		if math.IsNaN(float64(t)) || math.IsInf(float64(t), 0) {
			return nil, fmt.Errorf("distill: the teacher's logit of example %d is %v", i, t)
		}
		if y := labels[i]; y == y && y != 0 && y != 1 {
			return nil, fmt.Errorf("distill: label %v of example %d is not 0, 1 or NaN (none)", y, i)
		}
	}
	op := &lossOp{name: name, shape: logits.Shape().Clone(), term: term, per: per}
	return G.ApplyOp(op, logits)
}

// lossOp is the forward op: the batch's logits in, the mean loss out (a scalar).
type lossOp struct {
	name  string
	shape tensor.Shape
	term  termFunc
	per   *[]float32
}

func (op *lossOp) Arity() int { return 1 }
func (op *lossOp) Type() hm.Type {
	a := hm.TypeVariable('a')
	return hm.NewFnType(G.TensorType{Dims: op.shape.Dims(), Of: a}, a)
}
func (op *lossOp) InferShape(...G.DimSizer) (tensor.Shape, error) { return tensor.ScalarShape(), nil }
func (op *lossOp) ReturnsPtr() bool                               { return false }
func (op *lossOp) CallsExtern() bool                              { return false }
func (op *lossOp) OverwritesInput() int                           { return -1 }
func (op *lossOp) String() string                                 { return op.name }
func (op *lossOp) WriteHash(h hash.Hash)                          { h.Write([]byte(op.String())) }
func (op *lossOp) Hashcode() uint32                               { return hashString(op.String()) }
func (op *lossOp) DiffWRT(int) []bool                             { return []bool{true} }
func (op *lossOp) SymDiff(in G.Nodes, out, grad *G.Node) (G.Nodes, error) {
	dz, err := G.ApplyOp(&lossBwdOp{op}, in[0], grad)
	if err != nil {
		return nil, err
	}
	return G.Nodes{dz}, nil
}

func (op *lossOp) Do(vals ...G.Value) (G.Value, error) {
	z, err := floats(vals[0])
	if err != nil {
		return nil, fmt.Errorf("distill: %v: %w", op, err)
	}
	if len(z) != op.shape.TotalSize() {
		return nil, fmt.Errorf("distill: %v: %d logits, want %d", op, len(z), op.shape.TotalSize())
	}
	if cap(*op.per) < len(z) {
		*op.per = make([]float32, len(z))
	}
	per := (*op.per)[:len(z)]
	*op.per = per
	var sum float64
	for i, zi := range z {
		loss, _ := op.term(i, zi)
		per[i] = float32(loss)
		sum += loss
	}
	mean := sum / float64(len(z))
	if vals[0].Dtype() == tensor.Float64 {
		return G.NewF64(mean), nil
	}
	return G.NewF32(float32(mean)), nil
}

// lossBwdOp computes dz = grad * dloss_i/dz_i / B; inputs the logits and the scalar grad.
type lossBwdOp struct{ *lossOp }

func (op *lossBwdOp) Arity() int { return 2 }
func (op *lossBwdOp) Type() hm.Type {
	a := hm.TypeVariable('a')
	t := G.TensorType{Dims: op.shape.Dims(), Of: a}
	return hm.NewFnType(t, a, t)
}
func (op *lossBwdOp) InferShape(...G.DimSizer) (tensor.Shape, error) { return op.shape.Clone(), nil }
func (op *lossBwdOp) String() string                                 { return op.name + "Grad" }
func (op *lossBwdOp) WriteHash(h hash.Hash)                          { h.Write([]byte(op.String())) }
func (op *lossBwdOp) Hashcode() uint32                               { return hashString(op.String()) }
func (op *lossBwdOp) DiffWRT(int) []bool                             { return []bool{false, false} }
func (op *lossBwdOp) SymDiff(G.Nodes, *G.Node, *G.Node) (G.Nodes, error) {
	return nil, fmt.Errorf("distill: %v: no second derivative", op)
}

func (op *lossBwdOp) Do(vals ...G.Value) (G.Value, error) {
	z, err := floats(vals[0])
	if err != nil {
		return nil, fmt.Errorf("distill: %v: %w", op, err)
	}
	g, err := scalarOf(vals[1])
	if err != nil {
		return nil, fmt.Errorf("distill: %v: %w", op, err)
	}
	scale := g / float64(len(z))
	if vals[0].Dtype() == tensor.Float64 {
		dz := make([]float64, len(z))
		for i, zi := range z {
			_, d := op.term(i, zi)
			dz[i] = d * scale
		}
		return tensor.New(tensor.WithShape(op.shape...), tensor.WithBacking(dz)), nil
	}
	dz := make([]float32, len(z))
	for i, zi := range z {
		_, d := op.term(i, zi)
		dz[i] = float32(d * scale)
	}
	return tensor.New(tensor.WithShape(op.shape...), tensor.WithBacking(dz)), nil
}

// floats returns a float32 or float64 value's elements as float64s.
func floats(v G.Value) ([]float64, error) {
	if d, ok := v.(*tensor.Dense); ok && d.IsView() {
		return nil, fmt.Errorf("got a view tensor of shape %v; want contiguous logits", d.Shape())
	}
	switch x := v.Data().(type) {
	case []float32:
		out := make([]float64, len(x))
		for i, f := range x {
			out[i] = float64(f)
		}
		return out, nil
	case []float64:
		return x, nil
	}
	return nil, fmt.Errorf("got logits of type %T, want []float32 or []float64", v.Data())
}

// scalarOf reads a scalar value (a Gorgonia scalar or a one-element tensor).
func scalarOf(v G.Value) (float64, error) {
	switch x := v.Data().(type) {
	case float32:
		return float64(x), nil
	case float64:
		return x, nil
	case []float32:
		if len(x) == 1 {
			return float64(x[0]), nil
		}
	case []float64:
		if len(x) == 1 {
			return x[0], nil
		}
	}
	return 0, fmt.Errorf("want a scalar, got %T of shape %v", v.Data(), v.Shape())
}

func hashString(s string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(s))
	return h.Sum32()
}

// The losses satisfy the trainer's interface.
var (
	_ nn.PerExampleLoss = (*KD)(nil)
	_ nn.PerExampleLoss = (*MSE)(nil)
)
