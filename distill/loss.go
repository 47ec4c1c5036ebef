package distill

// The distillation losses. Each example's loss and its derivative come from a closed form (the
// losses' term methods here), so both run as one fused op, forward and backward, with no
// intermediate nodes and no second pass: nn.PointwiseLoss for a binary model's one logit per
// example, nn.RowLoss for a K-class model's K logits.

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

// KD is Hinton et al.'s (2015) distillation loss, averaged over the batch. For a binary model's
// one logit per example:
//
//	loss_i = Alpha * BCE(z_i, y_i) + (1 - Alpha) * T^2 * KL(p_i || q_i)
//
// where z_i is the student's logit, y_i the label, and p_i = sigmoid(t_i / T), q_i =
// sigmoid(z_i / T) the Bernoulli distributions of the teacher's logit t_i and of the student's,
// softened by the temperature T. For a K-class model's K logits per example (logits (B, K),
// K > 1), Hinton et al.'s own setting:
//
//	loss_i = Alpha * CE(z_i, y_i) + (1 - Alpha) * T^2 * KL(softmax(t_i / T) || softmax(z_i / T))
//
// with CE the softmax cross-entropy (nn.SoftmaxCrossEntropy's). Either way the T^2 keeps the
// soft term's gradient, T (q_i - p_i), on the scale of the hard term's as T grows, and with
// K = 2 logits [0, z] and [0, t] the K-class loss is the binary one. An example without a
// label (NaN in Labels) has no hard term: its loss is the soft term alone. The mean is over
// every example of the batch.
//
// KD implements nn.PerExampleLoss. Set Teacher and Labels for each batch.
type KD struct {
	// Teacher holds the teacher's logits, K per example (row-major; one for a binary model).
	// Labels holds each example's label: a class id (0 or 1 for a binary model, 0..K-1 for K
	// classes) or NaN for none.
	Teacher, Labels []float32
	// T is the temperature (> 0); Alpha the weight of the hard term, in [0, 1].
	T, Alpha float64

	loss nn.PointwiseLoss // one logit per example
	rows nn.RowLoss       // K logits per example
	last nn.PerExampleLoss
}

// Build implements nn.Loss.
func (l *KD) Build(g *G.ExprGraph, logits *G.Node) (*G.Node, error) {
	if !(l.T > 0) || math.IsInf(l.T, 0) {
		return nil, fmt.Errorf("distill: temperature %v must be positive", l.T)
	}
	if !(l.Alpha >= 0 && l.Alpha <= 1) {
		return nil, fmt.Errorf("distill: alpha %v is outside [0, 1]", l.Alpha)
	}
	name := fmt.Sprintf("KD(T=%g,alpha=%g)@%p", l.T, l.Alpha, l)
	if classes(logits) > 1 {
		l.rows.Name, l.rows.Term, l.last = name, l.rowTerm, &l.rows
		return buildRowLoss(g, logits, &l.rows, l.Teacher, l.Labels)
	}
	l.loss.Name = name
	l.loss.Term = l.term
	l.last = &l.loss
	return buildLoss(g, logits, &l.loss, l.Teacher, l.Labels)
}

// PerExample implements nn.PerExampleLoss.
func (l *KD) PerExample() []float32 { return perExample(l.last) }

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
// (no factor 1/2). For a K-class model's K logits per example, the squared Euclidean distance
// between the logit vectors (Tang et al.'s ||z - t||^2, summed over the classes, not averaged)
// and the softmax cross-entropy:
//
//	loss_i = Alpha * CE(z_i, y_i) + (1 - Alpha) * sum_k (z_ik - t_ik)^2
//
// As in KD, an example without a label (NaN) has only the soft term.
//
// MSE implements nn.PerExampleLoss. Set Teacher and Labels for each batch.
type MSE struct {
	// Teacher holds the teacher's logits, K per example (row-major; one for a binary model).
	// Labels holds each example's label: a class id (0 or 1 for a binary model, 0..K-1 for K
	// classes) or NaN for none.
	Teacher, Labels []float32
	// Alpha is the weight of the hard term, in [0, 1] (Tang et al.: 0).
	Alpha float64

	loss nn.PointwiseLoss // one logit per example
	rows nn.RowLoss       // K logits per example
	last nn.PerExampleLoss
}

// Build implements nn.Loss.
func (l *MSE) Build(g *G.ExprGraph, logits *G.Node) (*G.Node, error) {
	if !(l.Alpha >= 0 && l.Alpha <= 1) {
		return nil, fmt.Errorf("distill: alpha %v is outside [0, 1]", l.Alpha)
	}
	name := fmt.Sprintf("MSE(alpha=%g)@%p", l.Alpha, l)
	if classes(logits) > 1 {
		l.rows.Name, l.rows.Term, l.last = name, l.rowTerm, &l.rows
		return buildRowLoss(g, logits, &l.rows, l.Teacher, l.Labels)
	}
	l.loss.Name = name
	l.loss.Term = l.term
	l.last = &l.loss
	return buildLoss(g, logits, &l.loss, l.Teacher, l.Labels)
}

