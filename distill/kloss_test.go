package distill

// The K-class losses (K logits per example): PyTorch parity, the binary losses as their K = 2
// case, the unlabelled examples' soft term, alpha 1 as softmax cross-entropy, gradient checks
// and bad input.

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

	"github.com/sentibench/sentibench/internal/gradcheck"
	"github.com/sentibench/sentibench/nn"
)

// rowLossOf runs loss on logits z of shape (B, K) (float64 or float32 as dt says) and returns
// the loss, the per-example losses and dloss/dz.
func rowLossOf(t *testing.T, loss nn.PerExampleLoss, z []float64, B, K int, dt tensor.Dtype) (float64, []float32, []float64) {
	t.Helper()
	g := G.NewGraph()
	var val *tensor.Dense
	if dt == tensor.Float64 {
		val = tensor.New(tensor.WithShape(B, K), tensor.WithBacking(append([]float64(nil), z...)))
	} else {
		f := make([]float32, len(z))
		for i, x := range z {
			f[i] = float32(x)
		}
		val = tensor.New(tensor.WithShape(B, K), tensor.WithBacking(f))
	}
	zn := G.NewTensor(g, dt, 2, G.WithShape(B, K), G.WithName("z"), G.WithValue(val))
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
	if s := grads[0].Value().Shape(); len(s) != 2 || s[0] != B || s[1] != K {
		t.Fatalf("gradient of shape %v, want (%d, %d)", s, B, K)
	}
	return v[0], append([]float32(nil), loss.PerExample()...), float64s(t, grads[0].Value().Data())
}

// kclassRef is a case of distill/testdata/kclass_loss_ref.json (scripts/distill_loss_ref.py).
type kclassRef struct {
	Batch            string
	LossKind         string `json:"loss_kind"`
	T, Alpha         float64
	K                int
	Student, Teacher []float64
	Labels           []*float64 // null: no label
	Loss             float64
	Per, Grad        []float64
}

func (c kclassRef) loss() nn.PerExampleLoss {
	teacher := make([]float32, len(c.Teacher))
	for i, x := range c.Teacher {
		teacher[i] = float32(x)
	}
	labels := make([]float32, len(c.Labels))
	for i, y := range c.Labels {
		labels[i] = nan
		if y != nil {
			labels[i] = float32(*y)
		}
	}
	if c.LossKind == LossMSE {
		return &MSE{Teacher: teacher, Labels: labels, Alpha: c.Alpha}
	}
	return &KD{Teacher: teacher, Labels: labels, T: c.T, Alpha: c.Alpha}
}

// TestKClassLossValues checks the K-class losses, per-example losses and gradients against
// PyTorch's (kl_div of log_softmax against softmax, mse_loss, cross_entropy), in float64 and in
// float32 (the trainer's type).
func TestKClassLossValues(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "kclass_loss_ref.json"))
	if err != nil {
		t.Fatalf("%v (regenerate with scripts/distill_loss_ref.py)", err)
	}
	var ref struct{ Cases []kclassRef }
	if err := json.Unmarshal(b, &ref); err != nil {
		t.Fatal(err)
	}
	if len(ref.Cases) < 12 {
		t.Fatalf("%d cases, want 12", len(ref.Cases))
	}
	mse := 0
	for _, c := range ref.Cases {
		if c.LossKind == LossMSE {
			mse++
		}
	}
	if mse == 0 || mse == len(ref.Cases) {
		t.Fatalf("%d MSE cases of %d: the loss kinds were not read", mse, len(ref.Cases))
	}
	for _, c := range ref.Cases {
		B := len(c.Labels)
		for _, dt := range []tensor.Dtype{tensor.Float64, tensor.Float32} {
			tol := 1e-12
			if dt == tensor.Float32 {
				tol = 2e-6
			}
			name := c.Batch + " " + c.LossKind
			got, per, grad := rowLossOf(t, c.loss(), c.Student, B, c.K, dt)
			if !near(got, c.Loss, tol) {
				t.Errorf("%s T=%v alpha=%v (%v): loss %.15g, want %.15g", name, c.T, c.Alpha, dt, got, c.Loss)
			}
			for i := range c.Per {
				if !near(float64(per[i]), c.Per[i], 2e-7) {
					t.Errorf("%s T=%v alpha=%v (%v): example %d: loss %.9g, want %.9g", name, c.T, c.Alpha, dt, i, per[i], c.Per[i])
				}
			}
			for j := range c.Grad {
				if !near(grad[j], c.Grad[j], tol) {
					t.Errorf("%s T=%v alpha=%v (%v): gradient %d: %.15g, want %.15g", name, c.T, c.Alpha, dt, j, grad[j], c.Grad[j])
				}
			}
		}
	}
}

