package nn

// The text CNN as one fused op: 1-D convolutions of several widths over time (PyTorch's Conv1d
// layout), ReLU, and max over time within each sequence's true length, concatenated.
//
// Forward. Only the windows that can win the max are computed: for sequence b with true
// length L, eff = max(L, MinLen) (shorter sequences count as padded with <pad> to MinLen, as
// the recipe's CNNClassifier does) and width w has eff-w+1 windows. The windows of a block of
// rows are copied side by side (im2col: the window starting at step t is maxW consecutive rows
// of the batch-major input, one contiguous run of maxW*E values), and one GEMM per width,
// (rows x w*E) times (w*E x F), gives every filter's response; a running max per (sequence,
// filter) keeps the value and the position (the first one on ties, as torch.max). Blocks bound
// the memory whatever the sequence length.
//
// Backward. The max lets one window per (sequence, filter) through, so the backward pass is
// sparse: for each (b, filter) whose pooled output is positive, the output gradient g adds
// g * window to the filter's weight gradient and g * filter to the input gradient of the
// window's positions (one axpy each), and g to the bias gradient. That is B*F*sum(w)*E
// multiply-adds instead of the two dense GEMMs (twice the forward's work) of a dense backward.
// The weight gradients are shared among the device's workers by filter, the input gradient by
// sequence, so every sum runs in a fixed order: the results do not depend on the workers.

