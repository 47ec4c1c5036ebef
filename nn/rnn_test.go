package nn

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"math/bits"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/sentibench/sentibench/internal/blas"
	"github.com/sentibench/sentibench/internal/gradcheck"
	"github.com/sentibench/sentibench/internal/safetensors"
)

// testCPU returns a device with two workers, so the tests run the concurrent paths, on the
// BLAS named by $SENTIBENCH_BLAS (default: OpenBLAS when it loads, else gonum's pure Go).
func testCPU(t testing.TB) *CPU {
	t.Helper()
	impl, err := blas.Load(os.Getenv("SENTIBENCH_BLAS"))
	if err != nil {
		t.Fatal(err)
	}
	return NewCPU(impl, 2)
}

// rnnCase is one configuration for the gradient checks.
type rnnCase struct {
	cell      cellKind
	in, H     int
	layers    int
	bi        bool
	dropout   float64
	mode      Mode
	lengths   []int
	T         int
	seq       bool // also put the output sequence into the loss
	inputGrad bool
	// recompute: segments of two rows and a one-byte activation budget, so that the
	// backward pass recomputes every segment (Eval mode recomputes in any case).
	recompute bool
}

func (c rnnCase) String() string {
	s := fmt.Sprintf("%v/in%d_H%d_L%d", c.cell, c.in, c.H, c.layers)
	if c.bi {
		s += "_bi"
	}
	if c.dropout > 0 && c.mode == Train {
		s += fmt.Sprintf("_drop%g", c.dropout)
	}
	if c.seq {
		s += "_seq"
	}
	if !c.inputGrad {
		s += "_noinputgrad"
	}
	if c.recompute {
		s += "_recompute"
	}
	return s + fmt.Sprintf("_T%d_len%v", c.T, strings.ReplaceAll(fmt.Sprint(c.lengths), " ", ","))
}

func (c rnnCase) stack(t testing.TB) *rnnStack {
	t.Helper()
	s, err := newRNNStack(c.cell, testCPU(t), "rnn.", c.in, c.H, c.layers, c.bi, c.dropout, c.inputGrad)
	if err != nil {
		t.Fatal(err)
	}
	if c.recompute {
		s.segRows, s.maxActBytes = 2, 1
	}
	return s
}

// withRecompute returns the cases followed by each case again with recompute set.
func withRecompute(cases []rnnCase) []rnnCase {
	out := append([]rnnCase(nil), cases...)
	for _, c := range cases {
		c.recompute = true
		out = append(out, c)
	}
	return out
}

// rnnLossGraph is a scalar loss on top of a recurrent stack in float64:
// loss = sum(final ⊙ rf) (+ sum(outputs ⊙ rs) for a sequence case).
type rnnLossGraph struct {
	g    *G.ExprGraph
	x    *G.Node
	w    G.Nodes
	loss *G.Node
}

func buildRNNLoss(t testing.TB, s *rnnStack, c rnnCase, x []float64, w [][]float64, rf, rs []float64, seed uint64) *rnnLossGraph {
	t.Helper()
	B := len(c.lengths)
	g := G.NewGraph()
	lg := &rnnLossGraph{g: g}
	lg.x = G.NewMatrix(g, tensor.Float64, G.WithShape(c.T*B, c.in), G.WithName("x"),
		G.WithValue(tensor.New(tensor.WithShape(c.T*B, c.in), tensor.WithBacking(x))))
	for i, p := range s.params {
		opts := []G.NodeConsOpt{G.WithShape(p.Shape...), G.WithName(p.Name),
			G.WithValue(tensor.New(tensor.WithShape(p.Shape...), tensor.WithBacking(w[i])))}
		if len(p.Shape) == 1 {
			lg.w = append(lg.w, G.NewVector(g, tensor.Float64, opts...))
		} else {
			lg.w = append(lg.w, G.NewMatrix(g, tensor.Float64, opts...))
		}
	}
	final, outputs, err := s.forward(lg.x, lg.w, c.lengths, c.T, c.mode, NewRNG(seed), c.seq)
	if err != nil {
		t.Fatal(err)
	}
	W := s.dirs * s.hidden
	rfn := G.NewMatrix(g, tensor.Float64, G.WithShape(B, W), G.WithName("rf"),
		G.WithValue(tensor.New(tensor.WithShape(B, W), tensor.WithBacking(rf))))
	loss := G.Must(G.Sum(G.Must(G.HadamardProd(final, rfn))))
	if c.seq {
		rsn := G.NewMatrix(g, tensor.Float64, G.WithShape(c.T*B, W), G.WithName("rs"),
			G.WithValue(tensor.New(tensor.WithShape(c.T*B, W), tensor.WithBacking(rs))))
		loss = G.Must(G.Add(loss, G.Must(G.Sum(G.Must(G.HadamardProd(outputs, rsn))))))
	}
	lg.loss = loss
	return lg
}

func randSlice64(r *rand.Rand, n int, scale float64) []float64 {
	v := make([]float64, n)
	for i := range v {
		v[i] = (2*r.Float64() - 1) * scale
	}
	return v
}

// checkRNNGradients compares the analytic gradients of the loss (through Gorgonia's Grad, the
// layer's ops and a TapeMachine, as the step runner does it) with central finite differences
// in float64, for every weight and every input element.
func checkRNNGradients(t *testing.T, c rnnCase) {
	s := c.stack(t)
	r := rand.New(rand.NewPCG(7, uint64(len(c.lengths))))
	B, W := len(c.lengths), s.dirs*s.hidden
	x := randSlice64(r, c.T*B*c.in, 1)
	w := make([][]float64, len(s.params))
	for i, p := range s.params {
		w[i] = randSlice64(r, p.Size(), 0.6)
	}
	rf, rs := randSlice64(r, B*W, 1), randSlice64(r, c.T*B*W, 1)
	const seed = 99

	// Analytic gradients.
	lg := buildRNNLoss(t, s, c, x, w, rf, rs, seed)
	wrt := lg.w
	if c.inputGrad {
		wrt = append(G.Nodes{lg.x}, lg.w...)
	}
	if _, err := G.Grad(lg.loss, wrt...); err != nil {
		t.Fatal(err)
	}
	m := G.NewTapeMachine(lg.g, G.BindDualValues(wrt...))
	if err := m.RunAll(); err != nil {
		t.Fatal(err)
	}
	grads := make([][]float64, len(wrt))
	for i, n := range wrt {
		gv, err := n.Grad()
		if err != nil {
			t.Fatalf("%s: %v", n.Name(), err)
		}
		grads[i] = append([]float64(nil), gv.Data().([]float64)...)
	}
	m.Close()

	// Numerical gradients, on a forward-only graph with the same dropout masks.
	fg := buildRNNLoss(t, s, c, x, w, rf, rs, seed)
	fm := G.NewTapeMachine(fg.g)
	defer fm.Close()
	lossAt := func() float64 {
		fm.Reset()
		if err := fm.RunAll(); err != nil {
			t.Fatal(err)
		}
		return fg.loss.Value().Data().(float64)
	}
	vals := w
	names := make([]string, 0, len(wrt))
	if c.inputGrad {
		vals = append([][]float64{x}, w...)
		names = append(names, "x")
	}
	for _, p := range s.params {
		names = append(names, p.Name)
	}
	const eps = 1e-6
	worst := 0.0
	for i, v := range vals {
		for j := range v {
			num := gradcheck.Central(lossAt, v, j, eps)
			got := grads[i][j]
			diff := math.Abs(got - num)
			worst = max(worst, diff/(1e-6+math.Abs(num)))
			if diff > 2e-7+1e-6*math.Abs(num) {
				t.Fatalf("%s[%d]: analytic %.10g, numerical %.10g", names[i], j, got, num)
			}
		}
	}
	n := 0
	for _, v := range vals {
		n += len(v)
	}
	t.Logf("%d tensors, %d values checked; worst relative difference %.2g", len(vals), n, worst)
}

