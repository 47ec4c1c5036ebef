package nn

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/sentibench/sentibench/internal/blas"
	"github.com/sentibench/sentibench/internal/safetensors"
)

// testCPU returns a device on the best BLAS here (OpenBLAS when it loads) with two workers,
// so the tests run the concurrent paths.
func testCPU(t testing.TB) *CPU {
	t.Helper()
	impl, err := blas.Load("auto")
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
	return s + fmt.Sprintf("_T%d_len%v", c.T, strings.ReplaceAll(fmt.Sprint(c.lengths), " ", ","))
}

func (c rnnCase) stack(t testing.TB) *rnnStack {
	t.Helper()
	s, err := newRNNStack(c.cell, testCPU(t), "rnn.", c.in, c.H, c.layers, c.bi, c.dropout, c.inputGrad)
	if err != nil {
		t.Fatal(err)
	}
	return s
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
			orig := v[j]
			v[j] = orig + eps
			lp := lossAt()
			v[j] = orig - eps
			lm := lossAt()
			v[j] = orig
			num := (lp - lm) / (2 * eps)
			got := grads[i][j]
			diff := math.Abs(got - num)
			worst = max(worst, diff/(1e-6+math.Abs(num)))
			if diff > 2e-7+1e-6*math.Abs(num) {
				t.Fatalf("%s[%d]: analytic %.10g, numerical %.10g", names[i], j, got, num)
			}
		}
	}
	t.Logf("%d gradients checked, worst relative difference %.2g", len(vals), worst)
}

func TestLSTMGradCheck(t *testing.T) {
	for _, c := range []rnnCase{
		{cell: cellLSTM, in: 3, H: 4, layers: 1, lengths: []int{5, 3, 3, 1}, T: 5, inputGrad: true},
		{cell: cellLSTM, in: 3, H: 4, layers: 2, bi: true, lengths: []int{6, 4, 4, 2, 1}, T: 7, inputGrad: true},
		{cell: cellLSTM, in: 3, H: 4, layers: 2, bi: true, lengths: []int{6, 4, 4, 2, 1}, T: 6, seq: true, inputGrad: true},
		{cell: cellLSTM, in: 2, H: 3, layers: 2, lengths: []int{4, 4, 4}, T: 4, seq: true, inputGrad: true},
		{cell: cellLSTM, in: 3, H: 4, layers: 3, bi: true, dropout: 0.4, mode: Train, lengths: []int{5, 4, 2}, T: 5, inputGrad: true},
	} {
		t.Run(c.String(), func(t *testing.T) { checkRNNGradients(t, c) })
	}
}

func TestGRUGradCheck(t *testing.T) {
	for _, c := range []rnnCase{
		{cell: cellGRU, in: 3, H: 4, layers: 1, lengths: []int{5, 3, 3, 1}, T: 5, inputGrad: true},
		{cell: cellGRU, in: 3, H: 4, layers: 2, bi: true, lengths: []int{6, 4, 4, 2, 1}, T: 7, inputGrad: true},
		{cell: cellGRU, in: 3, H: 4, layers: 2, bi: true, lengths: []int{6, 4, 4, 2, 1}, T: 6, seq: true, inputGrad: true},
		{cell: cellGRU, in: 3, H: 4, layers: 2, bi: true, lengths: []int{5, 5, 2}, T: 5},
		{cell: cellGRU, in: 3, H: 4, layers: 3, bi: true, dropout: 0.4, mode: Train, lengths: []int{5, 4, 2}, T: 5, inputGrad: true},
	} {
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
// must match to 1e-10.
func TestRNNMatchesPyTorch(t *testing.T) {
	vec, cases := openTorchVectors(t)
	for _, name := range cases {
		c := vec.config(t, name)
		for _, tag := range []string{"A", "B"} {
			t.Run(name+"/loss"+tag, func(t *testing.T) {
				seq := tag == "B"
				t.Run("float32", func(t *testing.T) { torchParity32(t, vec, name, c, seq) })
				t.Run("float64", func(t *testing.T) { torchParity64(t, vec, name, c, seq) })
			})
		}
	}
}

type recurrent interface {
	Params() []*Param
	Forward(x *G.Node, lengths []int, T int, mode Mode, rng *RNG, seq bool) (final, outputs *G.Node, err error)
	OutputDim() int
}

func newTorchLayer(t *testing.T, c torchCase) recurrent {
	t.Helper()
	var l recurrent
	var err error
	if c.Cell == "lstm" {
		l, err = NewLSTM(testCPU(t), "rnn.", c.Input, c.Hidden, c.Layers, c.Bidirectional, 0.5)
	} else {
		l, err = NewGRU(testCPU(t), "rnn.", c.Input, c.Hidden, c.Layers, c.Bidirectional, 0.5, true)
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

func torchParity32(t *testing.T, vec *torchVectors, name string, c torchCase, seq bool) {
	l := newTorchLayer(t, c)
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
	final, outputs, err := l.Forward(x, c.Lengths, c.T, Eval, nil, seq)
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
	if _, err := G.Grad(loss, wrt...); err != nil {
		t.Fatal(err)
	}
	m := G.NewTapeMachine(g, G.BindDualValues(wrt...))
	defer m.Close()
	if err := m.RunAll(); err != nil {
		t.Fatal(err)
	}
	for i, p := range l.Params() {
		gv, err := pnodes[i].Grad()
		if err != nil {
			t.Fatal(err)
		}
		copy(p.Grad, gv.Data().([]float32))
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
	dx, err := x.Grad()
	if err != nil {
		t.Fatal(err)
	}
	closeTo(t, "grad x", dx.Data().([]float32), vec.f64(t, name+"/grad"+tag+"/x"), atol, rtol)
	for _, p := range l.Params() {
		closeTo(t, "grad "+p.Name, p.Grad, vec.f64(t, name+"/grad"+tag+"/"+p.Name), atol, rtol)
	}
}

func torchParity64(t *testing.T, vec *torchVectors, name string, c torchCase, seq bool) {
	cell := cellLSTM
	if c.Cell == "gru" {
		cell = cellGRU
	}
	rc := rnnCase{cell: cell, in: c.Input, H: c.Hidden, layers: c.Layers, bi: c.Bidirectional,
		dropout: 0.5, mode: Eval, lengths: c.Lengths, T: c.T, seq: seq, inputGrad: true}
	s := rc.stack(t)
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
// the real tokens.
func benchRNN(b *testing.B, cell cellKind, in, H, layers, B, T int, train, varied, inputGrad bool, threads, workers int) {
	impl, err := blas.Load("auto")
	if err != nil {
		b.Fatal(err)
	}
	if threads > 0 {
		impl.SetThreads(threads)
		defer impl.SetThreads(2)
	}
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
	b.ReportMetric((cpuSeconds()-cpu0)/b.Elapsed().Seconds(), "cores")
}
