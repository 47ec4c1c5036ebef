package distill

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/sentibench/sentibench/internal/gradcheck"
	"github.com/sentibench/sentibench/nn"
)

// The batch of scripts/distill_loss_ref.py: examples 2 and 4 have no label.
var (
	refStudent = []float64{1.5, -0.7, 0.2, 3.0, -2.5}
	refTeacher = []float32{2.0, -1.5, -0.375, 4.0, 0.25}
	nan        = float32(math.NaN())
	refLabels  = []float32{1, 0, nan, 1, nan}
)

// lossOf runs loss on logits z (float64 or float32 as dt says) and returns the loss, the
// per-example losses and dloss/dz.
func lossOf(t *testing.T, loss nn.PerExampleLoss, z []float64, dt tensor.Dtype) (float64, []float32, []float64) {
	t.Helper()
	g := G.NewGraph()
	var val *tensor.Dense
	if dt == tensor.Float64 {
		val = tensor.New(tensor.WithShape(len(z), 1), tensor.WithBacking(append([]float64(nil), z...)))
	} else {
		f := make([]float32, len(z))
		for i, x := range z {
			f[i] = float32(x)
		}
		val = tensor.New(tensor.WithShape(len(z), 1), tensor.WithBacking(f))
	}
	zn := G.NewTensor(g, dt, 2, G.WithShape(len(z), 1), G.WithName("z"), G.WithValue(val))
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
	v := float64s(t, cost.Value().Data())
	if len(v) != 1 {
		t.Fatalf("loss of %d values, want a scalar", len(v))
	}
	gz := float64s(t, grads[0].Value().Data())
	return v[0], append([]float32(nil), loss.PerExample()...), gz
}

// float64s returns a value's data, a float32 or float64 scalar or slice, as float64s.
func float64s(t *testing.T, data any) []float64 {
	t.Helper()
	switch x := data.(type) {
	case float32:
		return []float64{float64(x)}
	case float64:
		return []float64{x}
	case []float32:
		out := make([]float64, len(x))
		for i, f := range x {
			out[i] = float64(f)
		}
		return out
	case []float64:
		return append([]float64(nil), x...)
	}
	t.Fatalf("a value of type %T, want float32 or float64 data", data)
	return nil
}

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol*math.Max(1, math.Abs(b)) }

// TestLossValues checks the losses, per-example losses and gradients against PyTorch's
// (scripts/distill_loss_ref.py: the KL as a two-class softmax kl_div, the hard term as
// binary_cross_entropy_with_logits), in float64 and in float32 (the trainer's type).
func TestLossValues(t *testing.T) {
	cases := []struct {
		name string
		loss nn.PerExampleLoss
		want float64
		per  []float64
		grad []float64
	}{
		{"kd T=2 alpha=0.3", &KD{T: 2, Alpha: 0.3}, 0.192901076907576,
			[]float64{0.07827108050652551, 0.1718671757929332, 0.028836049797946937, 0.056250862072541416, 0.6292802163679329},
			[]float64{-0.02547189767567272, 0.04582584734216766, 0.020080855049795072, -0.020547880890240865, -0.08638258567356527}},
		{"kd T=1 alpha=0", &KD{T: 1, Alpha: 0}, 0.18458039270903487,
			[]float64{0.014883805928721003, 0.055832351857620394, 0.040798900215341743, 0.012451213693840672, 0.7989356918496506},
			[]float64{-0.012644520356847747, 0.029877340805095517, 0.028500119453309544, -0.005887932643095035, -0.09726366417291091}},
		{"kd T=4 alpha=0.5", &KD{T: 4, Alpha: 0.5}, 0.18370754144849372,
			[]float64{0.11553620987109857, 0.24063691655489394, 0.020647295169647695, 0.07528538182029898, 0.46643190382652944},
			[]float64{-0.030159644879749602, 0.052792387869979744, 0.01436709816821372, -0.025494539099601407, -0.06678991215562793}},
		{"mse alpha=0", &MSE{Alpha: 0}, 1.956625,
			[]float64{0.25, 0.64, 0.330625, 1.0, 7.5625},
			[]float64{-0.2, 0.32, 0.23, -0.4, -1.1}},
		{"mse alpha=0.25", &MSE{Alpha: 0.25}, 1.5001280839220974,
			[]float64{0.2378533194956881, 0.5807965122213645, 0.24796875, 0.7621468378934355, 5.671875},
			[]float64{-0.15912127619031785, 0.2565906113915917, 0.1725, -0.3023712936588784, -0.825}},
	}
	for _, c := range cases {
		setBatch(c.loss, refTeacher, refLabels)
		for _, dt := range []tensor.Dtype{tensor.Float64, tensor.Float32} {
			tol := 1e-12
			if dt == tensor.Float32 {
				tol = 2e-6
			}
			got, per, grad := lossOf(t, c.loss, refStudent, dt)
			if !near(got, c.want, tol) {
				t.Errorf("%s (%v): loss %.15g, want %.15g", c.name, dt, got, c.want)
			}
			for i := range c.per {
				if !near(float64(per[i]), c.per[i], 2e-7) {
					t.Errorf("%s (%v): example %d: loss %.9g, want %.9g", c.name, dt, i, per[i], c.per[i])
				}
				if !near(grad[i], c.grad[i], tol) {
					t.Errorf("%s (%v): example %d: gradient %.15g, want %.15g", c.name, dt, i, grad[i], c.grad[i])
				}
			}
		}
	}
}