func TestLSTMGradCheck(t *testing.T) {
	for _, c := range withRecompute([]rnnCase{
		{cell: cellLSTM, in: 3, H: 4, layers: 1, lengths: []int{5, 3, 3, 1}, T: 5, inputGrad: true},
		{cell: cellLSTM, in: 3, H: 4, layers: 2, bi: true, lengths: []int{6, 4, 4, 2, 1}, T: 7, inputGrad: true},
		{cell: cellLSTM, in: 3, H: 4, layers: 2, bi: true, lengths: []int{6, 4, 4, 2, 1}, T: 6, seq: true, inputGrad: true},
		{cell: cellLSTM, in: 2, H: 3, layers: 2, lengths: []int{4, 4, 4}, T: 4, seq: true, inputGrad: true},
		{cell: cellLSTM, in: 3, H: 4, layers: 3, bi: true, dropout: 0.4, mode: Train, lengths: []int{5, 4, 2}, T: 5, inputGrad: true},
		{cell: cellLSTM, in: 2, H: 3, layers: 2, bi: true, lengths: []int{3}, T: 4, seq: true, inputGrad: true},
	}) {
		t.Run(c.String(), func(t *testing.T) { checkRNNGradients(t, c) })
	}
}

func TestGRUGradCheck(t *testing.T) {
	for _, c := range withRecompute([]rnnCase{
		{cell: cellGRU, in: 3, H: 4, layers: 1, lengths: []int{5, 3, 3, 1}, T: 5, inputGrad: true},
		{cell: cellGRU, in: 3, H: 4, layers: 2, bi: true, lengths: []int{6, 4, 4, 2, 1}, T: 7, inputGrad: true},
		{cell: cellGRU, in: 3, H: 4, layers: 2, bi: true, lengths: []int{6, 4, 4, 2, 1}, T: 6, seq: true, inputGrad: true},
		{cell: cellGRU, in: 3, H: 4, layers: 2, bi: true, lengths: []int{5, 5, 2}, T: 5},
		{cell: cellGRU, in: 3, H: 4, layers: 3, bi: true, dropout: 0.4, mode: Train, lengths: []int{5, 4, 2}, T: 5, seq: true, inputGrad: true},
		{cell: cellGRU, in: 2, H: 3, layers: 1, lengths: []int{3}, T: 4, seq: true, inputGrad: true},
	}) {
		t.Run(c.String(), func(t *testing.T) { checkRNNGradients(t, c) })
	}
}

// torchVectors reads nn/testdata/rnn_vectors.safetensors (scripts/gen_rnn_vectors.py).
type torchVectors struct {
	f *safetensors.File
}

type torchCase struct {
	Cell          string   `json:"cell"`
	Input         int      `json:"input"`
	Hidden        int      `json:"hidden"`
	Layers        int      `json:"layers"`
	Bidirectional bool     `json:"bidirectional"`
	T             int      `json:"T"`
	Lengths       []int    `json:"lengths"`
	Params        []string `json:"params"`
}

func openTorchVectors(t *testing.T) (*torchVectors, []string) {
	t.Helper()
	f, err := safetensors.Open(filepath.Join("testdata", "rnn_vectors.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	var cases []string
	if err := json.Unmarshal([]byte(f.Metadata["cases"]), &cases); err != nil {
		t.Fatalf("rnn_vectors.safetensors: metadata cases: %v", err)
	}
	return &torchVectors{f}, cases
}

func (v *torchVectors) config(t *testing.T, name string) torchCase {
	t.Helper()
	var c torchCase
	if err := json.Unmarshal([]byte(v.f.Metadata[name]), &c); err != nil {
		t.Fatalf("rnn_vectors.safetensors: metadata %s: %v", name, err)
	}
	return c
}

func (v *torchVectors) f32(t *testing.T, name string) []float32 {
	t.Helper()
	d, err := v.f.Float32(name)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// f64 reads an F64 (or F32) tensor as float64.
func (v *torchVectors) f64(t *testing.T, name string) []float64 {
	t.Helper()
	info, raw, err := v.f.Raw(name)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]float64, info.Elems())
	switch info.DType {
	case safetensors.F64:
		for i := range out {
			out[i] = math.Float64frombits(binary.LittleEndian.Uint64(raw[8*i:]))
		}
	case safetensors.F32:
		for i := range out {
			out[i] = float64(math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:])))
		}
	default:
		t.Fatalf("%s: dtype %s", name, info.DType)
	}
	return out
}

// closeTo fails unless |got-want| <= atol + rtol*|want| element-wise.
func closeTo[F float](t *testing.T, what string, got []F, want []float64, atol, rtol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	worst := 0.0
	for i := range got {
		d := math.Abs(float64(got[i]) - want[i])
		worst = max(worst, d)
		if d > atol+rtol*math.Abs(want[i]) {
			t.Fatalf("%s[%d] = %.9g, PyTorch %.9g (difference %.3g)", what, i, float64(got[i]), want[i], d)
		}
	}
}

