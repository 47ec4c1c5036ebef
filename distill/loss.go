package distill

// The distillation losses. Each example's loss and its derivative come from a closed form (the
// losses' term methods here), so both run as nn.PointwiseLoss: one fused op, forward and
// backward, with no intermediate nodes and no second pass.

import (
	"fmt"
	"math"

	G "gorgonia.org/gorgonia"

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

	loss nn.PointwiseLoss
}

// Build implements nn.Loss.
func (l *KD) Build(g *G.ExprGraph, logits *G.Node) (*G.Node, error) {
	if !(l.T > 0) || math.IsInf(l.T, 0) {
		return nil, fmt.Errorf("distill: temperature %v must be positive", l.T)
	}
	if !(l.Alpha >= 0 && l.Alpha <= 1) {
		return nil, fmt.Errorf("distill: alpha %v is outside [0, 1]", l.Alpha)
	}
	l.loss.Name = fmt.Sprintf("KD(T=%g,alpha=%g)@%p", l.T, l.Alpha, l)
	l.loss.Term = l.term
	return buildLoss(g, logits, &l.loss, l.Teacher, l.Labels)
}

// PerExample implements nn.PerExampleLoss.
func (l *KD) PerExample() []float32 { return l.loss.PerExample() }

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

	loss nn.PointwiseLoss
}

// Build implements nn.Loss.
func (l *MSE) Build(g *G.ExprGraph, logits *G.Node) (*G.Node, error) {
	if !(l.Alpha >= 0 && l.Alpha <= 1) {
		return nil, fmt.Errorf("distill: alpha %v is outside [0, 1]", l.Alpha)
	}
	l.loss.Name = fmt.Sprintf("MSE(alpha=%g)@%p", l.Alpha, l)
	l.loss.Term = l.term
	return buildLoss(g, logits, &l.loss, l.Teacher, l.Labels)
}

// PerExample implements nn.PerExampleLoss.
func (l *MSE) PerExample() []float32 { return l.loss.PerExample() }

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

// buildLoss checks the batch and adds the loss to g.
func buildLoss(g *G.ExprGraph, logits *G.Node, loss *nn.PointwiseLoss, teacher, labels []float32) (*G.Node, error) {
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
	return loss.Build(g, logits)
}

// The losses satisfy the trainer's interface.
var (
	_ nn.PerExampleLoss = (*KD)(nil)
	_ nn.PerExampleLoss = (*MSE)(nil)
)
