package nn

// Dropout as PyTorch's nn.Dropout: in Train mode each element is kept with probability 1-p and
// scaled by 1/(1-p), else zeroed; in Eval mode it is the identity. The mask comes from the
// model's *RNG, drawn when the graph is built, so the same seed gives the same masks.

import (
	"fmt"
	"math"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Dropout is one dropout site of a model. It owns its mask and output buffers, so a site is
// applied at most once per graph.
type Dropout struct {
	P float64
	// InPlace makes the op write its output over its input, and its input gradient over its
	// output gradient, rather than into buffers of its own: two fewer buffers the size of the
	// input. Only for an input and a gradient that nothing else reads, as the LSTM
	// classifier's embedding dropout (its input is the embedding lookup, its gradient the
	// recurrent op's input gradient).
	InPlace bool

	tag  opTag
	keep []bool
	w32  dropWork[float32]
	w64  dropWork[float64]
}

type dropWork[T float] struct{ out, dx []T }

// NewDropout returns a dropout site with probability p (0 <= p < 1); name labels its ops.
func NewDropout(name string, p float64) *Dropout {
	return &Dropout{P: p, tag: opTag{name: name}}
}

// Forward applies the dropout to x. In Eval mode, or with p = 0, it returns x itself.
func (d *Dropout) Forward(x *G.Node, mode Mode, rng *RNG) (*G.Node, error) {
	if mode != Train || d.P == 0 {
		return x, nil
	}
	if d.P < 0 || d.P >= 1 || math.IsNaN(d.P) {
		return nil, fmt.Errorf("nn: dropout %s: probability %v is outside [0, 1)", d.tag.name, d.P)
	}
	if rng == nil {
		return nil, fmt.Errorf("nn: dropout %s: Train mode needs a random generator", d.tag.name)
	}
	n := x.Shape().TotalSize()
	d.drawMask(rng, n)
	op := newDropoutOp(d, d.tag.next(), x.Shape())
	return G.ApplyOp(op, x)
}

// drawMask draws n keep/drop decisions: each 64-bit draw gives two 32-bit uniforms, an element
// being kept when its uniform is at least p*2^32.
func (d *Dropout) drawMask(rng *RNG, n int) {
	keep := resize(&d.keep, n)
	thr := uint64(math.Round(d.P * (1 << 32)))
	for i := 0; i < n; i += 2 {
		u := rng.pcg.Uint64() // the draws of rng.Uint64, without its indirection
		keep[i] = u&0xffffffff >= thr
		if i+1 < n {
			keep[i+1] = u>>32 >= thr
		}
	}
}

type dropoutOp struct {
	opBase
	d *Dropout
}

// newDropoutOp returns d's op named name over inputs of the given shape.
func newDropoutOp(d *Dropout, name string, shape tensor.Shape) *dropoutOp {
	return &dropoutOp{newOp("Dropout("+name+")", shape, shape.Dims()), d}
}

// backward returns the op's backward op.
func (op *dropoutOp) backward() *dropoutBwdOp {
	return &dropoutBwdOp{newGradOp("Grad"+op.name, op.out, op.out.Dims()), op}
}

func (op *dropoutOp) DiffWRT(int) []bool { return []bool{true} }
func (op *dropoutOp) SymDiff(in G.Nodes, out, grad *G.Node) (G.Nodes, error) {
	dx, err := G.ApplyOp(op.backward(), grad)
	if err != nil {
		return nil, err
	}
	return G.Nodes{dx}, nil
}

func (op *dropoutOp) Do(vals ...G.Value) (G.Value, error) {
	switch vals[0].Dtype() {
	case tensor.Float32:
		return dropApply(op, &op.d.w32.out, vals[0])
	case tensor.Float64:
		return dropApply(op, &op.d.w64.out, vals[0])
	}
	return nil, unsupported(op, vals[0])
}

// dropApply writes x * mask / (1-p) into *buf.
func dropApply[T float](op *dropoutOp, buf *[]T, xv G.Value) (G.Value, error) {
	x, err := values[T](xv)
	if err != nil {
		return nil, fmt.Errorf("%v: %w", op, err)
	}
	keep := op.d.keep
	if len(x) != len(keep) {
		return nil, fmt.Errorf("nn: %v: input has %d values, the mask %d", op, len(x), len(keep))
	}
	scale := T(1 / (1 - op.d.P))
	out := x
	if !op.d.InPlace {
		out = resize(buf, len(x))
	}
	for i, v := range x {
		if keep[i] {
			out[i] = v * scale
		} else {
			out[i] = 0
		}
	}
	return dense(out, op.out...), nil
}

// dropoutBwdOp applies the forward op's mask to the output gradient.
type dropoutBwdOp struct {
	gradOpBase
	fwd *dropoutOp
}

func (op *dropoutBwdOp) Do(vals ...G.Value) (G.Value, error) {
	switch vals[0].Dtype() {
	case tensor.Float32:
		return dropApply(op.fwd, &op.fwd.d.w32.dx, vals[0])
	case tensor.Float64:
		return dropApply(op.fwd, &op.fwd.d.w64.dx, vals[0])
	}
	return nil, unsupported(op, vals[0])
}