// TestRNNMatchesPyTorch runs the layers on PyTorch's weights and inputs and compares the final
// states, the output sequence and every gradient with torch.nn.LSTM/GRU over packed sequences
// (references computed in float64).
//
// The float32 path runs the public API the way the step runner does: parameter nodes bound to
// Param.Value, gorgonia.Grad, a TapeMachine with BindDualValues, node.Grad() copied into
// Param.Grad. Tolerance |got - want| <= 1e-5 + 1e-5*|want|. The float64 path (same kernels)
// must match to 1e-10. The "segments" variants cut the batch into segments of two rows
// (about one step each): in Eval mode no activation is kept, so the backward pass recomputes
// every segment from the states saved at its start.
func TestRNNMatchesPyTorch(t *testing.T) {
	vec, cases := openTorchVectors(t)
	for _, name := range cases {
		c := vec.config(t, name)
		for _, tag := range []string{"A", "B"} {
			t.Run(name+"/loss"+tag, func(t *testing.T) {
				seq := tag == "B"
				t.Run("float32", func(t *testing.T) { torchParity32(t, vec, name, c, seq, true, 0) })
				t.Run("float32-runner", func(t *testing.T) { torchParity32(t, vec, name, c, seq, false, 0) })
				t.Run("float32-segments", func(t *testing.T) { torchParity32(t, vec, name, c, seq, false, 2) })
				t.Run("float64", func(t *testing.T) { torchParity64(t, vec, name, c, seq, 0) })
				t.Run("float64-segments", func(t *testing.T) { torchParity64(t, vec, name, c, seq, 2) })
			})
		}
	}
}

type recurrent interface {
	Params() []*Param
	Forward(x *G.Node, lengths []int, T int, mode Mode, rng *RNG) (final *G.Node, err error)
	ForwardSequence(x *G.Node, lengths []int, T int, mode Mode, rng *RNG) (final, outputs *G.Node, err error)
	OutputDim() int
}

func newTorchLayer(t *testing.T, c torchCase) recurrent {
	t.Helper()
	var l recurrent
	var err error
	if c.Cell == "lstm" {
		l, err = NewLSTM(testCPU(t), "rnn.", c.Input, c.Hidden, c.Layers, c.Bidirectional, 0.5)
	} else {
		l, err = NewGRU(testCPU(t), "rnn.", c.Input, c.Hidden, c.Layers, c.Bidirectional, 0.5)
	}
	if err != nil {
		t.Fatal(err)
	}
	ps := l.Params()
	if len(ps) != len(c.Params) {
		t.Fatalf("%d parameters, PyTorch has %d", len(ps), len(c.Params))
	}
	for i, p := range ps {
		if p.Name != c.Params[i] {
			t.Fatalf("parameter %d is %s, PyTorch's is %s", i, p.Name, c.Params[i])
		}
	}
	return l
}

// torchParity32 runs the float32 check with one of the two ways to read gradients out of the
// graph: dual values bound to the parameter nodes (node.Grad()), or, as the step runner does,
// the gradient nodes gorgonia.Grad returns, copied into Param.Grad unless they already are it.
func torchParity32(t *testing.T, vec *torchVectors, name string, c torchCase, seq, dual bool, segRows int) {
	l := newTorchLayer(t, c)
	if segRows > 0 {
		switch l := l.(type) {
		case *LSTM:
			l.s.segRows = segRows
		case *GRU:
			l.s.segRows = segRows
		}
	}
	for _, p := range l.Params() {
		want, err := vec.f.Float32(name+"/"+p.Name, p.Shape...)
		if err != nil {
			t.Fatal(err)
		}
		copy(p.Data(), want)
	}
	B, W := len(c.Lengths), l.OutputDim()
	g := G.NewGraph()
	x := G.NewMatrix(g, tensor.Float32, G.WithShape(c.T*B, c.Input), G.WithName("x"),
		G.WithValue(tensor.New(tensor.WithShape(c.T*B, c.Input), tensor.WithBacking(vec.f32(t, name+"/x")))))
	// Eval mode: the layer's dropout (0.5) must not act.
	var final, outputs *G.Node
	var err error
	if seq {
		final, outputs, err = l.ForwardSequence(x, c.Lengths, c.T, Eval, nil)
	} else {
		final, err = l.Forward(x, c.Lengths, c.T, Eval, nil)
	}
	if err != nil {
		t.Fatal(err)
	}
	rf := G.NewMatrix(g, tensor.Float32, G.WithShape(B, W), G.WithName("rf"),
		G.WithValue(tensor.New(tensor.WithShape(B, W), tensor.WithBacking(vec.f32(t, name+"/rf")))))
	loss := G.Must(G.Sum(G.Must(G.HadamardProd(final, rf))))
	if seq {
		rs := G.NewMatrix(g, tensor.Float32, G.WithShape(c.T*B, W), G.WithName("rs"),
			G.WithValue(tensor.New(tensor.WithShape(c.T*B, W), tensor.WithBacking(vec.f32(t, name+"/rs")))))
		loss = G.Must(G.Add(loss, G.Must(G.Sum(G.Must(G.HadamardProd(outputs, rs))))))
	}
	// The step runner's protocol.
	var pnodes G.Nodes
	for _, p := range l.Params() {
		n, err := paramNode(g, p)
		if err != nil {
			t.Fatal(err)
		}
		pnodes = append(pnodes, n)
	}
	wrt := append(G.Nodes{x}, pnodes...)
	gnodes, err := G.Grad(loss, wrt...)
	if err != nil {
		t.Fatal(err)
	}
	var m G.VM
	if dual {
		m = G.NewTapeMachine(g, G.BindDualValues(wrt...))
	} else {
		m = G.NewTapeMachine(g)
	}
	defer m.Close()
	if err := m.RunAll(); err != nil {
		t.Fatal(err)
	}
	for i, p := range l.Params() {
		var gv G.Value
		if dual {
			if gv, err = pnodes[i].Grad(); err != nil {
				t.Fatal(err)
			}
		} else {
			gv = gnodes[i+1].Value()
			if d := gv.Data().([]float32); &d[0] != &p.Grad[0] {
				t.Errorf("%s: the gradient node's value is not Param.Grad itself", p.Name)
			}
		}
		copy(p.Grad, gv.Data().([]float32))
	}
	var dx G.Value
	if dual {
		if dx, err = x.Grad(); err != nil {
			t.Fatal(err)
		}
	} else {
		dx = gnodes[0].Value()
	}
	const atol, rtol = 1e-5, 1e-5
	closeTo(t, "final", final.Value().Data().([]float32), vec.f64(t, name+"/final"), atol, rtol)
	if seq {
		closeTo(t, "out", outputs.Value().Data().([]float32), vec.f64(t, name+"/out"), atol, rtol)
	}
	tag := "A"
	if seq {
		tag = "B"
	}
	closeTo(t, "grad x", dx.Data().([]float32), vec.f64(t, name+"/grad"+tag+"/x"), atol, rtol)
	for _, p := range l.Params() {
		closeTo(t, "grad "+p.Name, p.Grad, vec.f64(t, name+"/grad"+tag+"/"+p.Name), atol, rtol)
	}
}

