package nn

// SeqPool: mean and max pooling over time of a recurrent layer's output sequence, each over the
// sequence's true length, as one Gorgonia op with its backward pass. With the final states beside
// them this is ULMFiT's "concat pooling" (Howard and Ruder 2018), which GRUClassifier offers
// (Config.Pool = PoolConcat): a head that reads the whole sequence, not only its two ends.

import (
	"fmt"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// SeqPool is one pooling site of a model; it owns its buffers, so it is applied at most once
// per graph.
type SeqPool struct {
	tag opTag
	w32 poolWork[float32]
	w64 poolWork[float64]
}

// poolWork holds the op's output, its input gradient and, per (sequence, column), the row the
// maximum came from.
type poolWork[T float] struct {
	out, dx []T
	arg     []int
}

// NewSeqPool returns a pooling site; name labels its ops.
func NewSeqPool(name string) *SeqPool { return &SeqPool{tag: opTag{name: name}} }

// Forward pools x, a time-major output sequence (T*B, W) (row t*B+b is sequence b at step t),
// over each sequence's true length: the result is (B, 2W), [mean | max] per sequence. Rows past
// a sequence's length are not read, whatever they hold. lengths holds the B lengths, each in 1..T.
func (p *SeqPool) Forward(x *G.Node, lengths []int, T int) (*G.Node, error) {
	B := len(lengths)
	if B == 0 || T < 1 {
		return nil, fmt.Errorf("nn: pool %s: empty batch", p.tag.name)
	}
	if x.Shape().Dims() != 2 || x.Shape()[0] != T*B {
		return nil, fmt.Errorf("nn: pool %s: input of shape %v, want (T*B = %d, W)", p.tag.name, x.Shape(), T*B)
	}
	for b, l := range lengths {
		if l < 1 || l > T {
			return nil, fmt.Errorf("nn: pool %s: sequence %d has length %d, outside [1, T=%d]", p.tag.name, b, l, T)
		}
	}
	W := x.Shape()[1]
	op := &seqPoolOp{opBase: newOp("SeqPool("+p.tag.next()+")", tensor.Shape{B, 2 * W}, 2),
		p: p, lengths: append([]int(nil), lengths...), T: T, W: W}
	return G.ApplyOp(op, x)
}

type seqPoolOp struct {
	opBase
	p       *SeqPool
	lengths []int
	T, W    int
}

func (op *seqPoolOp) DiffWRT(int) []bool { return []bool{true} }
func (op *seqPoolOp) SymDiff(in G.Nodes, out, grad *G.Node) (G.Nodes, error) {
	dx, err := G.ApplyOp(&seqPoolBwdOp{newGradOp("Grad"+op.name, tensor.Shape{op.T * len(op.lengths), op.W}, 2), op}, grad)
	if err != nil {
		return nil, err
	}
	return G.Nodes{dx}, nil
}

func (op *seqPoolOp) Do(vals ...G.Value) (G.Value, error) {
	switch vals[0].Dtype() {
	case tensor.Float32:
		return poolForward(op, &op.p.w32, vals[0])
	case tensor.Float64:
		return poolForward(op, &op.p.w64, vals[0])
	}
	return nil, unsupported(op, vals[0])
}

// poolForward computes [mean | max] per sequence and remembers where each maximum was.
func poolForward[T float](op *seqPoolOp, w *poolWork[T], xv G.Value) (G.Value, error) {
	x, err := values[T](xv)
	if err != nil {
		return nil, fmt.Errorf("%v: %w", op, err)
	}
	B, W := len(op.lengths), op.W
	if len(x) != op.T*B*W {
		return nil, fmt.Errorf("nn: %v: input has %d values, want %d", op, len(x), op.T*B*W)
	}
	out := resize(&w.out, B*2*W)
	arg := resize(&w.arg, B*W)
	for b, l := range op.lengths {
		mean, mx, am := out[b*2*W:b*2*W+W], out[b*2*W+W:(b+1)*2*W], arg[b*W:(b+1)*W]
		first := x[b*W : (b+1)*W] // step 0
		copy(mean, first)
		copy(mx, first)
		for j := range am {
			am[j] = b
		}
		for t := 1; t < l; t++ {
			row := t*B + b
			for j, v := range x[row*W : (row+1)*W] {
				mean[j] += v
				if v > mx[j] {
					mx[j], am[j] = v, row
				}
			}
		}
		inv := 1 / T(l)
		for j := range mean {
			mean[j] *= inv
		}
	}
	return dense(out, B, 2*W), nil
}

type seqPoolBwdOp struct {
	gradOpBase
	fwd *seqPoolOp
}

func (op *seqPoolBwdOp) Do(vals ...G.Value) (G.Value, error) {
	switch vals[0].Dtype() {
	case tensor.Float32:
		return poolBackward(op, &op.fwd.p.w32, vals[0])
	case tensor.Float64:
		return poolBackward(op, &op.fwd.p.w64, vals[0])
	}
	return nil, unsupported(op, vals[0])
}

// poolBackward spreads the mean's gradient evenly over each sequence's steps and routes the
// max's gradient to the row the maximum came from; padding rows get zero.
func poolBackward[T float](op *seqPoolBwdOp, w *poolWork[T], gv G.Value) (G.Value, error) {
	dy, err := values[T](gv)
	if err != nil {
		return nil, fmt.Errorf("%v: %w", op, err)
	}
	B, W := len(op.fwd.lengths), op.fwd.W
	if len(dy) != B*2*W || len(w.arg) != B*W {
		return nil, fmt.Errorf("nn: %v: gradient has %d values, want %d (or the forward pass did not run)", op, len(dy), B*2*W)
	}
	dx := resize(&w.dx, op.fwd.T*B*W)
	clear(dx)
	for b, l := range op.fwd.lengths {
		dmean, dmax, am := dy[b*2*W:b*2*W+W], dy[b*2*W+W:(b+1)*2*W], w.arg[b*W:(b+1)*W]
		inv := 1 / T(l)
		for t := 0; t < l; t++ {
			row := dx[(t*B+b)*W : (t*B+b+1)*W]
			for j, g := range dmean {
				row[j] = g * inv
			}
		}
		for j, g := range dmax {
			dx[am[j]*W+j] += g
		}
	}
	return dense(dx, op.fwd.T*B, W), nil
}