// PerExample implements nn.PerExampleLoss.
func (l *MSE) PerExample() []float32 { return perExample(l.last) }

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

// rowTerm is example i's loss at its K logits z, with the derivatives written into dz.
func (l *KD) rowTerm(i int, z, dz []float64) float64 {
	K, T := len(z), l.T
	t := l.Teacher[i*K : (i+1)*K]
	// log p_k = t_k/T - lse(t/T), log q_k = z_k/T - lse(z/T); KL(p || q) = sum_k p_k (log p_k -
	// log q_k), whose derivative in z_k is (q_k - p_k) / T.
	lseT := logSumExpScaled(t, T)
	lseS := logSumExpScaled(z, T)
	var kl float64
	for k := range z {
		logP := float64(t[k])/T - lseT
		logQ := z[k]/T - lseS
		p := math.Exp(logP)
		kl += p * (logP - logQ)
		dz[k] = (1 - l.Alpha) * T * (math.Exp(logQ) - p)
	}
	loss := (1 - l.Alpha) * T * T * kl
	return loss + hardRowTerm(l.Labels[i], l.Alpha, z, dz)
}

// rowTerm is example i's loss at its K logits z, with the derivatives written into dz.
func (l *MSE) rowTerm(i int, z, dz []float64) float64 {
	K := len(z)
	t := l.Teacher[i*K : (i+1)*K]
	var loss float64
	for k := range z {
		d := z[k] - float64(t[k])
		loss += (1 - l.Alpha) * d * d
		dz[k] = (1 - l.Alpha) * 2 * d
	}
	return loss + hardRowTerm(l.Labels[i], l.Alpha, z, dz)
}

// hardRowTerm is the hard term of a K-class loss, Alpha * CE(z, y), added into the derivatives
// dz; 0 for an unlabelled example (y NaN) or Alpha 0.
func hardRowTerm(label float32, alpha float64, z, dz []float64) float64 {
	y := float64(label)
	if y != y || alpha == 0 {
		return 0
	}
	lse := logSumExpScaled(z, 1)
	for k, v := range z {
		dz[k] += alpha * math.Exp(v-lse)
	}
	dz[int(y)] -= alpha
	return alpha * (lse - z[int(y)])
}

// logSumExpScaled is log(sum_k exp(x_k / T)), computed from the largest x_k so that nothing
// overflows.
func logSumExpScaled[F float32 | float64](x []F, T float64) float64 {
	top := float64(x[0]) / T
	for _, v := range x[1:] {
		top = max(top, float64(v)/T)
	}
	var sum float64
	for _, v := range x {
		sum += math.Exp(float64(v)/T - top)
	}
	return top + math.Log(sum)
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

// classes is the number of logits per example of logits (B, K): K, or 1 for logits (B).
func classes(logits *G.Node) int {
	if s := logits.Shape(); s.Dims() == 2 {
		return s[1]
	}
	return 1
}

// buildRowLoss checks a K-class batch and adds the loss to g: K teacher logits and a label
// (a class id or NaN) per example.
func buildRowLoss(g *G.ExprGraph, logits *G.Node, loss *nn.RowLoss, teacher, labels []float32) (*G.Node, error) {
	B, K := logits.Shape()[0], logits.Shape()[1]
	if len(teacher) != B*K || len(labels) != B {
		return nil, fmt.Errorf("distill: %d examples of %d logits for %d teacher logits and %d labels, want %d and %d",
			B, K, len(teacher), len(labels), B*K, B)
	}
	for j, t := range teacher {
		if math.IsNaN(float64(t)) || math.IsInf(float64(t), 0) {
			return nil, fmt.Errorf("distill: the teacher's logit %d of example %d is %v", j%K, j/K, t)
		}
	}
	for i, y := range labels {
		if y == y && !(y >= 0 && y < float32(K) && y == float32(int(y))) {
			return nil, fmt.Errorf("distill: label %v of example %d is not a class id in [0, %d) or NaN (none)", y, i, K)
		}
	}
	return loss.Build(g, logits)
}

// perExample is the per-example losses of the loss last built (nil before any).
func perExample(l nn.PerExampleLoss) []float32 {
	if l == nil {
		return nil
	}
	return l.PerExample()
}

// The losses satisfy the trainer's interface.
var (
	_ nn.PerExampleLoss = (*KD)(nil)
	_ nn.PerExampleLoss = (*MSE)(nil)
)