func torchParity64(t *testing.T, vec *torchVectors, name string, c torchCase, seq bool, segRows int) {
	cell := cellLSTM
	if c.Cell == "gru" {
		cell = cellGRU
	}
	rc := rnnCase{cell: cell, in: c.Input, H: c.Hidden, layers: c.Layers, bi: c.Bidirectional,
		dropout: 0.5, mode: Eval, lengths: c.Lengths, T: c.T, seq: seq, inputGrad: true}
	s := rc.stack(t)
	if segRows > 0 {
		s.segRows = segRows
	}
	w := make([][]float64, len(s.params))
	for i, p := range s.params {
		w[i] = vec.f64(t, name+"/"+p.Name)
	}
	lg := buildRNNLoss(t, s, rc, vec.f64(t, name+"/x"), w, vec.f64(t, name+"/rf"), vec.f64(t, name+"/rs"), 1)
	wrt := append(G.Nodes{lg.x}, lg.w...)
	if _, err := G.Grad(lg.loss, wrt...); err != nil {
		t.Fatal(err)
	}
	m := G.NewTapeMachine(lg.g, G.BindDualValues(wrt...))
	defer m.Close()
	if err := m.RunAll(); err != nil {
		t.Fatal(err)
	}
	tag := "A"
	if seq {
		tag = "B"
	}
	names := append([]string{"x"}, c.Params...)
	for i, n := range wrt {
		gv, err := n.Grad()
		if err != nil {
			t.Fatal(err)
		}
		closeTo(t, "grad "+names[i], gv.Data().([]float64), vec.f64(t, name+"/grad"+tag+"/"+names[i]), 1e-10, 1e-10)
	}
}

// rnnFLOPs counts the matrix-product FLOPs of one pass over tokens real tokens, as the CPU
// spike did: per layer and direction 2*G*H*(in+H) per token forward; training adds the
// recurrent and input gradients and the two weight gradients (3x forward), less the first
// layer's input gradient when the layer computes none.
func rnnFLOPs(s *rnnStack, tokens int, train bool) float64 {
	gh := s.cell.gates() * s.hidden
	f := 0.0
	for l := 0; l < s.layers; l++ {
		in := float64(s.layerIn(l))
		fwd := 2 * float64(gh) * (in + float64(s.hidden))
		if !train {
			f += fwd
			continue
		}
		f += 3 * fwd
		if l == 0 && !s.inputGrad {
			f -= 2 * float64(gh) * in
		}
	}
	return f * float64(s.dirs) * float64(tokens)
}

// cpuSeconds is the process's user + system CPU time so far.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// benchRNN times the layer's kernels directly (the work inside its Gorgonia ops, without the
// graph around it): Forward, plus Backward when train, on a B×T batch with hidden size H. With
// varied lengths the batch is uniform in [T/2, T] (one at T), and the FLOP rate counts only
// the real tokens. $SENTIBENCH_BLAS chooses the BLAS (as --blas does; default auto).
func benchRNN(b *testing.B, cell cellKind, in, H, layers, B, T int, train, varied, inputGrad bool, threads, workers int) {
	impl, err := blas.Load(os.Getenv("SENTIBENCH_BLAS"))
	if err != nil {
		b.Fatal(err)
	}
	defer impl.SetThreads(impl.Threads())
	impl.SetThreads(threads)
	dev := NewCPU(impl, workers)
	s, err := newRNNStack(cell, dev, "rnn.", in, H, layers, true, 0.5, inputGrad)
	if err != nil {
		b.Fatal(err)
	}
	s.initParams(NewRNG(1))
	r := rand.New(rand.NewPCG(1, 2))
	lengths := make([]int, B)
	for i := range lengths {
		lengths[i] = T
		if varied && i > 0 {
			lengths[i] = T/2 + r.IntN(T/2+1)
		}
	}
	slices.SortFunc(lengths, func(a, b int) int { return b - a })
	tokens := 0
	for _, l := range lengths {
		tokens += l
	}
	x := make([]float32, T*B*in)
	for i := range x {
		x[i] = r.Float32()*2 - 1
	}
	xv := tensor.New(tensor.WithShape(T*B, in), tensor.WithBacking(x))
	var w []G.Value
	for _, p := range s.params {
		w = append(w, p.Value)
	}
	mode := Eval
	if train {
		mode = Train
	}
	W := s.dirs * H
	dy := tensor.New(tensor.WithShape(B, W), tensor.WithBacking(make([]float32, B*W)))
	for i := range dy.Data().([]float32) {
		dy.Data().([]float32)[i] = r.Float32() - 0.5
	}
	k := newCPURNN[float32](s)
	run := &s.run
	rng := NewRNG(3)
	step := func() {
		if err := run.setBatch(lengths, T); err != nil {
			b.Fatal(err)
		}
		run.train, run.inputGrad = train, inputGrad
		run.drawMasks(s, rng)
		if _, err := k.Forward(run, xv, w); err != nil {
			b.Fatal(err)
		}
		if train {
			if _, err := k.Backward(run, dy, xv, w); err != nil {
				b.Fatal(err)
			}
		}
	}
	_ = mode
	step() // grow the buffers
	b.ReportAllocs()
	cpu0 := cpuSeconds()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		step()
	}
	b.StopTimer()
	sec := b.Elapsed().Seconds() / float64(b.N)
	b.ReportMetric(rnnFLOPs(s, tokens, train)/sec/1e9, "GFLOP/s")
	b.ReportMetric(float64(tokens)/sec, "tokens/s")
	// CPU time of the process per wall second: 2 means both cores busy all the time.
	cpu := cpuSeconds() - cpu0
	b.ReportMetric(cpu/b.Elapsed().Seconds(), "cores")
	b.ReportMetric(cpu/float64(b.N), "cpu-s/op")
}

// smallLSTM returns a 2-layer bidirectional LSTM with PyTorch's initialisation, for the tests
// of the layer's behaviour.
func smallLSTM(t *testing.T, dropout float64) *LSTM {
	t.Helper()
	l, err := NewLSTM(testCPU(t), "rnn.", 3, 5, 2, true, dropout)
	if err != nil {
		t.Fatal(err)
	}
	l.Init(NewRNG(5))
	return l
}

// forwardValue runs Forward on a fresh graph and returns the final states.
func forwardValue(t *testing.T, l *LSTM, x []float32, lengths []int, T int, mode Mode, rng *RNG) []float32 {
	t.Helper()
	g := G.NewGraph()
	xn := G.NewMatrix(g, tensor.Float32, G.WithShape(T*len(lengths), 3), G.WithName("x"),
		G.WithValue(tensor.New(tensor.WithShape(T*len(lengths), 3), tensor.WithBacking(x))))
	final, err := l.Forward(xn, lengths, T, mode, rng)
	if err != nil {
		t.Fatal(err)
	}
	m := G.NewTapeMachine(g)
	defer m.Close()
	if err := m.RunAll(); err != nil {
		t.Fatal(err)
	}
	return append([]float32(nil), final.Value().Data().([]float32)...)
}

