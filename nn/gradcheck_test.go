package nn

import (
	"math"
	"math/rand/v2"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/sentibench/sentibench/internal/gradcheck"
)

// input64 adds a float64 input node named name with the given values.
func input64(g *G.ExprGraph, name string, v []float64, shape ...int) *G.Node {
	return G.NewTensor(g, tensor.Float64, len(shape), G.WithShape(shape...), G.WithName(name),
		G.WithValue(tensor.New(tensor.WithShape(shape...), tensor.WithBacking(v))))
}

// randn returns n values from N(0, scale^2).
func randn(r *rand.Rand, n int, scale float64) []float64 {
	v := make([]float64, n)
	for i := range v {
		v[i] = r.NormFloat64() * scale
	}
	return v
}

// gradCase is one finite-difference gradient check.
type gradCase struct {
	// build adds the op under test to g and returns its output and the inputs to check.
	build func(g *G.ExprGraph) (out *G.Node, inputs G.Nodes, err error)
	// skip, when set, excludes elements of input i from the comparison (e.g. a padding row
	// whose gradient is zero by definition).
	skip func(input, elem int) bool
	// samples bounds how many elements of each input are checked (0: all).
	samples int
	tol     float64
}

// check compares the analytic gradients of sum(out * R), R random, with central differences.
func (c gradCase) check(t *testing.T) {
	t.Helper()
	r := rand.New(rand.NewPCG(7, 7))
	g := G.NewGraph()
	out, inputs, err := c.build(g)
	if err != nil {
		t.Fatal(err)
	}
	cost := out // a scalar output is checked as it is
	if !out.IsScalar() {
		weights := input64(g, "R", randn(r, out.Shape().TotalSize(), 1), out.Shape()...)
		prod, err := G.HadamardProd(out, weights)
		if err != nil {
			t.Fatal(err)
		}
		if cost, err = G.Sum(prod); err != nil {
			t.Fatal(err)
		}
	}
	grads, err := G.Grad(cost, inputs...)
	if err != nil {
		t.Fatal(err)
	}
	vm := G.NewTapeMachine(g)
	defer vm.Close()
	run := func() float64 {
		vm.Reset()
		if err := vm.RunAll(); err != nil {
			t.Fatal(err)
		}
		v, err := scalarValue(cost.Value())
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	run()
	analytic := make([][]float64, len(inputs))
	for i, gn := range grads {
		analytic[i] = append([]float64(nil), gn.Value().Data().([]float64)...)
	}
	const h = 1e-6
	tol := c.tol
	if tol == 0 {
		tol = 1e-6
	}
	for i, in := range inputs {
		x := in.Value().Data().([]float64)
		idx := r.Perm(len(x))
		if c.samples > 0 && len(idx) > c.samples {
			idx = idx[:c.samples]
		}
		worst := 0.0
		for _, j := range idx {
			if c.skip != nil && c.skip(i, j) {
				continue
			}
			num := gradcheck.Central(run, x, j, h)
			a := analytic[i][j]
			rel := math.Abs(a-num) / math.Max(1, math.Max(math.Abs(a), math.Abs(num)))
			worst = math.Max(worst, rel)
			if rel > tol {
				t.Errorf("input %d (%s) element %d: analytic %.9g, numeric %.9g (rel err %.2g)", i, in.Name(), j, a, num, rel)
			}
		}
		t.Logf("input %d (%s): %d elements, worst rel err %.2g", i, in.Name(), len(idx), worst)
	}
}
