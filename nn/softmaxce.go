package nn

// Softmax cross-entropy: the loss of a K-class model (K logits per example), as one fused op
// (a RowLoss) whose forward and backward passes are the closed forms below.

import (
	"fmt"
	"math"

	G "gorgonia.org/gorgonia"
)

// SoftmaxCrossEntropy is PyTorch's CrossEntropyLoss (torch.nn.functional.cross_entropy, mean
// over the batch) for K >= 2 logits per example and a class id per example:
//
//	loss_i = -log softmax(z_i)[y_i] = logsumexp(z_i) - z_i[y_i]
//
// computed from the row's largest logit, so that no logit overflows; its derivative in z_i is
// softmax(z_i) - onehot(y_i). Every example must have a label in [0, K): an unlabelled example
// (data.NoLabel, -1) or an id of no class is an error of Build. A binary model's single logit
// takes BCEWithLogits instead. Set Labels before each step; the value is reusable across
// steps.
type SoftmaxCrossEntropy struct {
	// Labels holds each example's class id, in [0, K).
	Labels []int

	loss RowLoss
}

// NewSoftmaxCrossEntropy returns the loss for the given class ids.
func NewSoftmaxCrossEntropy(labels []int) *SoftmaxCrossEntropy {
	return &SoftmaxCrossEntropy{Labels: labels}
}

// Build implements Loss for logits of shape (B, K), K >= 2, B = len(Labels).
func (l *SoftmaxCrossEntropy) Build(g *G.ExprGraph, logits *G.Node) (*G.Node, error) {
	shape := logits.Shape()
	if shape.Dims() != 2 || shape[1] < 2 {
		return nil, fmt.Errorf("nn: softmax cross-entropy wants logits of shape (B, K) with K >= 2 classes, got shape %v (a binary model's single logit takes binary cross-entropy)", shape)
	}
	B, K := shape[0], shape[1]
	if B != len(l.Labels) {
		return nil, fmt.Errorf("nn: softmax cross-entropy: %d examples of logits for %d labels", B, len(l.Labels))
	}
	labels := l.Labels // the labels of this graph, as the loss was when it was built
	for i, y := range labels {
		if y < 0 || y >= K {
			if y < 0 {
				return nil, fmt.Errorf("nn: softmax cross-entropy: example %d has label %d, no class (an unlabelled example?); every example needs a class id in [0, %d)", i, y, K)
			}
			return nil, fmt.Errorf("nn: softmax cross-entropy: example %d has label %d, outside the %d classes [0, %d)", i, y, K, K)
		}
	}
	l.loss.Name = "SoftmaxCrossEntropy"
	l.loss.Term = func(i int, z, dz []float64) float64 { return softmaxCETerm(z, labels[i], dz) }
	return l.loss.Build(g, logits)
}

// PerExample implements PerExampleLoss.
func (l *SoftmaxCrossEntropy) PerExample() []float32 { return l.loss.PerExample() }

// softmaxCETerm is the cross-entropy of logits z against class y, and its derivative
// softmax(z) - onehot(y) written into dz.
func softmaxCETerm(z []float64, y int, dz []float64) float64 {
	lse := logSumExp(z)
	for k, v := range z {
		dz[k] = math.Exp(v - lse)
	}
	dz[y]--
	return lse - z[y]
}

// logSumExp is log(sum_k exp(z_k)), computed from the largest z_k so that nothing overflows.
func logSumExp(z []float64) float64 {
	top := z[0]
	for _, v := range z[1:] {
		top = max(top, v)
	}
	var sum float64
	for _, v := range z {
		sum += math.Exp(v - top)
	}
	return top + math.Log(sum)
}

var _ PerExampleLoss = (*SoftmaxCrossEntropy)(nil)