import (
	"fmt"
	"math"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// TextCNN is the convolutions, ReLU and max-over-time of the recipe's cnn model: for each
// width w, a Conv1d(Dim, Filters, w). Its output for a batch is (B, len(Widths)*Filters), the
// widths' pooled features side by side.
type TextCNN struct {
	Widths  []int
	Filters int
	Dim     int
	// MinLen is the length shorter sequences count as padded to: the largest width.
	MinLen int
	// Weights[i] is convs.i.weight [Filters, Dim, Widths[i]]; Biases[i] is convs.i.bias [Filters].
	Weights []*Param
	Biases  []*Param
	// BlockRows is the number of windows per GEMM block (a speed/memory trade-off).
	BlockRows int

	dev *CPU
	tag opTag
	w32 cnnWork[float32]
	w64 cnnWork[float64]
}

// cnnWork holds a TextCNN's buffers, reused from step to step.
type cnnWork[T float] struct {
	wf   [][]T   // per width: weights as (F, w*E), element f*wE + k*E + e = W[f, e, k]
	col  []T     // im2col block: (BlockRows, maxW*E)
	conv []T     // responses of a block: (BlockRows, nW*F)
	rowB []int32 // sequence of each row of the block
	rowT []int32 // window start of each row of the block
	best []T     // (B, nW*F) running max of the responses (bias excluded)
	arg  []int32 // (B, nW*F) window start of the max
	out  []T     // (B, nW*F) pooled output (handed to the graph, which may reuse it)
	on   []bool  // (B, nW*F) whether the ReLU let the max through (kept for the backward pass)
	dx   []T     // (B*T, E) input gradient
	dwf  [][]T   // per width: weight gradient as (F, w*E)
	dW   [][]T   // per width: weight gradient [F, E, w]
	db   [][]T   // per width: bias gradient [F]
}

// NewTextCNN returns zero convolutions named prefix+"0.weight", prefix+"0.bias", ... (as
// nn.ModuleList "convs."); call Init for PyTorch's initialisation.
func NewTextCNN(dev *CPU, prefix string, dim, filters int, widths []int) *TextCNN {
	c := &TextCNN{
		Widths:    append([]int(nil), widths...),
		Filters:   filters,
		Dim:       dim,
		BlockRows: 512,
		dev:       dev,
		tag:       opTag{name: prefix + "textcnn"},
	}
	for i, w := range widths {
		c.Weights = append(c.Weights, NewParam(fmt.Sprintf("%s%d.weight", prefix, i), filters, dim, w))
		c.Biases = append(c.Biases, NewParam(fmt.Sprintf("%s%d.bias", prefix, i), filters))
		c.MinLen = max(c.MinLen, w)
	}
	return c
}

// Params returns convs.0.weight, convs.0.bias, convs.1.weight, ... (state_dict order).
func (c *TextCNN) Params() []*Param {
	var ps []*Param
	for i := range c.Widths {
		ps = append(ps, c.Weights[i], c.Biases[i])
	}
	return ps
}

// Init draws each convolution's weight and bias from U(-1/sqrt(Dim*w), 1/sqrt(Dim*w)), PyTorch's
// default for Conv1d.
func (c *TextCNN) Init(rng *RNG) {
	for i, w := range c.Widths {
		bound := 1 / math.Sqrt(float64(c.Dim*w))
		uniform(rng, c.Weights[i].Data(), bound)
		uniform(rng, c.Biases[i].Data(), bound)
	}
}

// OutputDim is the width of the output: len(Widths) * Filters.
func (c *TextCNN) OutputDim() int { return len(c.Widths) * c.Filters }

// InputGrad says whether a layer computes the gradient of its input.
type InputGrad bool

const (
	// WithInputGrad computes it (a trained layer below).
	WithInputGrad InputGrad = true
	// NoInputGrad skips it (nothing trainable below).
	NoInputGrad InputGrad = false
)

// Forward applies the convolutions to x, the batch-major (B*T, Dim) embedded batch (row b*T+t),
// binding the parameters to x's graph. lengths are the true lengths; T must be at least MinLen.
// NoInputGrad skips the input gradient (a frozen embedding below).
func (c *TextCNN) Forward(x *G.Node, lengths []int, T int, grad InputGrad) (*G.Node, error) {
	params := make(G.Nodes, 0, 2*len(c.Widths))
	for _, p := range c.Params() {
		n, err := paramNode(x.Graph(), p)
		if err != nil {
			return nil, err
		}
		params = append(params, n)
	}
	return c.Apply(x, params, lengths, T, grad)
}

// Apply is Forward with the given weight and bias nodes (w0, b0, w1, b1, ...).
func (c *TextCNN) Apply(x *G.Node, params G.Nodes, lengths []int, T int, grad InputGrad) (*G.Node, error) {
	B := len(lengths)
	if len(c.Widths) == 0 || c.Filters < 1 || c.Dim < 1 {
		return nil, fmt.Errorf("nn: text CNN %s: no convolutions", c.tag.name)
	}
	if len(params) != 2*len(c.Widths) {
		return nil, fmt.Errorf("nn: text CNN %s: %d parameter nodes, want %d", c.tag.name, len(params), 2*len(c.Widths))
	}
	if s := x.Shape(); len(s) != 2 || s[0] != B*T || s[1] != c.Dim {
		return nil, fmt.Errorf("nn: text CNN %s: input has shape %v, want (%d*%d, %d)", c.tag.name, s, B, T, c.Dim)
	}
	if T < c.MinLen {
		return nil, fmt.Errorf("nn: text CNN %s: padded length %d is shorter than the widest filter (%d)", c.tag.name, T, c.MinLen)
	}
	for b, l := range lengths {
		if l < 1 || l > T {
			return nil, fmt.Errorf("nn: text CNN %s: sequence %d has length %d, outside [1, %d]", c.tag.name, b, l, T)
		}
	}
	dims := []int{2}
	for range c.Widths {
		dims = append(dims, 3, 1)
	}
	op := &cnnOp{opBase: newOp("TextCNN("+c.tag.next()+")", tensor.Shape{B, c.OutputDim()}, dims...),
		c: c, lengths: append([]int(nil), lengths...), B: B, T: T, needDX: grad == WithInputGrad}
	return G.ApplyOp(op, append(G.Nodes{x}, params...)...)
}

// cnnOp is the forward op; inputs x, w0, b0, w1, b1, ...
type cnnOp struct {
	opBase
	c       *TextCNN
	lengths []int
	B, T    int
	needDX  bool
}

func (op *cnnOp) DiffWRT(n int) []bool {
	d := make([]bool, n)
	for i := range d {
		d[i] = i > 0 || op.needDX
	}
	return d
}

func (op *cnnOp) SymDiff(in G.Nodes, out, grad *G.Node) (G.Nodes, error) {
	bw, err := G.ApplyOp(&cnnBwdOp{newGradOp("Backward"+op.name, tensor.Shape{1}, 2, 2), op}, in[0], grad)
	if err != nil {
		return nil, err
	}
	res := make(G.Nodes, len(in))
	for k := range res {
		if k == 0 && !op.needDX {
			continue
		}
		if res[k], err = G.ApplyOp(op.gradGetter(k), bw); err != nil {
			return nil, err
		}
	}
	return res, announceGrads(in, res)
}

func (op *cnnOp) Do(vals ...G.Value) (G.Value, error) {
	switch vals[0].Dtype() {
	case tensor.Float32:
		return cnnForward(op, &op.c.w32, vals)
	case tensor.Float64:
		return cnnForward(op, &op.c.w64, vals)
	}
	return nil, unsupported(op, vals[0])
}

// windows is the number of windows of width w of sequence b (those inside max(len, MinLen)).
func (op *cnnOp) windows(b, w int) int {
	return max(op.lengths[b], op.c.MinLen) - w + 1
}

func cnnForward[T float](op *cnnOp, ws *cnnWork[T], vals []G.Value) (G.Value, error) {
	c := op.c
	B, Tn, E, F := op.B, op.T, c.Dim, c.Filters
	nW := len(c.Widths)
	nWF := nW * F
	minW, maxW := c.Widths[0], c.MinLen
	for _, w := range c.Widths {
		minW = min(minW, w)
	}
	x, err := values[T](vals[0])
	if err != nil {
		return nil, fmt.Errorf("%v: %w", op, err)
	}

	// Weights as (F, w*E) rows, so that a filter's taps line up with an im2col row.
	ws.wf = resize(&ws.wf, nW)
	for i, w := range c.Widths {
		W, err := values[T](vals[1+2*i])
		if err != nil {
			return nil, fmt.Errorf("%v: %w", op, err)
		}
		wf := resize(&ws.wf[i], F*w*E)
		for f := 0; f < F; f++ {
			for e := 0; e < E; e++ {
				src := W[(f*E+e)*w : (f*E+e+1)*w]
				for k, v := range src {
					wf[f*w*E+k*E+e] = v
				}
			}
		}
	}

	best := resize(&ws.best, B*nWF)
	arg := resize(&ws.arg, B*nWF)
	for i := range best {
		best[i] = T(math.Inf(-1))
		arg[i] = -1
	}
	R := max(c.BlockRows, 1)
	ld := maxW * E
	col := resize(&ws.col, R*ld)
	conv := resize(&ws.conv, R*nWF)
	rowB := resize(&ws.rowB, R)
	rowT := resize(&ws.rowT, R)

	// runBlock computes the responses of the n rows in the block and updates the running max.
	runBlock := func(n int) {
		for i, w := range c.Widths {
			gemm(c.dev.BLAS, false, true, n, F, w*E, 1, col, ld, ws.wf[i], w*E, 0, conv[i*F:], nWF)
		}
		for r := 0; r < n; r++ {
			b, t := int(rowB[r]), int(rowT[r])
			resp := conv[r*nWF : (r+1)*nWF]
			bb := best[b*nWF : (b+1)*nWF]
			ab := arg[b*nWF : (b+1)*nWF]
			for i, w := range c.Widths {
				if t >= op.windows(b, w) {
					continue
				}
				lo := i * F
				rs, bs, as := resp[lo:lo+F], bb[lo:lo+F], ab[lo:lo+F]
				for f, v := range rs {
					if v > bs[f] {
						bs[f] = v
						as[f] = int32(t)
					}
				}
			}
		}
	}
	n := 0
	for b := 0; b < B; b++ {
		rows := op.windows(b, minW)
		for t := 0; t < rows; t++ {
			dst := col[n*ld : (n+1)*ld]
			start := (b*Tn + t) * E
			avail := min(maxW, Tn-t) * E
			copy(dst[:avail], x[start:start+avail])
			clear(dst[avail:])
			rowB[n], rowT[n] = int32(b), int32(t)
			n++
			if n == R {
				runBlock(n)
				n = 0
			}
		}
	}
	if n > 0 {
		runBlock(n)
	}

	out := resize(&ws.out, B*nWF)
	on := resize(&ws.on, B*nWF)
	for i := range c.Widths {
		bias, err := values[T](vals[2+2*i])
		if err != nil {
			return nil, fmt.Errorf("%v: %w", op, err)
		}
		for b := 0; b < B; b++ {
			o := out[b*nWF+i*F : b*nWF+(i+1)*F]
			on := on[b*nWF+i*F : b*nWF+(i+1)*F]
			for f, v := range best[b*nWF+i*F : b*nWF+(i+1)*F] {
				o[f] = max(v+bias[f], 0)
				on[f] = o[f] > 0
			}
		}
	}
	return dense(out, B, nWF), nil
}

// cnnBwdOp computes every gradient of the op; inputs x and the output gradient.
type cnnBwdOp struct {
	gradOpBase
	fwd *cnnOp
}

func (op *cnnBwdOp) Do(vals ...G.Value) (G.Value, error) {
	switch vals[0].Dtype() {
	case tensor.Float32:
		return cnnBackward(op, &op.fwd.c.w32, vals)
	case tensor.Float64:
		return cnnBackward(op, &op.fwd.c.w64, vals)
	}
	return nil, unsupported(op, vals[0])
}

func cnnBackward[T float](op *cnnBwdOp, ws *cnnWork[T], vals []G.Value) (G.Value, error) {
	c := op.fwd.c
	B, Tn, E, F := op.fwd.B, op.fwd.T, c.Dim, c.Filters
	nW := len(c.Widths)
	nWF := nW * F
	x, err1 := values[T](vals[0])
	dy, err2 := values[T](vals[1])
	if err := firstErr(err1, err2); err != nil {
		return nil, fmt.Errorf("%v: %w", op, err)
	}
	if len(dy) != B*nWF {
		return nil, fmt.Errorf("nn: %v: output gradient has %d values, want %d", op, len(dy), B*nWF)
	}
	var dx []T
	if op.fwd.needDX {
		dx = resize(&ws.dx, B*Tn*E)
		zero(dx)
	}
	ws.dwf = resize(&ws.dwf, nW)
	ws.dW = resize(&ws.dW, nW)
	ws.db = resize(&ws.db, nW)
	for i, w := range c.Widths {
		zero(resize(&ws.dwf[i], F*w*E))
		zero(resize(&ws.db[i], F))
	}
	// passes reports whether the pooled output j let a gradient through, and the window's
	// start in x.
	passes := func(b, j int) (T, int, bool) {
		g := dy[j]
		if !ws.on[j] || g == 0 {
			return 0, 0, false // ReLU let nothing through
		}
		return g, (b*Tn + int(ws.arg[j])) * E, true
	}
	// Weight and bias gradients, the filters shared among the workers (each filter's
	// gradient is one worker's, summed over the sequences in order).
	parallel(c.dev.Workers, nWF, 16, func(lo, hi int) {
		for q := lo; q < hi; q++ {
			i, f := q/F, q%F
			wE := c.Widths[i] * E
			dwf := ws.dwf[i][f*wE : (f+1)*wE]
			for b := 0; b < B; b++ {
				if g, start, ok := passes(b, b*nWF+q); ok {
					ws.db[i][f] += g
					axpy(c.dev.BLAS, g, x[start:start+wE], dwf)
				}
			}
		}
	})
	// Input gradient, the sequences shared among the workers.
	if dx != nil {
		parallel(c.dev.Workers, B, 2, func(lo, hi int) {
			for b := lo; b < hi; b++ {
				for q := 0; q < nWF; q++ {
					if g, start, ok := passes(b, b*nWF+q); ok {
						i, f := q/F, q%F
						wE := c.Widths[i] * E
						axpy(c.dev.BLAS, g, ws.wf[i][f*wE:(f+1)*wE], dx[start:start+wE])
					}
				}
			}
		})
	}
	// Back to PyTorch's [F, E, w] layout.
	for i, w := range c.Widths {
		wE := w * E
		dwf := ws.dwf[i]
		dW := resize(&ws.dW[i], F*wE)
		for f := 0; f < F; f++ {
			for k := 0; k < w; k++ {
				for e, v := range dwf[f*wE+k*E : f*wE+(k+1)*E] {
					dW[(f*E+e)*w+k] = v
				}
			}
		}
	}
	return token[T](), nil
}

// cnnGradOp reads one gradient of cnnBwdOp: k = 0 the input, 1+2i width i's weight, 2+2i its
// bias (the forward op's input order).
type cnnGradOp struct {
	gradOpBase
	c *TextCNN
	k int
}

// gradGetter returns the getter of gradient k of the op's backward op (see cnnGradOp).
func (op *cnnOp) gradGetter(k int) *cnnGradOp {
	c := op.c
	shape := tensor.Shape{c.Filters} // a bias
	switch {
	case k == 0:
		shape = tensor.Shape{op.B * op.T, c.Dim}
	case k%2 == 1:
		shape = tensor.Shape{c.Filters, c.Dim, c.Widths[(k-1)/2]}
	}
	return &cnnGradOp{newGradOp(fmt.Sprintf("Grad%d%s", k, op.name), shape, 1), c, k}
}

func (op *cnnGradOp) Do(vals ...G.Value) (G.Value, error) {
	s := op.out.Clone()
	switch vals[0].Dtype() {
	case tensor.Float32:
		return dense(cnnGrad(op, &op.c.w32), s...), nil
	case tensor.Float64:
		return dense(cnnGrad(op, &op.c.w64), s...), nil
	}
	return nil, unsupported(op, vals[0])
}

func cnnGrad[T float](op *cnnGradOp, ws *cnnWork[T]) []T {
	switch {
	case op.k == 0:
		return ws.dx
	case op.k%2 == 1:
		return ws.dW[(op.k-1)/2]
	}
	return ws.db[(op.k-2)/2]
}