// randomBatch returns B rows of K student logits (float64) and teacher logits (float32), and
// labels in [0, K) with about a third unlabelled (NaN).
func randomBatch(r *rand.Rand, B, K int) ([]float64, []float32, []float32) {
	z := make([]float64, B*K)
	teacher := make([]float32, B*K)
	labels := make([]float32, B)
	for j := range z {
		z[j] = 3 * r.NormFloat64()
		teacher[j] = float32(3 * r.NormFloat64())
	}
	for i := range labels {
		labels[i] = float32(r.IntN(K))
		if r.IntN(3) == 0 {
			labels[i] = nan
		}
	}
	return z, teacher, labels
}

// TestKClassTwoLogitsIsBinary: with K = 2 logits [0, z] for the student and [0, t] for the
// teacher, both losses are the binary ones of z and t (a softmax over [0, x] is the sigmoid
// of x, and ||[0, z] - [0, t]||^2 = (z - t)^2): the same losses, and the second logit's
// gradient is the binary gradient.
func TestKClassTwoLogitsIsBinary(t *testing.T) {
	r := rand.New(rand.NewPCG(8, 9))
	const n = 10
	zs, ts, labels := randomBatch(r, n, 1)
	for i := range labels {
		if labels[i] == labels[i] {
			labels[i] = float32(r.IntN(2))
		}
	}
	zs[0], ts[1] = 30, -25 // in the tails
	two := make([]float64, 0, 2*n)
	twoT := make([]float32, 0, 2*n)
	for i := range zs {
		two = append(two, 0, zs[i])
		twoT = append(twoT, 0, ts[i])
	}
	for _, c := range []struct {
		binary, kclass nn.PerExampleLoss
	}{
		{&KD{T: 2, Alpha: 0.3, Teacher: ts, Labels: labels}, &KD{T: 2, Alpha: 0.3, Teacher: twoT, Labels: labels}},
		{&KD{T: 0.5, Alpha: 0, Teacher: ts, Labels: labels}, &KD{T: 0.5, Alpha: 0, Teacher: twoT, Labels: labels}},
		{&KD{T: 5, Alpha: 1, Teacher: ts, Labels: labels}, &KD{T: 5, Alpha: 1, Teacher: twoT, Labels: labels}},
		{&MSE{Alpha: 0.25, Teacher: ts, Labels: labels}, &MSE{Alpha: 0.25, Teacher: twoT, Labels: labels}},
	} {
		want, wantPer, wantGrad := lossOf(t, c.binary, zs, tensor.Float64)
		got, per, grad := rowLossOf(t, c.kclass, two, n, 2, tensor.Float64)
		if !near(got, want, 1e-12) {
			t.Errorf("%+v: loss %.15g with two logits, %.15g with one", c.kclass, got, want)
		}
		for i := range zs {
			if !near(float64(per[i]), float64(wantPer[i]), 1e-6) {
				t.Errorf("%T: example %d: loss %v with two logits, %v with one", c.kclass, i, per[i], wantPer[i])
			}
			// The first logit's gradient: the opposite of the second's for KD (a softmax's
			// gradients sum to zero); MSE's soft term has none there (0 - 0), only the hard term's.
			first := -wantGrad[i]
			if mse, ok := c.kclass.(*MSE); ok {
				first = 0
				if y := float64(labels[i]); y == y {
					first = -mse.Alpha * (sigmoid(zs[i]) - y) / n // of the mean over the batch
				}
			}
			if !near(grad[2*i+1], wantGrad[i], 1e-12) || !near(grad[2*i], first, 1e-12) {
				t.Errorf("%T: example %d: gradient (%v, %v), want (%v, %v)", c.kclass, i, grad[2*i], grad[2*i+1], first, wantGrad[i])
			}
		}
	}
}

