package nn

// Gorgonia glue shared by the package's fused ops.
//
// A fused op is three kinds of gorgonia.Op:
//   - the forward op, whose Do runs the layer and keeps what the backward pass needs in the
//     layer's own buffers (reused from step to step);
//   - one backward op, made by the forward op's SymDiff, whose Do computes every gradient of
//     the layer at once and returns a one-element token;
//   - one getter op per wanted gradient, reading it out of the backward op's buffers. Getters
//     depend on the backward node, so the tape runs them after it.
//
// An op author writes its math only: every op embeds opBase (made by newOp), which answers
// the rest of gorgonia.Op from what is known when the op is made: its name, its inputs' and
// output's dimensions and its output's shape. A forward op adds Do, DiffWRT and SymDiff; a
// backward or getter op embeds gradOpBase (newGradOp) instead, which has no derivative, and
// adds Do.
//
// Gorgonia merges graph nodes whose ops hash alike and whose inputs are the same. An op hashes
// its name, and every op instance's name carries an id drawn from its layer's own counter
// (opTag): no package-wide state. The values an op returns wrap buffers its layer owns; a
// layer therefore must not be used by two graphs at once (a model runs one step at a time).

import (
	"fmt"
	"hash"
	"hash/fnv"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// opTag gives the ops of one layer unique names: the layer's name plus a counter the layer owns.
type opTag struct {
	name string
	n    uint64
}

// next returns a fresh name such as "fc#3".
func (t *opTag) next() string { return fmt.Sprintf("%s#%d", t.name, t.nextID()) }

// nextID returns a fresh number: 1, 2, ...
func (t *opTag) nextID() uint64 {
	t.n++
	return t.n
}

// opBase is the part of a gorgonia.Op that the package's ops answer alike, fixed when the op
// is made (newOp): its name (String, and WriteHash and Hashcode, which hash the name), its
// type (Arity, Type) and its output's shape (InferShape). It returns no pointer, calls nothing
// external and overwrites no input.
type opBase struct {
	name  string
	typ   hm.Type
	arity int
	out   tensor.Shape
}

// newOp returns the opBase of an op called name whose inputs have the given dimensions (0: a
// scalar) and whose output has shape out (a scalar for tensor.ScalarShape()).
func newOp(name string, out tensor.Shape, inDims ...int) opBase {
	return opBase{name: name, typ: fnType(append(append([]int(nil), inDims...), out.Dims())...), arity: len(inDims), out: out.Clone()}
}

func (b *opBase) Arity() int                                     { return b.arity }
func (b *opBase) Type() hm.Type                                  { return b.typ }
func (b *opBase) InferShape(...G.DimSizer) (tensor.Shape, error) { return b.out.Clone(), nil }
func (b *opBase) ReturnsPtr() bool                               { return false }
func (b *opBase) CallsExtern() bool                              { return false }
func (b *opBase) OverwritesInput() int                           { return -1 }
func (b *opBase) String() string                                 { return b.name }
func (b *opBase) WriteHash(h hash.Hash)                          { h.Write([]byte(b.name)) }
func (b *opBase) Hashcode() uint32                               { return hashString(b.name) }

// gradOpBase is the opBase of a backward or getter op: an op without a derivative.
type gradOpBase struct{ opBase }

// newGradOp is newOp for a backward or getter op.
func newGradOp(name string, out tensor.Shape, inDims ...int) gradOpBase {
	return gradOpBase{newOp(name, out, inDims...)}
}

func (b *gradOpBase) DiffWRT(n int) []bool { return make([]bool, n) }
func (b *gradOpBase) SymDiff(G.Nodes, *G.Node, *G.Node) (G.Nodes, error) {
	return nil, fmt.Errorf("nn: %s: no second derivative", b.name)
}

// unsupported is the error of an op's Do given a value of another type than float32 or float64.
func unsupported(op fmt.Stringer, v G.Value) error {
	return fmt.Errorf("nn: %v: unsupported dtype %v", op, v.Dtype())
}

// hashString is the Hashcode of an op named s.
func hashString(s string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(s))
	return h.Sum32()
}

// tensorType is the type of a tensor of dims dimensions of any element type.
func tensorType(dims int) G.TensorType { return G.TensorType{Dims: dims, Of: hm.TypeVariable('a')} }

// fnType builds an op's type from its inputs' and its output's dimensions (0 = scalar).
func fnType(dims ...int) hm.Type {
	ts := make([]hm.Type, len(dims))
	for i, d := range dims {
		if d == 0 {
			ts[i] = hm.TypeVariable('a')
		} else {
			ts[i] = tensorType(d)
		}
	}
	return hm.NewFnType(ts...)
}

// values returns the backing slice of a dense, non-view value of element type T.
func values[T float](v G.Value) ([]T, error) {
	if d, ok := v.(*tensor.Dense); ok && d.IsView() {
		return nil, fmt.Errorf("nn: got a view tensor of shape %v; fused ops need contiguous inputs", d.Shape())
	}
	data, ok := v.Data().([]T)
	if !ok {
		var zero T
		return nil, fmt.Errorf("nn: got a value of type %T, want []%T", v.Data(), zero)
	}
	return data, nil
}

// scalarValue reads a scalar Value (a Gorgonia scalar or a one-element tensor).
func scalarValue(v G.Value) (float64, error) {
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
	return 0, fmt.Errorf("nn: want a scalar, got %T of shape %v", v.Data(), v.Shape())
}

// dense wraps buf (not copied) as a tensor of the given shape.
func dense[T float](buf []T, shape ...int) *tensor.Dense {
	return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(buf))
}

// scalar returns x as a one-element value of element type T (what a loss op returns).
func scalar[T float](x float64) G.Value {
	var zero T
	if _, ok := any(zero).(float32); ok {
		return G.NewF32(float32(x))
	}
	return G.NewF64(x)
}

// resize returns *buf resized to n elements, reallocating only when its capacity is short.
// The contents are not cleared.
func resize[T any](buf *[]T, n int) []T {
	if cap(*buf) < n {
		*buf = make([]T, n)
	}
	*buf = (*buf)[:n]
	return *buf
}

// zero clears s.
func zero[T float](s []T) {
	clear(s)
}

// token is the one-element value a backward op returns: its real results are read by getters.
func token[T float]() *tensor.Dense { return dense(make([]T, 1), 1) }
