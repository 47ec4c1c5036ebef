package nn

// The word embedding: a trainable (or frozen) table of vectors, one row per vocabulary id, and
// the fused gather op that looks a batch's ids up (forward) and scatter-adds the gradient back
// into the table's rows (backward).

import (
	"fmt"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Embedding maps token ids to vectors. As PyTorch's nn.Embedding with padding_idx, the row of
// PadID is zero after Init and stays zero: its gradient is always zero.
type Embedding struct {
	// Weight is the table, shape [Vocab, Dim], named prefix+"weight".
	Weight *Param
	Vocab  int
	Dim    int
	// PadID is the padding id whose row is kept zero, or -1 for none.
	PadID int

	tag opTag
	w32 embedWork[float32]
	w64 embedWork[float64]
}

// embedWork holds an embedding's buffers, reused from step to step.
type embedWork[T float] struct {
	out []T // the looked-up rows
	dW  []T // the gradient of the table
}

// NewEmbedding returns a zero table of vocab rows of width dim; call Init for PyTorch's
// initialisation. padID < 0 means no padding row.
func NewEmbedding(prefix string, vocab, dim, padID int) *Embedding {
	return &Embedding{
		Weight: NewParam(prefix+"weight", vocab, dim),
		Vocab:  vocab,
		Dim:    dim,
		PadID:  padID,
		tag:    opTag{name: prefix + "embedding"},
	}
}

// Params returns the table.
func (e *Embedding) Params() []*Param { return []*Param{e.Weight} }

// Init draws every row from N(0, 1), as PyTorch does, and zeroes the padding row.
func (e *Embedding) Init(rng *RNG) {
	w := e.Weight.Data()
	for i := range w {
		w[i] = float32(rng.NormFloat64())
	}
	e.zeroPad()
}

func (e *Embedding) zeroPad() {
	if e.PadID >= 0 && e.PadID < e.Vocab {
		clear(e.Weight.Data()[e.PadID*e.Dim : (e.PadID+1)*e.Dim])
	}
}

// Freeze stops training the table: it gets no gradient and the optimiser leaves it alone.
func (e *Embedding) Freeze() { e.Weight.Freeze() }

// SetWeights copies a [Vocab, Dim] row-major matrix into the table (pretrained vectors) and
// zeroes the padding row.
func (e *Embedding) SetWeights(m []float32, rows, cols int) error {
	if rows != e.Vocab || cols != e.Dim || len(m) != rows*cols {
		return fmt.Errorf("nn: embedding %s: pretrained matrix is %dx%d (%d values), want %dx%d",
			e.Weight.Name, rows, cols, len(m), e.Vocab, e.Dim)
	}
	copy(e.Weight.Data(), m)
	e.zeroPad()
	return nil
}

// RowOrder is the order of an embedded batch's rows.
type RowOrder bool

const (
	// BatchMajor puts step t of sequence b at row b*T+t (the CNN's layout).
	BatchMajor RowOrder = false
	// TimeMajor puts it at row t*B+b (the recurrent layers' layout).
	TimeMajor RowOrder = true
)

// Forward looks the batch's ids up in the table (bound to g as a parameter). ids holds B rows
// of T ids (batch-major, as Input.IDs). The output has B*T rows of Dim, in the order asked:
// TimeMajor (the recurrent layers') or BatchMajor (the CNN's).
//
// The table's gradient is written straight into Weight.Grad (no copy of the whole table).
func (e *Embedding) Forward(g *G.ExprGraph, ids []int32, B, T int, order RowOrder) (*G.Node, error) {
	w, err := paramNode(g, e.Weight)
	if err != nil {
		return nil, err
	}
	out, err := e.Lookup(w, ids, B, T, order)
	if err == nil {
		out.Op().(*embedOp).intoGrad = true
	}
	return out, err
}

// Lookup is Forward on a given table node w of shape [Vocab, Dim] (float32 or float64).
func (e *Embedding) Lookup(w *G.Node, ids []int32, B, T int, order RowOrder) (*G.Node, error) {
	if B < 1 || T < 1 || len(ids) != B*T {
		return nil, fmt.Errorf("nn: embedding %s: %d ids for a batch of %d x %d", e.Weight.Name, len(ids), B, T)
	}
	if s := w.Shape(); len(s) != 2 || s[0] != e.Vocab || s[1] != e.Dim {
		return nil, fmt.Errorf("nn: embedding %s: table node has shape %v, want [%d %d]", e.Weight.Name, s, e.Vocab, e.Dim)
	}
	for i, id := range ids {
		if id < 0 || int(id) >= e.Vocab {
			return nil, fmt.Errorf("nn: embedding %s: id %d at position %d of sequence %d is outside the vocabulary of %d",
				e.Weight.Name, id, i%T, i/T, e.Vocab)
		}
	}
	op := &embedOp{opBase: newOp("Embedding("+e.tag.next()+")", tensor.Shape{B * T, e.Dim}, 2),
		e: e, ids: ids, B: B, T: T, timeMajor: order == TimeMajor}
	return G.ApplyOp(op, w)
}

// row is the output row of position t of sequence b.
func (op *embedOp) row(b, t int) int {
	if op.timeMajor {
		return t*op.B + b
	}
	return b*op.T + t
}

// embedOp gathers the rows of the ids: forward of Embedding.Lookup.
type embedOp struct {
	opBase
	e         *Embedding
	ids       []int32
	B, T      int
	timeMajor bool
	intoGrad  bool // write the table's gradient into e.Weight.Grad
}

func (op *embedOp) DiffWRT(int) []bool { return []bool{true} }
func (op *embedOp) SymDiff(in G.Nodes, out, grad *G.Node) (G.Nodes, error) {
	dw, err := G.ApplyOp(op.backward(), grad)
	if err != nil {
		return nil, err
	}
	return G.Nodes{dw}, announceGrads(in, G.Nodes{dw})
}

func (op *embedOp) Do(vals ...G.Value) (G.Value, error) {
	switch vals[0].Dtype() {
	case tensor.Float32:
		return embedForward(op, &op.e.w32, vals[0])
	case tensor.Float64:
		return embedForward(op, &op.e.w64, vals[0])
	}
	return nil, unsupported(op, vals[0])
}

func embedForward[T float](op *embedOp, ws *embedWork[T], wv G.Value) (G.Value, error) {
	w, err := values[T](wv)
	if err != nil {
		return nil, fmt.Errorf("%v: %w", op, err)
	}
	E := op.e.Dim
	out := resize(&ws.out, op.B*op.T*E)
	for b := 0; b < op.B; b++ {
		for t := 0; t < op.T; t++ {
			id := int(op.ids[b*op.T+t])
			r := op.row(b, t)
			copy(out[r*E:(r+1)*E], w[id*E:(id+1)*E])
		}
	}
	return dense(out, op.B*op.T, E), nil
}

// embedBwdOp scatter-adds the output gradient into the table's gradient (the padding row gets
// none). Its only input is the output gradient; the ids are on the op.
type embedBwdOp struct {
	gradOpBase
	fwd *embedOp
}

// backward returns the op's backward op.
func (op *embedOp) backward() *embedBwdOp {
	return &embedBwdOp{newGradOp("Grad"+op.name, tensor.Shape{op.e.Vocab, op.e.Dim}, 2), op}
}

func (op *embedBwdOp) Do(vals ...G.Value) (G.Value, error) {
	switch vals[0].Dtype() {
	case tensor.Float32:
		return embedBackward(op, &op.fwd.e.w32, vals[0])
	case tensor.Float64:
		return embedBackward(op, &op.fwd.e.w64, vals[0])
	}
	return nil, unsupported(op, vals[0])
}

func embedBackward[T float](op *embedBwdOp, ws *embedWork[T], dv G.Value) (G.Value, error) {
	dOut, err := values[T](dv)
	if err != nil {
		return nil, fmt.Errorf("%v: %w", op, err)
	}
	E := op.fwd.e.Dim
	if len(dOut) != op.fwd.B*op.fwd.T*E {
		return nil, fmt.Errorf("nn: %v: output gradient has %d values, want %d", op, len(dOut), op.fwd.B*op.fwd.T*E)
	}
	var dW []T
	if g, ok := any(op.fwd.e.Weight.Grad).([]T); ok && op.fwd.intoGrad && len(g) == op.fwd.e.Vocab*E {
		dW = g // the runner finds the gradient in place
	} else {
		dW = resize(&ws.dW, op.fwd.e.Vocab*E)
	}
	zero(dW)
	pad := op.fwd.e.PadID
	for b := 0; b < op.fwd.B; b++ {
		for t := 0; t < op.fwd.T; t++ {
			id := int(op.fwd.ids[b*op.fwd.T+t])
			if id == pad {
				continue
			}
			r := op.fwd.row(b, t)
			dst := dW[id*E : (id+1)*E]
			src := dOut[r*E : (r+1)*E]
			for j := range dst {
				dst[j] += src[j]
			}
		}
	}
	return dense(dW, op.fwd.e.Vocab, E), nil
}