// TestKClassUnlabelledSoftOnly: an unlabelled example's loss and gradient are (1 - alpha) times
// its soft term's whatever alpha, a labelled one's include the hard term, and with alpha 1 a
// batch without labels teaches nothing.
func TestKClassUnlabelledSoftOnly(t *testing.T) {
	const B, K = 3, 4
	z, teacher, _ := randomBatch(rand.New(rand.NewPCG(1, 2)), B, K)
	none := []float32{nan, nan, nan}
	some := []float32{2, nan, 0}
	for _, mk := range []func(alpha float64, labels []float32) nn.PerExampleLoss{
		func(alpha float64, labels []float32) nn.PerExampleLoss {
			return &KD{T: 2, Alpha: alpha, Teacher: teacher, Labels: labels}
		},
		func(alpha float64, labels []float32) nn.PerExampleLoss {
			return &MSE{Alpha: alpha, Teacher: teacher, Labels: labels}
		},
	} {
		_, softPer, softGrad := rowLossOf(t, mk(0, none), z, B, K, tensor.Float64)
		for _, alpha := range []float64{0.2, 0.9} {
			l := mk(alpha, some)
			_, per, grad := rowLossOf(t, l, z, B, K, tensor.Float64)
			if want := (1 - alpha) * float64(softPer[1]); !near(float64(per[1]), want, 1e-6) {
				t.Errorf("%T alpha %v: unlabelled example's loss %v, want (1-alpha) x soft = %v", l, alpha, per[1], want)
			}
			for k := range K {
				if want := (1 - alpha) * softGrad[K+k]; !near(grad[K+k], want, 1e-12) {
					t.Errorf("%T alpha %v: unlabelled example's gradient %d: %v, want %v", l, alpha, k, grad[K+k], want)
				}
			}
			for _, i := range []int{0, 2} {
				if per[i] <= float32(1-alpha)*softPer[i] {
					t.Errorf("%T alpha %v: labelled example %d's loss %v lacks its hard term (soft part %v)", l, alpha, i, per[i], (1-alpha)*float64(softPer[i]))
				}
			}
		}
		got, _, grad := rowLossOf(t, mk(1, none), z, B, K, tensor.Float64)
		if got != 0 {
			t.Errorf("alpha 1, no labels: loss %v, want 0", got)
		}
		for j, d := range grad {
			if d != 0 {
				t.Errorf("alpha 1, no labels: gradient %d is %v, want 0", j, d)
			}
		}
	}
}

// TestKClassAlphaOneIsSoftmaxCE: with alpha = 1 and every example labelled, both losses are
// the trainer's softmax cross-entropy.
func TestKClassAlphaOneIsSoftmaxCE(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	const B, K = 7, 5
	z, teacher, _ := randomBatch(r, B, K)
	ids := make([]int, B)
	labels := make([]float32, B)
	for i := range ids {
		ids[i] = r.IntN(K)
		labels[i] = float32(ids[i])
	}
	want, wantPer, wantGrad := rowLossOf(t, nn.NewSoftmaxCrossEntropy(ids), z, B, K, tensor.Float64)
	for _, l := range []nn.PerExampleLoss{&KD{T: 3, Alpha: 1, Teacher: teacher, Labels: labels}, &MSE{Alpha: 1, Teacher: teacher, Labels: labels}} {
		got, per, grad := rowLossOf(t, l, z, B, K, tensor.Float64)
		if !near(got, want, 1e-12) {
			t.Errorf("%T: loss %v, softmax cross-entropy %v", l, got, want)
		}
		for i := range B {
			if !near(float64(per[i]), float64(wantPer[i]), 1e-6) {
				t.Errorf("%T: example %d: loss %v, softmax cross-entropy %v", l, i, per[i], wantPer[i])
			}
		}
		for j := range grad {
			if !near(grad[j], wantGrad[j], 1e-12) {
				t.Errorf("%T: gradient %d: %v, softmax cross-entropy %v", l, j, grad[j], wantGrad[j])
			}
		}
	}
}

