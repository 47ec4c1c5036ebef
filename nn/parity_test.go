package nn

// Parity with PyTorch: the vectors under testdata/ come from scripts/gen_nn_vectors.py.

import (
	"math"
	"path/filepath"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/sentibench/sentibench/internal/safetensors"
)

// vectors opens a testdata file of reference vectors.
type vectors struct {
	t *testing.T
	f *safetensors.File
}

func openVectors(t *testing.T, name string) *vectors {
	t.Helper()
	f, err := safetensors.Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatalf("%v (regenerate with scripts/gen_nn_vectors.py)", err)
	}
	t.Cleanup(func() { f.Close() })
	return &vectors{t, f}
}

func (v *vectors) f32(name string) []float32 {
	v.t.Helper()
	x, err := v.f.Float32(name)
	if err != nil {
		v.t.Fatal(err)
	}
	return x
}

func (v *vectors) shape(name string) []int {
	v.t.Helper()
	info, ok := v.f.Tensors[name]
	if !ok {
		v.t.Fatalf("%s: no tensor %q", v.f.Path(), name)
	}
	return info.Shape
}

func (v *vectors) ints(name string) []int {
	v.t.Helper()
	x, err := v.f.Int64(name)
	if err != nil {
		v.t.Fatal(err)
	}
	out := make([]int, len(x))
	for i, e := range x {
		out[i] = int(e)
	}
	return out
}

func (v *vectors) ids(name string) []int32 {
	x := v.ints(name)
	out := make([]int32, len(x))
	for i, e := range x {
		out[i] = int32(e)
	}
	return out
}

// input32 adds a float32 input node named name holding a copy of v.
func input32(g *G.ExprGraph, name string, v []float32, shape ...int) *G.Node {
	return G.NewTensor(g, tensor.Float32, len(shape), G.WithShape(shape...), G.WithName(name),
		G.WithValue(tensor.New(tensor.WithShape(shape...), tensor.WithBacking(append([]float32(nil), v...)))))
}

// assertClose fails when |got-want| > tol*max(1, |want|) anywhere, and logs the worst error.
func assertClose(t *testing.T, what string, got, want []float32, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	worst, at := 0.0, 0
	for i := range got {
		d := math.Abs(float64(got[i])-float64(want[i])) / math.Max(1, math.Abs(float64(want[i])))
		if d > worst || math.IsNaN(d) {
			worst, at = d, i
		}
	}
	if worst > tol || math.IsNaN(worst) {
		t.Errorf("%s: element %d = %v, want %v (error %.2g > %.2g)", what, at, got[at], want[at], worst, tol)
	} else {
		t.Logf("%s: max error %.2g", what, worst)
	}
}

// runGrads builds sum(out * R) over the graph, runs it with gradients for wrt and returns them.
func runGrads(t *testing.T, g *G.ExprGraph, out *G.Node, R []float32, wrt ...*G.Node) [][]float32 {
	t.Helper()
	rn := input32(g, "R", R, out.Shape()...)
	prod, err := G.HadamardProd(out, rn)
	if err != nil {
		t.Fatal(err)
	}
	cost, err := G.Sum(prod)
	if err != nil {
		t.Fatal(err)
	}
	grads, err := G.Grad(cost, wrt...)
	if err != nil {
		t.Fatal(err)
	}
	vm := G.NewTapeMachine(g)
	defer vm.Close()
	if err := vm.RunAll(); err != nil {
		t.Fatal(err)
	}
	res := make([][]float32, len(grads))
	for i, gn := range grads {
		res[i] = append([]float32(nil), gn.Value().Data().([]float32)...)
	}
	return res
}

const parityTol = 1e-5

func TestEmbeddingParity(t *testing.T) {
	v := openVectors(t, "embedding_op.safetensors")
	ws := v.shape("weight")
	V, E := ws[0], ws[1]
	lengths := v.ints("lengths")
	B := len(lengths)
	ids := v.ids("ids")
	T := len(ids) / B
	for _, tm := range []bool{false, true} {
		suffix := map[bool]string{false: "_bm", true: "_tm"}[tm]
		e := NewEmbedding("embedding.", V, E, 1)
		g := G.NewGraph()
		w := input32(g, "w", v.f32("weight"), V, E)
		out, err := e.Lookup(w, ids, B, T, RowOrder(tm))
		if err != nil {
			t.Fatal(err)
		}
		grads := runGrads(t, g, out, v.f32("r"+suffix), w)
		assertClose(t, "output"+suffix, out.Value().Data().([]float32), v.f32("out"+suffix), parityTol)
		assertClose(t, "weight gradient"+suffix, grads[0], v.f32("grad"+suffix), parityTol)
		if !allZero(grads[0][E : 2*E]) {
			t.Errorf("the <pad> row got a gradient: %v", grads[0][E:2*E])
		}
	}
}

