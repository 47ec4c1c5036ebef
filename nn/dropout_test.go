package nn

import (
	"math"
	"math/rand/v2"
	"testing"

	G "gorgonia.org/gorgonia"
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
