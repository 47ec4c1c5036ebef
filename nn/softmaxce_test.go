package nn

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// runRowLoss builds loss over logits z (B x K, float64 or float32 as dt says), runs it with its
// gradient and returns the loss, the per-example losses and dloss/dz, as float64s.
func runRowLoss(t *testing.T, loss PerExampleLoss, z []float64, B, K int, dt tensor.Dtype) (float64, []float64, []float64) {
	t.Helper()
	g := G.NewGraph()
	var zn *G.Node
	if dt == tensor.Float64 {
		zn = input64(g, "z", append([]float64(nil), z...), B, K)
	} else {
		f := make([]float32, len(z))
		for i, v := range z {
			f[i] = float32(v)
		}
		zn = input32(g, "z", f, B, K)
	}
	cost, err := loss.Build(g, zn)
	if err != nil {
		t.Fatal(err)
	}
	grads, err := G.Grad(cost, zn)
	if err != nil {
		t.Fatal(err)
	}
	vm := G.NewTapeMachine(g)
	defer vm.Close()
	if err := vm.RunAll(); err != nil {
		t.Fatal(err)
	}
	v, err := scalarValue(cost.Value())
	if err != nil {
		t.Fatal(err)
	}
	per := make([]float64, 0, B)
	for _, p := range loss.PerExample() {
		per = append(per, float64(p))
	}
	var dz []float64
	switch d := grads[0].Value().Data().(type) {
	case []float64:
		dz = append(dz, d...)
	case []float32:
		for _, x := range d {
			dz = append(dz, float64(x))
		}
	}
	if got := grads[0].Value().Shape(); len(got) != 2 || got[0] != B || got[1] != K {
		t.Fatalf("gradient of shape %v, want (%d, %d)", got, B, K)
	}
	return v, per, dz
}

// TestSoftmaxCrossEntropyParity compares the loss, the per-example losses and the gradient with
// torch.nn.functional.cross_entropy's (testdata/softmax_ce.json, from
// scripts/gen_softmaxce_vectors.py), with float64 logits and with float32 ones (the trainer's).
func TestSoftmaxCrossEntropyParity(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "softmax_ce.json"))
	if err != nil {
		t.Fatalf("%v (regenerate with scripts/gen_softmaxce_vectors.py)", err)
	}
	var ref struct {
		Cases []struct {
			Name              string
			K                 int
			Logits, Per, Grad []float64
			Labels            []int
			Loss              float64
		}
	}
	if err := json.Unmarshal(b, &ref); err != nil {
		t.Fatal(err)
	}
	if len(ref.Cases) == 0 {
		t.Fatal("no cases")
	}
	for _, c := range ref.Cases {
		B := len(c.Labels)
		for _, dt := range []tensor.Dtype{tensor.Float64, tensor.Float32} {
			// The per-example losses are float32 in both; float32 logits give float32 results.
			tol, perTol := 1e-12, 1e-7
			if dt == tensor.Float32 {
				tol, perTol = 1e-6, 1e-6
			}
			loss, per, grad := runRowLoss(t, NewSoftmaxCrossEntropy(c.Labels), c.Logits, B, c.K, dt)
			what := c.Name + " " + dt.String()
			closeTo(t, what+": loss", []float64{loss}, []float64{c.Loss}, tol, tol)
			closeTo(t, what+": per-example losses", per, c.Per, perTol, perTol)
			closeTo(t, what+": gradient", grad, c.Grad, tol, tol)
		}
	}
}

// TestSoftmaxCrossEntropyGradCheck compares the op's gradient with central differences of its
// own forward pass, over random logits and labels, in several batch and class counts.
func TestSoftmaxCrossEntropyGradCheck(t *testing.T) {
	r := rand.New(rand.NewPCG(20, 3))
	for _, dims := range [][2]int{{1, 2}, {5, 3}, {7, 5}, {3, 11}} {
		B, K := dims[0], dims[1]
		labels := make([]int, B)
		for i := range labels {
			labels[i] = r.IntN(K)
		}
		z := randn(r, B*K, 2)
		gradCase{build: func(g *G.ExprGraph) (*G.Node, G.Nodes, error) {
			zn := input64(g, "z", append([]float64(nil), z...), B, K)
			c, err := NewSoftmaxCrossEntropy(labels).Build(g, zn)
			return c, G.Nodes{zn}, err
		}}.check(t)
	}
}

// TestSoftmaxCrossEntropyTwoClassesIsBCE: two logits [0, z] against class y are one logit z
// against the binary target y: the same loss, and the gradient of the second logit is BCE's.
func TestSoftmaxCrossEntropyTwoClassesIsBCE(t *testing.T) {
	zs := []float64{-40, -3, -0.5, 0, 0.25, 2, 35}
	labels := []int{0, 1, 1, 0, 1, 0, 1}
	two := make([]float64, 0, 2*len(zs))
	targets := make([]float32, len(zs))
	for i, z := range zs {
		two = append(two, 0, z)
		targets[i] = float32(labels[i])
	}
	ce, cePer, ceGrad := runRowLoss(t, NewSoftmaxCrossEntropy(labels), two, len(zs), 2, tensor.Float64)
	bce, bcePer, bceGrad := runRowLoss(t, NewBCEWithLogits(targets), zs, len(zs), 1, tensor.Float64)
	closeTo(t, "loss", []float64{ce}, []float64{bce}, 1e-12, 1e-12)
	closeTo(t, "per-example losses", cePer, bcePer, 1e-7, 1e-7)
	for i := range zs {
		if math.Abs(ceGrad[2*i+1]-bceGrad[i]) > 1e-12 || math.Abs(ceGrad[2*i]+bceGrad[i]) > 1e-12 {
			t.Errorf("example %d: gradient (%v, %v), want (%v, %v)", i, ceGrad[2*i], ceGrad[2*i+1], -bceGrad[i], bceGrad[i])
		}
	}
}

// TestSoftmaxCrossEntropyBadInput: a label outside [0, K) (an unlabelled example's -1
// included), a batch of another size than the labels, and logits that are not (B, K >= 2)
// are errors naming the problem, not panics.
func TestSoftmaxCrossEntropyBadInput(t *testing.T) {
	build := func(l Loss, shape ...int) error {
		g := G.NewGraph()
		n := 1
		for _, d := range shape {
			n *= d
		}
		_, err := l.Build(g, input32(g, "z", make([]float32, n), shape...))
		return err
	}
	for _, c := range []struct {
		name   string
		labels []int
		shape  []int
		want   string
	}{
		{"unlabelled", []int{0, -1, 2}, []int{3, 3}, "example 1 has label -1, no class"},
		{"label K", []int{0, 1, 3}, []int{3, 3}, "example 2 has label 3, outside the 3 classes [0, 3)"},
		{"huge label", []int{1 << 40}, []int{1, 4}, "outside the 4 classes"},
		{"too few labels", []int{0, 1}, []int{3, 3}, "3 examples of logits for 2 labels"},
		{"one logit", []int{0, 1}, []int{2, 1}, "K >= 2 classes, got shape (2, 1)"},
		{"a vector", []int{0, 1}, []int{2}, "shape (B, K)"},
	} {
		err := build(NewSoftmaxCrossEntropy(c.labels), c.shape...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want an error with %q", c.name, err, c.want)
		}
	}
	var noTerm RowLoss
	if err := build(&noTerm, 2, 2); err == nil || !strings.Contains(err.Error(), "no Term") {
		t.Errorf("a RowLoss without Term: got %v", err)
	}
}
