package nn

import (
	"math"
	"math/rand/v2"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

func TestDropoutGradient(t *testing.T) {
	r := rand.New(rand.NewPCG(8, 9))
	d := NewDropout("drop", 0.3)
	rng := NewRNG(5)
	gradCase{build: func(g *G.ExprGraph) (*G.Node, G.Nodes, error) {
		x := input64(g, "x", randn(r, 6*7, 1), 6, 7)
		y, err := d.Forward(x, Train, rng)
		return y, G.Nodes{x}, err
	}}.check(t)
}

// dropoutOnes runs dropout on a vector of ones and returns the output.
func dropoutOnes(t *testing.T, d *Dropout, n int, mode Mode, rng *RNG) []float32 {
	t.Helper()
	g := G.NewGraph()
	ones := make([]float32, n)
	for i := range ones {
		ones[i] = 1
	}
	x := input32(g, "x", ones, n)
	y, err := d.Forward(x, mode, rng)
	if err != nil {
		t.Fatal(err)
	}
	vm := G.NewTapeMachine(g)
	defer vm.Close()
	if err := vm.RunAll(); err != nil {
		t.Fatal(err)
	}
	return append([]float32(nil), y.Value().Data().([]float32)...)
}

func TestDropoutMasks(t *testing.T) {
	const n = 100001
	for _, p := range []float64{0.25, 0.5} {
		d := NewDropout("drop", p)
		a := dropoutOnes(t, d, n, Train, NewRNG(42))
		b := dropoutOnes(t, d, n, Train, NewRNG(42))
		c := dropoutOnes(t, d, n, Train, NewRNG(43))
		kept, same, sameC := 0, true, true
		scale := float32(1 / (1 - p))
		for i := range a {
			if a[i] != 0 {
				kept++
				if a[i] != scale {
					t.Fatalf("kept value %v, want 1/(1-p) = %v", a[i], scale)
				}
			}
			same = same && a[i] == b[i]
			sameC = sameC && a[i] == c[i]
		}
		if !same {
			t.Fatal("the same seed gave different masks")
		}
		if sameC {
			t.Fatal("different seeds gave the same mask")
		}
		frac := float64(kept) / n
		if math.Abs(frac-(1-p)) > 4*math.Sqrt(p*(1-p)/n) {
			t.Fatalf("p=%v: kept %.4f of the elements, want %.4f", p, frac, 1-p)
		}
	}
	d := NewDropout("drop", 0.5)
	for _, v := range dropoutOnes(t, d, 10, Eval, nil) {
		if v != 1 {
			t.Fatal("Eval mode changed the input")
		}
	}
	if _, err := NewDropout("bad", 1).Forward(G.NewVector(G.NewGraph(), G.Float32, G.WithShape(2), G.WithName("x")), Train, NewRNG(1)); err == nil {
		t.Fatal("p = 1: no error")
	}
}

// TestDropoutInPlace checks that an in-place dropout gives the same output and input gradient
// as one with buffers of its own, writing them over its input and its output gradient; and
// that the LSTM classifier, whose embedding dropout works in place, trains exactly as with a
// dropout that does not.
func TestDropoutInPlace(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	const n = 41
	xs, dys := make([]float32, n), make([]float32, n)
	for i := range xs {
		xs[i], dys[i] = r.Float32()*2-1, r.Float32()*2-1
	}
	var outs [2][2][]float32
	for i, inPlace := range []bool{false, true} {
		d := NewDropout("drop", 0.4)
		d.InPlace = inPlace
		d.drawMask(NewRNG(9), n)
		op := newDropoutOp(d, "drop", tensor.Shape{n})
		x, dy := append([]float32(nil), xs...), append([]float32(nil), dys...)
		y, err := op.Do(dense(x, n))
		if err != nil {
			t.Fatal(err)
		}
		dx, err := op.backward().Do(dense(dy, n))
		if err != nil {
			t.Fatal(err)
		}
		yd, dxd := y.Data().([]float32), dx.Data().([]float32)
		if inPlace != (&yd[0] == &x[0]) || inPlace != (&dxd[0] == &dy[0]) {
			t.Errorf("InPlace %v: output over the input %v, input gradient over the output gradient %v", inPlace, &yd[0] == &x[0], &dxd[0] == &dy[0])
		}
		outs[i] = [2][]float32{append([]float32(nil), yd...), append([]float32(nil), dxd...)}
	}
	for k := range outs[0] {
		for j := range outs[0][k] {
			if outs[0][k][j] != outs[1][k][j] {
				t.Fatalf("result %d[%d]: in place %v, with own buffers %v", k, j, outs[1][k][j], outs[0][k][j])
			}
		}
	}

	// The LSTM classifier, three training steps each way.
	train := func(inPlace bool) []float64 {
		cfg, _ := DefaultConfig(KindLSTM, 50)
		cfg.EmbedDim, cfg.Hidden, cfg.Dropout = 6, 5, 0.3
		m, err := NewModel(testCPU(t), cfg, NewRNG(1))
		if err != nil {
			t.Fatal(err)
		}
		lm := m.(*LSTMClassifier)
		if !lm.EmbDrop.InPlace {
			t.Fatal("the LSTM classifier's embedding dropout does not work in place")
		}
		lm.EmbDrop.InPlace = inPlace
		opt, _ := NewAdam(AdamConfig{})
		rng := NewRNG(2)
		var losses []float64
		for k := 0; k < 3; k++ {
			in, y := tinyBatch(NewRNG(uint64(10+k)), 50, 1, []int{7, 5, 5, 2})
			var run Runner
			res, err := run.Step(m, in, NewBCEWithLogits(y), Train, rng)
			if err != nil {
				t.Fatal(err)
			}
			losses = append(losses, res.Loss)
			if err := opt.Step(m.Params()); err != nil {
				t.Fatal(err)
			}
		}
		for _, p := range m.Params() {
			for _, v := range p.Data() {
				losses = append(losses, float64(v))
			}
		}
		return losses
	}
	a, b := train(true), train(false)
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("LSTM classifier: value %d after three steps: %v with the dropout in place, %v without", i, a[i], b[i])
		}
	}
}