// TestKClassLossGradCheck compares the ops' gradients with central differences of their own
// forward passes, over random logits (some far in the tails), class counts, temperatures and
// alphas, labelled and not.
func TestKClassLossGradCheck(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 7))
	for trial := 0; trial < 6; trial++ {
		B, K := 4, []int{3, 5, 2, 7, 3, 4}[trial]
		z, teacher, labels := randomBatch(r, B, K)
		z[0], teacher[1] = 40, -35 // far in the tails
		alpha := []float64{0, 0.4, 1, 0.7, 0.1, 0.5}[trial]
		T := []float64{1, 2, 5, 0.5, 10, 3}[trial]
		for _, l := range []nn.PerExampleLoss{&KD{T: T, Alpha: alpha, Teacher: teacher, Labels: labels}, &MSE{Alpha: alpha, Teacher: teacher, Labels: labels}} {
			_, _, grad := rowLossOf(t, l, z, B, K, tensor.Float64)
			x := append([]float64(nil), z...)
			lossAt := func() float64 {
				v, _, _ := rowLossOf(t, l, x, B, K, tensor.Float64)
				return v
			}
			for j := range z {
				num := gradcheck.Central(lossAt, x, j, 1e-6)
				if math.Abs(num-grad[j]) > 1e-7*math.Max(1, math.Abs(num)) {
					t.Errorf("%T K=%d T=%v alpha=%v: element %d: analytic %.10g, numeric %.10g", l, K, T, alpha, j, grad[j], num)
				}
			}
		}
	}
}

// TestKClassLossBadInput: teacher logits or labels of the wrong count, a non-finite teacher
// logit, and a label that is no class id (nor NaN) are errors naming the problem.
func TestKClassLossBadInput(t *testing.T) {
	const B, K = 2, 3
	build := func(l nn.Loss) error {
		g := G.NewGraph()
		z := G.NewTensor(g, tensor.Float32, 2, G.WithShape(B, K), G.WithName("z"),
			G.WithValue(tensor.New(tensor.WithShape(B, K), tensor.WithBacking(make([]float32, B*K)))))
		_, err := l.Build(g, z)
		return err
	}
	six := []float32{1, 2, 3, 4, 5, 6}
	inf := float32(math.Inf(-1))
	for _, c := range []struct {
		l    nn.Loss
		want string
	}{
		{&KD{T: 2, Alpha: 0.5, Teacher: six[:2], Labels: []float32{0, 1}}, "2 examples of 3 logits for 2 teacher logits and 2 labels, want 6 and 2"},
		{&MSE{Teacher: six, Labels: []float32{0, 1, 2}}, "for 6 teacher logits and 3 labels"},
		{&KD{T: 2, Alpha: 0.5, Teacher: []float32{1, 2, 3, 4, inf, 6}, Labels: []float32{0, 1}}, "teacher's logit 1 of example 1 is -Inf"},
		{&KD{T: 2, Alpha: 0.5, Teacher: six, Labels: []float32{0, 3}}, "label 3 of example 1 is not a class id in [0, 3)"},
		{&MSE{Teacher: six, Labels: []float32{1.5, 0}}, "label 1.5 of example 0"},
		{&MSE{Teacher: six, Labels: []float32{-1, 0}}, "label -1 of example 0"},
		{&KD{T: 0, Alpha: 0.5, Teacher: six, Labels: []float32{0, 1}}, "temperature"},
	} {
		err := build(c.l)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: got %v, want an error with %q", c.l, err, c.want)
		}
	}
}