func TestRNNParamsAndInit(t *testing.T) {
	l, err := NewGRU(testCPU(t), "enc.", 7, 4, 2, true, 0)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"enc.weight_ih_l0 [12 7]", "enc.weight_hh_l0 [12 4]", "enc.bias_ih_l0 [12]", "enc.bias_hh_l0 [12]",
		"enc.weight_ih_l0_reverse [12 7]", "enc.weight_hh_l0_reverse [12 4]", "enc.bias_ih_l0_reverse [12]", "enc.bias_hh_l0_reverse [12]",
		"enc.weight_ih_l1 [12 8]", "enc.weight_hh_l1 [12 4]", "enc.bias_ih_l1 [12]", "enc.bias_hh_l1 [12]",
		"enc.weight_ih_l1_reverse [12 8]", "enc.weight_hh_l1_reverse [12 4]", "enc.bias_ih_l1_reverse [12]", "enc.bias_hh_l1_reverse [12]",
	}
	ps := l.Params()
	if len(ps) != len(want) {
		t.Fatalf("%d params, want %d", len(ps), len(want))
	}
	for i, p := range ps {
		if p.String() != want[i] {
			t.Errorf("param %d = %s, want %s", i, p, want[i])
		}
	}
	l.Init(NewRNG(1))
	bound := float32(1 / math.Sqrt(4))
	var sum, n float64
	for _, p := range ps {
		for _, v := range p.Data() {
			if v < -bound || v >= bound {
				t.Fatalf("%s: %v outside U(-1/sqrt(H), 1/sqrt(H))", p.Name, v)
			}
			sum += float64(v)
			n++
		}
	}
	if math.Abs(sum/n) > 0.05 {
		t.Errorf("mean of the initial weights %.3f, want about 0", sum/n)
	}
	l2, _ := NewGRU(testCPU(t), "enc.", 7, 4, 2, true, 0)
	l2.Init(NewRNG(1))
	if fmt.Sprint(l2.Params()[5].Data()) != fmt.Sprint(ps[5].Data()) {
		t.Error("the same seed gave different weights")
	}
}

func TestRNNBadInput(t *testing.T) {
	dev := testCPU(t)
	for _, c := range []struct {
		name string
		make func() error
	}{
		{"hidden 0", func() error { _, err := NewLSTM(dev, "r.", 3, 0, 1, false, 0); return err }},
		{"dropout 1", func() error { _, err := NewLSTM(dev, "r.", 3, 4, 2, false, 1); return err }},
		{"dropout NaN", func() error { _, err := NewGRU(dev, "r.", 3, 4, 2, false, math.NaN()); return err }},
		{"no device", func() error { _, err := NewGRU(nil, "r.", 3, 4, 2, false, 0); return err }},
	} {
		if err := c.make(); err == nil {
			t.Errorf("%s: no error", c.name)
		}
	}
	l := smallLSTM(t, 0.5)
	x := make([]float32, 4*2*3)
	for _, c := range []struct {
		name    string
		lengths []int
		T       int
		rows    int
		mode    Mode
		rng     *RNG
		want    string
	}{
		{"unsorted", []int{2, 4}, 4, 8, Eval, nil, "not sorted"},
		{"too long", []int{5, 4}, 4, 8, Eval, nil, "want 1..T"},
		{"zero length", []int{4, 0}, 4, 8, Eval, nil, "want 1..T"},
		{"empty batch", nil, 4, 8, Eval, nil, "empty batch"},
		{"wrong rows", []int{4, 3}, 4, 6, Eval, nil, "input shape"},
		{"no rng", []int{4, 3}, 4, 8, Train, nil, "random generator"},
	} {
		g := G.NewGraph()
		xn := G.NewMatrix(g, tensor.Float32, G.WithShape(c.rows, 3), G.WithName("x"),
			G.WithValue(tensor.New(tensor.WithShape(c.rows, 3), tensor.WithBacking(x[:c.rows*3]))))
		_, err := l.Forward(xn, c.lengths, c.T, c.mode, c.rng)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one mentioning %q", c.name, err, c.want)
		}
	}
	if _, err := l.Forward(nil, []int{1}, 1, Eval, nil); err == nil {
		t.Error("nil input: no error")
	}
}

// TestRNNStaleGraph checks that a graph built before a newer Forward of the same layer
// refuses to run instead of reading the newer batch's buffers.
func TestRNNStaleGraph(t *testing.T) {
	l := smallLSTM(t, 0)
	build := func() *G.ExprGraph {
		g := G.NewGraph()
		xn := G.NewMatrix(g, tensor.Float32, G.WithShape(4, 3), G.WithName("x"),
			G.WithValue(tensor.New(tensor.WithShape(4, 3), tensor.WithBacking(make([]float32, 12)))))
		if _, err := l.Forward(xn, []int{2, 1}, 2, Eval, nil); err != nil {
			t.Fatal(err)
		}
		return g
	}
	old := build()
	newer := build()
	m := G.NewTapeMachine(old)
	defer m.Close()
	if err := m.RunAll(); err == nil || !strings.Contains(err.Error(), "stale") {
		t.Fatalf("running the older graph: error %v, want a stale-graph error", err)
	}
	m2 := G.NewTapeMachine(newer)
	defer m2.Close()
	if err := m2.RunAll(); err != nil {
		t.Fatalf("running the newest graph: %v", err)
	}
}