func TestTextCNNParity(t *testing.T) {
	v := openVectors(t, "cnn_op.safetensors")
	dev := testCPU(t)
	ws := v.shape("embedding.weight")
	V, E := ws[0], ws[1]
	F := v.shape("convs.0.bias")[0]
	lengths := v.ints("lengths")
	B := len(lengths)
	ids := v.ids("ids")
	T := len(ids) / B
	e := NewEmbedding("embedding.", V, E, 1)
	c := NewTextCNN(dev, "convs.", E, F, []int{3, 4, 5})
	c.BlockRows = 6
	g := G.NewGraph()
	w := input32(g, "embedding.weight", v.f32("embedding.weight"), V, E)
	x, err := e.Lookup(w, ids, B, T, false)
	if err != nil {
		t.Fatal(err)
	}
	var params G.Nodes
	for i, p := range c.Params() {
		params = append(params, input32(g, p.Name, v.f32(p.Name), p.Shape...))
		_ = i
	}
	pooled, err := c.Apply(x, params, lengths, T, true)
	if err != nil {
		t.Fatal(err)
	}
	grads := runGrads(t, g, pooled, v.f32("R"), append(G.Nodes{w}, params...)...)
	assertClose(t, "pooled", pooled.Value().Data().([]float32), v.f32("pooled"), parityTol)
	assertClose(t, "grad embedding.weight", grads[0], v.f32("grad.embedding.weight"), parityTol)
	for i, p := range c.Params() {
		assertClose(t, "grad "+p.Name, grads[1+i], v.f32("grad."+p.Name), parityTol)
	}
}

func TestLinearParity(t *testing.T) {
	v := openVectors(t, "linear.safetensors")
	dev := testCPU(t)
	l := NewLinear(dev, "fc.", 7, 3)
	g := G.NewGraph()
	x := input32(g, "x", v.f32("x"), 5, 7)
	w := input32(g, "w", v.f32("weight"), 3, 7)
	b := input32(g, "b", v.f32("bias"), 3)
	y, err := l.Apply(x, w, b)
	if err != nil {
		t.Fatal(err)
	}
	grads := runGrads(t, g, y, v.f32("R"), x, w, b)
	assertClose(t, "y", y.Value().Data().([]float32), v.f32("y"), parityTol)
	for i, name := range []string{"x", "weight", "bias"} {
		assertClose(t, "grad "+name, grads[i], v.f32("grad."+name), parityTol)
	}
}

func TestBCEParity(t *testing.T) {
	v := openVectors(t, "bce.safetensors")
	z, y := v.f32("logits"), v.f32("targets")
	loss := NewBCEWithLogits(y)
	g := G.NewGraph()
	zn := input32(g, "z", z, len(z))
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
	got, err := scalarValue(cost.Value())
	if err != nil {
		t.Fatal(err)
	}
	assertClose(t, "loss", []float32{float32(got)}, v.f32("loss"), parityTol)
	assertClose(t, "per-example", loss.PerExample(), v.f32("per"), parityTol)
	assertClose(t, "gradient", grads[0].Value().Data().([]float32), v.f32("grad"), parityTol)

	// float64 finite differences too.
	gradCase{build: func(g *G.ExprGraph) (*G.Node, G.Nodes, error) {
		z64 := make([]float64, len(z))
		for i := range z {
			z64[i] = float64(z[i]) / 10 // away from the flat tails, where differences vanish
		}
		zn := input64(g, "z", z64, len(z))
		c, err := NewBCEWithLogits(y).Build(g, zn)
		return c, G.Nodes{zn}, err
	}}.check(t)
}

func TestAdamParity(t *testing.T) {
	v := openVectors(t, "adam.safetensors")
	for _, c := range []struct {
		tag string
		cfg AdamConfig
	}{
		{"default", AdamConfig{}},
		{"wd", AdamConfig{LR: 3e-3, Beta1: 0.8, Beta2: 0.99, Eps: 1e-6, WeightDecay: 0.01}},
	} {
		params := []*Param{NewParam("a.weight", 4, 3), NewParam("a.bias", 5)}
		for _, p := range params {
			copy(p.Data(), v.f32("init."+p.Name))
		}
		opt, err := NewAdam(c.cfg)
		if err != nil {
			t.Fatal(err)
		}
		for k := 0; k < 5; k++ {
			for _, p := range params {
				copy(p.Grad, v.f32("grad"+string(rune('0'+k))+"."+p.Name))
			}
			if err := opt.Step(params); err != nil {
				t.Fatal(err)
			}
			for _, p := range params {
				assertClose(t, c.tag+" step "+string(rune('1'+k))+" "+p.Name, p.Data(), v.f32(c.tag+".step"+string(rune('0'+k))+"."+p.Name), 1e-6)
			}
		}
		st := opt.State()
		for _, p := range params {
			if st[p.Name].Step != 5 {
				t.Errorf("%s: step %d, want 5", p.Name, st[p.Name].Step)
			}
			assertClose(t, c.tag+" exp_avg "+p.Name, st[p.Name].ExpAvg, v.f32(c.tag+".exp_avg."+p.Name), 1e-6)
			assertClose(t, c.tag+" exp_avg_sq "+p.Name, st[p.Name].ExpAvgSq, v.f32(c.tag+".exp_avg_sq."+p.Name), 1e-6)
		}
	}
}

func TestClipGradNormParity(t *testing.T) {
	v := openVectors(t, "adam.safetensors")
	params := []*Param{NewParam("a.weight", 4, 3), NewParam("a.bias", 5)}
	for _, p := range params {
		copy(p.Grad, v.f32("grad0."+p.Name))
	}
	norm := ClipGradNorm(params, 0.5)
	assertClose(t, "norm", []float32{float32(norm)}, v.f32("clip.norm"), 1e-6)
	for _, p := range params {
		assertClose(t, "clipped "+p.Name, p.Grad, v.f32("clip."+p.Name), 1e-6)
	}
}
