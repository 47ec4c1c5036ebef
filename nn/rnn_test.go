package nn

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/sentibench/sentibench/internal/blas"
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