// TestRNNDropout checks the dropout between layers: none in Eval mode, masks drawn from the
// generator in Train mode (the same seed, the same result), and about a fraction p of the
// second layer's inputs zeroed, the others scaled by 1/(1-p).
func TestRNNDropout(t *testing.T) {
	const T, p = 6, 0.3
	lengths := []int{6, 5, 3, 3}
	r := rand.New(rand.NewPCG(3, 4))
	x := make([]float32, T*len(lengths)*3)
	for i := range x {
		x[i] = r.Float32()*2 - 1
	}
	plain := smallLSTM(t, 0)
	dropped := smallLSTM(t, p)
	ref := forwardValue(t, plain, x, lengths, T, Eval, nil)
	if got := forwardValue(t, dropped, x, lengths, T, Eval, NewRNG(1)); fmt.Sprint(got) != fmt.Sprint(ref) {
		t.Fatal("dropout changed the Eval output")
	}
	if got := forwardValue(t, plain, x, lengths, T, Train, NewRNG(1)); fmt.Sprint(got) != fmt.Sprint(ref) {
		t.Fatal("a layer with dropout 0 changed its Train output")
	}
	a := forwardValue(t, dropped, x, lengths, T, Train, NewRNG(1))
	b := forwardValue(t, dropped, x, lengths, T, Train, NewRNG(1))
	c := forwardValue(t, dropped, x, lengths, T, Train, NewRNG(2))
	if fmt.Sprint(a) != fmt.Sprint(b) {
		t.Fatal("the same seed gave different Train outputs")
	}
	if fmt.Sprint(a) == fmt.Sprint(c) || fmt.Sprint(a) == fmt.Sprint(ref) {
		t.Fatal("the dropout masks do not act")
	}
	// The second layer's input against the first layer's output (one page per segment), in
	// the float32 kernels, as the forward pass builds it for each segment.
	k := dropped.s.k32.(*cpuRNN[float32])
	zeros := 0
	for j := 0; j < k.plan.S; j++ {
		sg := &k.dir[0].seg
		k.setSegment(sg, &dropped.s.run, 1, 0, j, nil)
		in, out := sg.x, k.out[0][j][:len(sg.x)]
		for i := range in {
			switch {
			case in[i] == 0 && out[i] != 0:
				zeros++
			case math.Abs(float64(in[i])-float64(out[i])/(1-p)) > 1e-6:
				t.Fatalf("kept input %d = %v, want %v/(1-p)", i, in[i], out[i])
			}
		}
	}
	if zeros == 0 {
		t.Fatal("no second-layer input was dropped")
	}
	// The masks' statistics, on a large batch.
	s := dropped.s
	run := &rnnRun{train: true}
	if err := run.setBatch([]int{500, 400, 300, 200}, 500); err != nil {
		t.Fatal(err)
	}
	run.drawMasks(s, NewRNG(9))
	kept := 0
	for _, v := range run.keep[1] {
		kept += bits.OnesCount64(v)
	}
	n := 1400 * 2 * s.hidden
	frac := 1 - float64(kept)/float64(n)
	t.Logf("dropped %.4f of %d inputs, p = %v", frac, n, p)
	if len(run.keep[1]) != (n+63)/64 || math.Abs(frac-p) > 0.01 {
		t.Errorf("%d mask words, dropped fraction %.4f, want %d and about %v", len(run.keep[1]), frac, (n+63)/64, p)
	}
}

// TestRNNSteadyStateAllocations checks that, once its buffers have grown, a training step of
// the kernels allocates almost nothing (a few small headers, the goroutines of the two
// directions), whatever the batch's shape, as long as it is no larger than one seen before.
func TestRNNSteadyStateAllocations(t *testing.T) {
	for _, cell := range []cellKind{cellLSTM, cellGRU} {
		s, err := newRNNStack(cell, testCPU(t), "rnn.", 16, 32, 2, true, 0.3, true)
		if err != nil {
			t.Fatal(err)
		}
		s.initParams(NewRNG(1))
		var w []G.Value
		for _, p := range s.params {
			w = append(w, p.Value)
		}
		k := newCPURNN[float32](s)
		rng := NewRNG(2)
		step := func(lengths []int, T int) {
			B, W := len(lengths), 2*s.hidden
			x := tensor.New(tensor.WithShape(T*B, s.in), tensor.WithBacking(make([]float32, T*B*s.in)))
			dy := tensor.New(tensor.WithShape(B, W), tensor.WithBacking(make([]float32, B*W)))
			run := &s.run
			if err := run.setBatch(lengths, T); err != nil {
				t.Fatal(err)
			}
			run.train, run.inputGrad = true, true
			run.drawMasks(s, rng)
			if _, err := k.Forward(run, x, w); err != nil {
				t.Fatal(err)
			}
			if _, err := k.Backward(run, dy, x, w); err != nil {
				t.Fatal(err)
			}
		}
		step([]int{40, 40, 40, 40, 40, 40, 40, 40}, 40) // the largest batch: the buffers grow
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		step([]int{30, 25, 25, 20, 11, 3}, 31)
		step([]int{40, 38, 2}, 40)
		runtime.ReadMemStats(&after)
		// Two steps; the inputs made by step itself take about 40*8*16*4 + 8*64*4 bytes.
		got := after.TotalAlloc - before.TotalAlloc
		t.Logf("%v: two steady-state steps allocated %d bytes", cell, got)
		if got > 64<<10 {
			t.Errorf("%v: two steady-state steps allocated %d bytes", cell, got)
		}
	}
}

// TestRNNThreadingConsistent runs the same training step with one worker, and with two
// workers over a single- and a multi-threaded BLAS (directions concurrent or not, products
// split by rows or not), and checks that outputs and gradients agree.
func TestRNNThreadingConsistent(t *testing.T) {
	impl, err := blas.Load(os.Getenv("SENTIBENCH_BLAS"))
	if err != nil {
		t.Fatal(err)
	}
	defer impl.SetThreads(impl.Threads())
	lengths := []int{30, 28, 28, 20, 17, 9, 9, 2}
	const T, in, H = 31, 20, 40
	for _, cell := range []cellKind{cellLSTM, cellGRU} {
		for _, bi := range []bool{false, true} {
			var ref [][]float32
			for _, cfg := range []struct{ workers, threads int }{{1, 1}, {2, 1}, {2, 2}} {
				impl.SetThreads(cfg.threads)
				threads := impl.Threads() // gonum has always 1
				s, err := newRNNStack(cell, NewCPU(impl, cfg.workers), "rnn.", in, H, 2, bi, 0.3, true)
				if err != nil {
					t.Fatal(err)
				}
				s.initParams(NewRNG(1))
				var w []G.Value
				for _, p := range s.params {
					w = append(w, p.Value)
				}
				r := rand.New(rand.NewPCG(5, 6))
				B, W := len(lengths), s.dirs*H
				xs := make([]float32, T*B*in)
				for i := range xs {
					xs[i] = r.Float32()*2 - 1
				}
				dys := make([]float32, B*W)
				for i := range dys {
					dys[i] = r.Float32() - 0.5
				}
				x := tensor.New(tensor.WithShape(T*B, in), tensor.WithBacking(xs))
				dy := tensor.New(tensor.WithShape(B, W), tensor.WithBacking(dys))
				run := &s.run
				if err := run.setBatch(lengths, T); err != nil {
					t.Fatal(err)
				}
				run.train, run.inputGrad = true, true
				run.drawMasks(s, NewRNG(2))
				k := newCPURNN[float32](s)
				out, err := k.Forward(run, x, w)
				if err != nil {
					t.Fatal(err)
				}
				got := [][]float32{append([]float32(nil), out.Data().([]float32)...)}
				dx, err := k.Backward(run, dy, x, w)
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, dx.Data().([]float32))
				for i := range s.params {
					got = append(got, k.Grad(i).Data().([]float32))
				}
				if impl.Threads() != threads {
					t.Fatalf("the op left the BLAS at %d threads, want %d", impl.Threads(), threads)
				}
				if ref == nil {
					ref = got
					continue
				}
				for i := range got {
					for j := range got[i] {
						if d := math.Abs(float64(got[i][j] - ref[i][j])); d > 1e-5+1e-5*math.Abs(float64(ref[i][j])) {
							t.Fatalf("%v bi=%v workers=%d threads=%d: result %d[%d] = %v, one worker: %v", cell, bi, cfg.workers, cfg.threads, i, j, got[i][j], ref[i][j])
						}
					}
				}
			}
		}
	}
}