func setBatch(l nn.Loss, teacher, labels []float32) {
	switch l := l.(type) {
	case *KD:
		l.Teacher, l.Labels = teacher, labels
	case *MSE:
		l.Teacher, l.Labels = teacher, labels
	}
}

// TestLossByHand checks one example of each loss against numbers worked out by hand.
func TestLossByHand(t *testing.T) {
	// z = 0, t = 2 log 3 (so p = sigmoid(t/2) = 3/4), T = 2, alpha = 0, no label:
	// q = 1/2; KL = 3/4 log(3/2) + 1/4 log(1/2); loss = T^2 KL; dloss/dz = T (q - p) = -1/2.
	kd := &KD{Teacher: []float32{float32(2 * math.Log(3))}, Labels: []float32{nan}, T: 2}
	got, _, grad := lossOf(t, kd, []float64{0}, tensor.Float64)
	want := 4 * (0.75*math.Log(1.5) + 0.25*math.Log(0.5))
	if !near(got, want, 1e-7) || !near(grad[0], -0.5, 1e-7) {
		t.Errorf("kd: loss %.10g, gradient %.10g; want %.10g, -0.5", got, grad[0], want)
	}
	// Labelled (y = 1) with alpha = 1/2: add 1/2 BCE(0, 1) = 1/2 log 2 and 1/2 (1/2 - 1).
	kd = &KD{Teacher: kd.Teacher, Labels: []float32{1}, T: 2, Alpha: 0.5}
	got, _, grad = lossOf(t, kd, []float64{0}, tensor.Float64)
	if w := 0.5*want + 0.5*math.Ln2; !near(got, w, 1e-7) || !near(grad[0], 0.5*-0.5+0.5*-0.5, 1e-7) {
		t.Errorf("kd alpha 1/2: loss %.10g, gradient %.10g; want %.10g, -0.5", got, grad[0], w)
	}
	// MSE: z = 1, t = -2: (1 - -2)^2 = 9, gradient 2 * 3 = 6.
	mse := &MSE{Teacher: []float32{-2}, Labels: []float32{0}}
	if got, _, grad := lossOf(t, mse, []float64{1}, tensor.Float64); got != 9 || grad[0] != 6 {
		t.Errorf("mse: loss %v, gradient %v; want 9, 6", got, grad[0])
	}
}

// TestUnlabelledSoftOnly: an example without a label contributes its soft term, the same
// whatever alpha does to the labelled ones, and an all-unlabelled batch is the soft loss.
func TestUnlabelledSoftOnly(t *testing.T) {
	teacher := []float32{0.8, -1.2, 2.5}
	z := []float64{0.1, 0.4, -1.0}
	none := []float32{nan, nan, nan}
	for _, T := range []float64{1, 3} {
		soft := &KD{T: T, Alpha: 0, Teacher: teacher, Labels: none}
		_, softPer, softGrad := lossOf(t, soft, z, tensor.Float64)
		for _, alpha := range []float64{0.2, 0.9} {
			mixed := &KD{T: T, Alpha: alpha, Teacher: teacher, Labels: []float32{1, nan, 0}}
			_, per, grad := lossOf(t, mixed, z, tensor.Float64)
			if want := (1 - alpha) * float64(softPer[1]); !near(float64(per[1]), want, 1e-6) {
				t.Errorf("T %v alpha %v: unlabelled example's loss %v, want (1-alpha) x soft = %v", T, alpha, per[1], want)
			}
			if want := (1 - alpha) * softGrad[1]; !near(grad[1], want, 1e-12) {
				t.Errorf("T %v alpha %v: unlabelled example's gradient %v, want %v", T, alpha, grad[1], want)
			}
			if per[0] <= float32((1-alpha))*softPer[0] {
				t.Errorf("T %v alpha %v: a labelled example's loss %v lacks its hard term (soft part %v)", T, alpha, per[0], (1-alpha)*float64(softPer[0]))
			}
		}
	}
	// Unlabelled examples only, alpha 1: nothing to learn, a zero loss and gradient.
	l := &KD{T: 2, Alpha: 1, Teacher: teacher, Labels: none}
	if got, _, grad := lossOf(t, l, z, tensor.Float64); got != 0 || grad[0] != 0 || grad[1] != 0 || grad[2] != 0 {
		t.Errorf("alpha 1, no labels: loss %v, gradient %v; want zeros", got, grad)
	}
}

