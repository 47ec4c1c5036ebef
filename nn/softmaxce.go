package nn

// A minimal softmax cross-entropy, written by helper klabels so that K-class training runs
// before helper kloss's fused, gradient-checked op lands: the merge replaces this file with
// kloss's nn/softmaxce.go (same name and signature).

import (
	"fmt"
	"math"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// SoftmaxCrossEntropy is PyTorch's cross_entropy (mean over the batch) over K logits per
// example: loss_i = logsumexp(z_i) - z_i[y_i].
type SoftmaxCrossEntropy struct {
	labels []int
	tag    opTag
	per    []float32
}

// NewSoftmaxCrossEntropy returns the loss for the given class ids (one per example, in [0, K)).
func NewSoftmaxCrossEntropy(labels []int) *SoftmaxCrossEntropy {
	return &SoftmaxCrossEntropy{labels: labels}
}

// Build implements Loss over logits (B, K).
func (l *SoftmaxCrossEntropy) Build(g *G.ExprGraph, logits *G.Node) (*G.Node, error) {
	shape := logits.Shape()
	if shape.Dims() != 2 || shape[0] != len(l.labels) {
		return nil, fmt.Errorf("nn: softmax cross-entropy: logits of shape %v for %d labels", shape, len(l.labels))
	}
	for i, y := range l.labels {
		if y < 0 || y >= shape[1] {
			return nil, fmt.Errorf("nn: softmax cross-entropy: example %d has label %d, want a class in [0, %d)", i, y, shape[1])
		}
	}
	l.tag.name = "SoftmaxCE"
	op := &softmaxCEOp{opBase: newOp(l.tag.next(), tensor.ScalarShape(), 2), l: l, b: shape[0], k: shape[1]}
	return G.ApplyOp(op, logits)
}

// PerExample implements PerExampleLoss.
func (l *SoftmaxCrossEntropy) PerExample() []float32 { return l.per }

type softmaxCEOp struct {
	opBase
	l    *SoftmaxCrossEntropy
	b, k int
}

func (op *softmaxCEOp) DiffWRT(int) []bool { return []bool{true} }
func (op *softmaxCEOp) SymDiff(in G.Nodes, out, grad *G.Node) (G.Nodes, error) {
	bwd := &softmaxCEBwdOp{newGradOp("Grad"+op.name, tensor.Shape{op.b, op.k}, 2, 0), op}
	dz, err := G.ApplyOp(bwd, in[0], grad)
	if err != nil {
		return nil, err
	}
	return G.Nodes{dz}, nil
}

func (op *softmaxCEOp) Do(vals ...G.Value) (G.Value, error) {
	z, err := values[float32](vals[0])
	if err != nil {
		return nil, fmt.Errorf("%v: %w", op, err)
	}
	per := resize(&op.l.per, op.b)
	var sum float64
	for i := 0; i < op.b; i++ {
		row := z[i*op.k : (i+1)*op.k]
		loss := logSumExp(row) - float64(row[op.l.labels[i]])
		per[i] = float32(loss)
		sum += loss
	}
	return scalar[float32](sum / float64(op.b)), nil
}

// logSumExp is log(sum(exp(z))), from the largest z.
func logSumExp(z []float32) float64 {
	top := float64(z[0])
	for _, v := range z[1:] {
		top = max(top, float64(v))
	}
	var s float64
	for _, v := range z {
		s += math.Exp(float64(v) - top)
	}
	return top + math.Log(s)
}

// softmaxCEBwdOp computes dz = grad * (softmax(z) - onehot(y)) / B.
type softmaxCEBwdOp struct {
	gradOpBase
	fwd *softmaxCEOp
}

func (op *softmaxCEBwdOp) Do(vals ...G.Value) (G.Value, error) {
	z, err := values[float32](vals[0])
	if err != nil {
		return nil, fmt.Errorf("%v: %w", op, err)
	}
	g, err := scalarValue(vals[1])
	if err != nil {
		return nil, fmt.Errorf("%v: %w", op, err)
	}
	b, k := op.fwd.b, op.fwd.k
	scale := g / float64(b)
	dz := make([]float32, b*k)
	for i := 0; i < b; i++ {
		row := z[i*k : (i+1)*k]
		lse := logSumExp(row)
		for j, v := range row {
			d := math.Exp(float64(v) - lse)
			if j == op.fwd.l.labels[i] {
				d--
			}
			dz[i*k+j] = float32(d * scale)
		}
	}
	return dense(dz, b, k), nil
}

var _ PerExampleLoss = (*SoftmaxCrossEntropy)(nil)