// TestRNNBufferReuse checks that the kept buffers carry nothing from one batch to the next: a
// layer that first ran a larger batch gives, on a smaller one, exactly the outputs and
// gradients of a fresh layer.
func TestRNNBufferReuse(t *testing.T) {
	type batch struct {
		lengths []int
		T       int
	}
	big, small := batch{[]int{9, 9, 8, 6, 6, 5, 2}, 10}, batch{[]int{7, 4, 4, 1}, 8}
	for _, cell := range []cellKind{cellLSTM, cellGRU} {
		for _, seq := range []bool{false, true} {
			step := func(s *rnnStack, k *cpuRNN[float32], bt batch) [][]float32 {
				r := rand.New(rand.NewPCG(uint64(len(bt.lengths)), 1))
				B, W := len(bt.lengths), s.dirs*s.hidden
				xs := make([]float32, bt.T*B*s.in)
				for i := range xs {
					xs[i] = r.Float32()*2 - 1
				}
				rows := B
				if seq {
					rows = bt.T * B
				}
				dys := make([]float32, rows*W)
				for i := range dys {
					dys[i] = r.Float32() - 0.5
				}
				var w []G.Value
				for _, p := range s.params {
					w = append(w, p.Value)
				}
				run := &s.run
				if err := run.setBatch(bt.lengths, bt.T); err != nil {
					t.Fatal(err)
				}
				run.train, run.inputGrad, run.seq = true, true, seq
				run.drawMasks(s, NewRNG(uint64(bt.T)))
				x := tensor.New(tensor.WithShape(bt.T*B, s.in), tensor.WithBacking(xs))
				out, err := k.Forward(run, x, w)
				if err != nil {
					t.Fatal(err)
				}
				res := [][]float32{append([]float32(nil), out.Data().([]float32)...)}
				dx, err := k.Backward(run, tensor.New(tensor.WithShape(rows, W), tensor.WithBacking(dys)), x, w)
				if err != nil {
					t.Fatal(err)
				}
				res = append(res, append([]float32(nil), dx.Data().([]float32)...))
				for i := range s.params {
					res = append(res, append([]float32(nil), k.Grad(i).Data().([]float32)...))
				}
				return res
			}
			mk := func() (*rnnStack, *cpuRNN[float32]) {
				s, err := newRNNStack(cell, testCPU(t), "rnn.", 3, 5, 2, true, 0.4, true)
				if err != nil {
					t.Fatal(err)
				}
				s.initParams(NewRNG(1))
				return s, newCPURNN[float32](s)
			}
			s1, k1 := mk()
			step(s1, k1, big)
			got := step(s1, k1, small)
			s2, k2 := mk()
			want := step(s2, k2, small)
			for i := range want {
				if fmt.Sprint(got[i]) != fmt.Sprint(want[i]) {
					t.Fatalf("%v seq=%v: result %d after a larger batch differs from a fresh layer's", cell, seq, i)
				}
			}
		}
	}
}

// footprint returns the bytes held by the kernels' buffers: the kept activations alone (a
// part of the arena), and everything.
func (k *cpuRNN[F]) footprint() (kept, total int64) {
	size := int64(floatBytes[F]())
	for d := range k.kept {
		for _, l := range k.kept[d] {
			for _, b := range l {
				kept += int64(len(b)) * size
			}
		}
	}
	n := int64(cap(k.arena))
	for d := range k.dir {
		dr := &k.dir[d]
		for _, b := range [][]F{dr.bias, dr.whhT, dr.step, dr.dh, dr.dc} {
			n += int64(cap(b))
		}
	}
	for _, b := range [][]F{k.dx, k.seqOut, k.final, k.ones} {
		n += int64(cap(b))
	}
	return kept, n * size
}

// fixedBytes returns the bytes of the plan's layout with no activation kept and no scratch for
// them: what a training batch takes whatever the budget.
func (k *cpuRNN[F]) fixedBytes(r *rnnRun) int64 {
	p := k.plan
	keep := resizeKeep(nil, len(p.keep), p.S)
	k.plan.keep, k.plan.scratch, k.plan.grad = keep, false, true
	n := int64(k.layout(r, nil)) * int64(floatBytes[F]())
	k.plan = p
	return n
}

// rnnStepResult runs one training step of the float32 kernels of s on a random batch (the same
// for the same lengths, T and seed) and returns copies of the output, the input gradient and
// every parameter gradient.
func rnnStepResult(t *testing.T, s *rnnStack, k *cpuRNN[float32], lengths []int, T int, seq bool, seed uint64) [][]float32 {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 1))
	B, W := len(lengths), s.dirs*s.hidden
	xs := make([]float32, T*B*s.in)
	for i := range xs {
		xs[i] = r.Float32()*2 - 1
	}
	rows := B
	if seq {
		rows = T * B
	}
	dys := make([]float32, rows*W)
	for i := range dys {
		dys[i] = r.Float32() - 0.5
	}
	var w []G.Value
	for _, p := range s.params {
		w = append(w, p.Value)
	}
	run := &s.run
	if err := run.setBatch(lengths, T); err != nil {
		t.Fatal(err)
	}
	run.train, run.inputGrad, run.seq = true, s.inputGrad, seq
	run.drawMasks(s, NewRNG(seed))
	x := tensor.New(tensor.WithShape(T*B, s.in), tensor.WithBacking(xs))
	out, err := k.Forward(run, x, w)
	if err != nil {
		t.Fatal(err)
	}
	res := [][]float32{append([]float32(nil), out.Data().([]float32)...)}
	dx, err := k.Backward(run, tensor.New(tensor.WithShape(rows, W), tensor.WithBacking(dys)), x, w)
	if err != nil {
		t.Fatal(err)
	}
	if dx != nil {
		res = append(res, append([]float32(nil), dx.Data().([]float32)...))
	}
	for i := range s.params {
		res = append(res, append([]float32(nil), k.Grad(i).Data().([]float32)...))
	}
	return res
}

// sameBits says whether a and b hold the same float32 bit patterns.
func sameBits(a, b [][]float32) (int, int, bool) {
	for i := range a {
		for j := range a[i] {
			if math.Float32bits(a[i][j]) != math.Float32bits(b[i][j]) {
				return i, j, false
			}
		}
	}
	return 0, 0, true
}