// TestAlphaOneIsBCE: with alpha = 1 both losses are the trainer's binary cross-entropy.
func TestAlphaOneIsBCE(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	const n = 9
	z := make([]float64, n)
	teacher := make([]float32, n)
	labels := make([]float32, n)
	for i := range z {
		z[i] = 4 * r.NormFloat64()
		teacher[i] = float32(3 * r.NormFloat64())
		labels[i] = float32(r.IntN(2))
	}
	want, wantPer, wantGrad := lossOf(t, nn.NewBCEWithLogits(labels), z, tensor.Float64)
	for _, l := range []nn.PerExampleLoss{&KD{T: 3, Alpha: 1}, &MSE{Alpha: 1}} {
		setBatch(l, teacher, labels)
		got, per, grad := lossOf(t, l, z, tensor.Float64)
		if !near(got, want, 1e-12) {
			t.Errorf("%T: loss %v, BCE %v", l, got, want)
		}
		for i := range z {
			if !near(float64(per[i]), float64(wantPer[i]), 1e-6) || !near(grad[i], wantGrad[i], 1e-12) {
				t.Errorf("%T: example %d: loss %v gradient %v, BCE %v %v", l, i, per[i], grad[i], wantPer[i], wantGrad[i])
			}
		}
	}
}

// TestLossGradCheck compares the op's gradient with central differences of its own forward
// pass, over random logits (some large), temperatures and alphas, labelled and not.
func TestLossGradCheck(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	const n = 12
	for trial := 0; trial < 6; trial++ {
		z := make([]float64, n)
		teacher := make([]float32, n)
		labels := make([]float32, n)
		for i := range z {
			z[i] = 3 * r.NormFloat64()
			teacher[i] = float32(3 * r.NormFloat64())
			switch r.IntN(3) {
			case 0:
				labels[i] = nan
			default:
				labels[i] = float32(r.IntN(2))
			}
		}
		z[0], teacher[1] = 40, -35 // far in the tails
		alpha := []float64{0, 0.4, 1, 0.7, 0.1, 0.5}[trial]
		T := []float64{1, 2, 5, 0.5, 10, 3}[trial]
		for _, l := range []nn.PerExampleLoss{&KD{T: T, Alpha: alpha}, &MSE{Alpha: alpha}} {
			setBatch(l, teacher, labels)
			_, _, grad := lossOf(t, l, z, tensor.Float64)
			const h = 1e-6
			x := append([]float64(nil), z...)
			lossAt := func() float64 {
				v, _, _ := lossOf(t, l, x, tensor.Float64)
				return v
			}
			for i := range z {
				num := gradcheck.Central(lossAt, x, i, h)
				if math.Abs(num-grad[i]) > 1e-7*math.Max(1, math.Abs(num)) {
					t.Errorf("%T T=%v alpha=%v: element %d: analytic %.10g, numeric %.10g", l, T, alpha, i, grad[i], num)
				}
			}
		}
	}
}

// TestLossBadInput: mismatched lengths, bad settings, a non-finite teacher logit and a label
// that is neither 0, 1 nor NaN are errors.
func TestLossBadInput(t *testing.T) {
	build := func(l nn.Loss, n int) error {
		g := G.NewGraph()
		z := G.NewTensor(g, tensor.Float32, 2, G.WithShape(n, 1), G.WithName("z"),
			G.WithValue(tensor.New(tensor.WithShape(n, 1), tensor.WithBacking(make([]float32, n)))))
		_, err := l.Build(g, z)
		return err
	}
	two := []float32{1, 2}
	for _, c := range []struct {
		l    nn.Loss
		want string
	}{
		{&KD{T: 2, Alpha: 0.5, Teacher: two, Labels: []float32{1}}, "2 logits for 2 teacher logits and 1 labels"},
		{&KD{T: 0, Alpha: 0.5, Teacher: two, Labels: two}, "temperature"},
		{&KD{T: 2, Alpha: 1.5, Teacher: two, Labels: two}, "alpha"},
		{&MSE{Alpha: -0.1, Teacher: two, Labels: two}, "alpha"},
		{&KD{T: 2, Alpha: 0.5, Teacher: []float32{1, float32(math.Inf(1))}, Labels: []float32{0, 1}}, "teacher's logit of example 1"},
		{&MSE{Teacher: two, Labels: []float32{0.5, 1}}, "label 0.5"},
	} {
		err := build(c.l, 2)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: got %v, want an error with %q", c.l, err, c.want)
		}
	}
}