// TestRNNRecomputeBitIdentical runs the same training batches with every segment's activations
// kept (no budget), with none kept (a 1-byte budget: every segment recomputed in the backward
// pass) and with about half kept, and checks that outputs, input gradients and parameter
// gradients are identical bit for bit: LSTM and GRU, one or two directions, 1 to 3 layers,
// uneven lengths (and steps past the longest), dropout between layers with a fixed mask,
// final states or output sequences, on two workers (directions concurrent) and on one (in
// turn), with segments of one step and of a few.
func TestRNNRecomputeBitIdentical(t *testing.T) {
	impl, err := blas.Load(os.Getenv("SENTIBENCH_BLAS"))
	if err != nil {
		t.Fatal(err)
	}
	lengths := []int{11, 11, 9, 8, 8, 5, 2, 1}
	const T = 12
	for _, cell := range []cellKind{cellLSTM, cellGRU} {
		for _, c := range []struct {
			layers         int
			bi, seq, input bool
			dropout        float64
		}{
			{1, false, false, true, 0},
			{1, true, true, true, 0},
			{2, true, false, true, 0.4},
			{2, false, true, false, 0.4},
			{3, true, true, true, 0.3},
			{3, true, false, false, 0},
		} {
			for _, workers := range []int{1, 2} {
				for _, segRows := range []int{1, 9, 30} {
					name := fmt.Sprintf("%v/L%d_bi%v_seq%v_input%v_drop%g/workers%d/seg%d", cell, c.layers, c.bi, c.seq, c.input, c.dropout, workers, segRows)
					s, err := newRNNStack(cell, NewCPU(impl, workers), "rnn.", 5, 6, c.layers, c.bi, c.dropout, c.input)
					if err != nil {
						t.Fatal(err)
					}
					s.initParams(NewRNG(1))
					s.segRows = segRows
					k := newCPURNN[float32](s)
					s.maxActBytes = 0
					ref := rnnStepResult(t, s, k, lengths, T, c.seq, 3)
					all := k.plan.kept
					if all != c.layers*k.plan.S {
						t.Fatalf("%s: no budget kept %d of %d segments", name, all, c.layers*k.plan.S)
					}
					budgets := []int64{1, 0}
					if c.layers*k.plan.S >= 4 { // (with fewer, a recomputed segment's scratch leaves room for all)
						// The rest of the layout, the scratch and about half the activations.
						rest := k.fixedBytes(&s.run)
						budgets[1] = rest + int64(s.dirs*k.actWidth()*4)*int64(k.plan.maxRows+s.run.N*c.layers/2)
					}
					for _, budget := range budgets {
						if budget == 0 {
							continue
						}
						s.maxActBytes = budget
						got := rnnStepResult(t, s, k, lengths, T, c.seq, 3)
						if budget == 1 && k.plan.kept != 0 || budget > 1 && (k.plan.kept == 0 || k.plan.kept == all) {
							t.Fatalf("%s: budget %d kept %d of %d segments", name, budget, k.plan.kept, all)
						}
						if i, j, ok := sameBits(got, ref); !ok {
							t.Fatalf("%s: budget %d (%d of %d segments kept): result %d[%d] = %v, with every segment kept %v",
								name, budget, k.plan.kept, all, i, j, got[i][j], ref[i][j])
						}
					}
				}
			}
		}
	}
}

// TestRNNActivationMemory checks what the kernels keep for a long batch: in Eval mode no gate
// activations at all, only the layer outputs that feed the next layer and a bounded scratch;
// in training, kept activations within the budget, plus the layer outputs and their
// gradients.
func TestRNNActivationMemory(t *testing.T) {
	const B, T, in, H, L = 16, 1500, 4, 8, 2
	lengths := make([]int, B)
	for b := range lengths {
		lengths[b] = T - 50*b
	}
	N := 0
	for _, n := range lengths {
		N += n
	}
	for _, cell := range []cellKind{cellLSTM, cellGRU} {
		s, err := newRNNStack(cell, testCPU(t), "rnn.", in, H, L, true, 0.3, true)
		if err != nil {
			t.Fatal(err)
		}
		s.initParams(NewRNG(1))
		s.segRows = 256
		W := s.dirs * H
		var w []G.Value
		for _, p := range s.params {
			w = append(w, p.Value)
		}
		x := tensor.New(tensor.WithShape(T*B, in), tensor.WithBacking(make([]float32, T*B*in)))

		// Eval: the forward pass alone.
		k := newCPURNN[float32](s)
		run := &s.run
		if err := run.setBatch(lengths, T); err != nil {
			t.Fatal(err)
		}
		run.train = false
		run.drawMasks(s, nil)
		if _, err := k.Forward(run, x, w); err != nil {
			t.Fatal(err)
		}
		kept, total := k.footprint()
		t.Logf("%v eval: N = %d rows in %d segments: %d bytes (%.1f a row), %d of activations", cell, N, k.plan.S, total, float64(total)/float64(N), kept)
		// Layer 0's output (W floats a row) and the segments' entering states, whose share of
		// a row is small; the rest (scratch) does not grow with N.
		if kept != 0 || total > int64(N*((L-1)*W*4+64))+1<<20 {
			t.Errorf("%v eval: %d bytes kept for %d rows (%d of them gate activations), want none and at most %d", cell, total, N, kept, N*((L-1)*W*4+64)+1<<20)
		}

		// Training with a budget for the layout and a tenth of the activations.
		all := int64(N * L * s.dirs * k.actWidth() * 4)
		fixed := k.fixedBytes(run)
		s.maxActBytes = fixed + int64(k.plan.maxRows*s.dirs*k.actWidth()*4) + all/10
		ref := rnnStepResult(t, s, k, lengths, T, false, 5)
		kept, total = k.footprint()
		t.Logf("%v train: budget %d bytes (%d for the rest of the layout, %.1f a row), activations %d: %d segments of %d kept; %d bytes (%.1f a row), %d of activations",
			cell, s.maxActBytes, fixed, float64(fixed)/float64(N), all, k.plan.kept, L*k.plan.S, total, float64(total)/float64(N), kept)
		if kept == 0 || kept > all/10 || int64(len(k.arena))*4 > s.maxActBytes {
			t.Errorf("%v train: %d bytes of activations kept (%d segments), an arena of %d bytes, want some, at most %d, and the arena within the budget %d",
				cell, kept, k.plan.kept, len(k.arena)*4, all/10, s.maxActBytes)
		}
		// Beside the activations: layer 0's output and the last layer's input gradient (W
		// floats a row each) and the segments' entering states, whose share of a row is small.
		if fixed > int64(N*(2*W*4+64)) {
			t.Errorf("%v train: %d bytes beside the activations for %d rows, want at most %d", cell, fixed, N, N*(2*W*4+64))
		}
		// The same batch with no budget (everything kept) gives the same bits.
		s.maxActBytes = 0
		k2 := newCPURNN[float32](s)
		if i, j, ok := sameBits(rnnStepResult(t, s, k2, lengths, T, false, 5), ref); !ok {
			t.Errorf("%v: result %d[%d] differs with every activation kept", cell, i, j)
		}
	}
}
