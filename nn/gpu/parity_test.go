package gpu

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	G "gorgonia.org/gorgonia"

	"github.com/sentibench/sentibench/internal/blas"
	"github.com/sentibench/sentibench/nn"
)

// The parity checks: a model's step on the CPU (nn.Runner, nn.Adam) against the same step by a
// Trainer on a backend. They run on the emulator here (trainer_test.go) and on a real GPU in
// gpu_test.go (tag sentibench_cuda).

// parityCase is one model and batch.
type parityCase struct {
	name    string
	cfg     nn.Config
	lengths []int
	T       int
	frozen  bool // freeze the embedding
}

func parityCases() []parityCase {
	return []parityCase{
		{name: "lstm-bi-2layers", cfg: nn.Config{Kind: nn.KindLSTM, VocabSize: 37, PadID: 1, EmbedDim: 6, Hidden: 5, Layers: 2,
			Bidirectional: true, Outputs: 1}, lengths: []int{7, 5, 5, 2, 1}, T: 7},
		{name: "lstm-uni-padded", cfg: nn.Config{Kind: nn.KindLSTM, VocabSize: 20, PadID: 1, EmbedDim: 4, Hidden: 3, Layers: 1,
			Outputs: 1}, lengths: []int{4, 3, 1}, T: 6},
		{name: "lstm-frozen-embedding", cfg: nn.Config{Kind: nn.KindLSTM, VocabSize: 20, PadID: 1, EmbedDim: 4, Hidden: 3, Layers: 2,
			Bidirectional: true, Outputs: 1}, lengths: []int{5, 5, 4}, T: 5, frozen: true},
		{name: "bigru", cfg: nn.Config{Kind: nn.KindBiGRU, PadID: -1, InputDim: 7, Hidden: 4, Layers: 2, Bidirectional: true,
			Outputs: 1}, lengths: []int{6, 6, 3, 2, 2, 1}, T: 6},
		{name: "gru-uni-3layers", cfg: nn.Config{Kind: nn.KindBiGRU, PadID: -1, InputDim: 5, Hidden: 3, Layers: 3, Outputs: 1},
			lengths: []int{5, 2}, T: 5},
		{name: "cnn", cfg: nn.Config{Kind: nn.KindCNN, VocabSize: 30, PadID: 1, EmbedDim: 5, Filters: 4, Widths: []int{2, 3, 4},
			Outputs: 1}, lengths: []int{9, 6, 4, 3, 1}, T: 9},
		{name: "cnn-short-batch", cfg: nn.Config{Kind: nn.KindCNN, VocabSize: 30, PadID: 1, EmbedDim: 3, Filters: 5, Widths: []int{3, 5},
			Outputs: 1}, lengths: []int{3, 2, 1}, T: 3},
		{name: "cnn-frozen-embedding", cfg: nn.Config{Kind: nn.KindCNN, VocabSize: 30, PadID: 1, EmbedDim: 3, Filters: 3, Widths: []int{1, 2},
			Outputs: 1}, lengths: []int{6, 4}, T: 6, frozen: true},
	}
}

// batch returns a random batch for the case and its 0/1 targets.
func (c parityCase) batch(seed uint64) (*nn.Input, []float32) {
	r := rand.New(rand.NewPCG(seed, 7))
	B := len(c.lengths)
	in := &nn.Input{Lengths: c.lengths, T: c.T}
	if c.cfg.Kind == nn.KindBiGRU {
		in.Dim = c.cfg.InputDim
		in.Feats = make([]float32, c.T*B*in.Dim)
		for t := 0; t < c.T; t++ {
			for b := 0; b < B; b++ {
				if t < c.lengths[b] {
					for k := 0; k < in.Dim; k++ {
						in.Feats[(t*B+b)*in.Dim+k] = float32(r.NormFloat64())
					}
				}
			}
		}
	} else {
		in.IDs = make([]int32, B*c.T)
		for b := 0; b < B; b++ {
			for t := 0; t < c.T; t++ {
				id := int32(c.cfg.PadID)
				if t < c.lengths[b] {
					id = int32(r.IntN(c.cfg.VocabSize))
					if id == int32(c.cfg.PadID) && t == 0 {
						id = 0
					}
				}
				in.IDs[b*c.T+t] = id
			}
		}
	}
	y := make([]float32, B)
	for i := range y {
		y[i] = float32(r.IntN(2))
	}
	return in, y
}

// model builds the case's model on the CPU.
func (c parityCase) model(t testing.TB) nn.Model {
	dev := nn.NewCPU(blas.Gonum{}, 1)
	m, err := nn.NewModel(dev, c.cfg, nn.NewRNG(42))
	if err != nil {
		t.Fatal(err)
	}
	if c.frozen {
		m.(nn.WordModel).WordEmbedding().Freeze()
	}
	return m
}

// relErr is max|a-b| / max(max|b|, 1e-3): the error relative to the tensor's scale.
func relErr(a, b []float32) float64 {
	var d, s float64
	for i := range b {
		d = math.Max(d, math.Abs(float64(a[i])-float64(b[i])))
		s = math.Max(s, math.Abs(float64(b[i])))
		if math.IsNaN(float64(a[i])) != math.IsNaN(float64(b[i])) {
			return math.Inf(1)
		}
	}
	return d / math.Max(s, 1e-3)
}

// checkParity runs one training step of every case on the CPU and on be (in Train mode without
// dropout, so that both compute the same function), and compares the loss, logits and every
// gradient; then one Adam update with clipping, and the weights and moments after it; then an
// evaluation step.
func checkParity(t *testing.T, newBackend func() backend, tol float64) {
	for _, c := range parityCases() {
		t.Run(c.name, func(t *testing.T) {
			m := c.model(t)
			in, y := c.batch(3)
			// CPU
			var runner nn.Runner
			cpu, err := runner.Step(m, in, nn.NewBCEWithLogits(y), nn.Train, nn.NewRNG(1))
			if err != nil {
				t.Fatal(err)
			}
			cpuLogits := slices.Clone(cpu.Logits)
			cpuGrads := map[string][]float32{}
			for _, p := range m.Params() {
				if !p.Frozen {
					cpuGrads[p.Name] = slices.Clone(p.Grad)
				}
			}
			// Device
			be := newBackend()
			tr, err := newTrainer(be, m, nn.AdamConfig{LR: 0.01, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, MaxGradNorm: 0.05})
			if err != nil {
				t.Fatal(err)
			}
			defer tr.Close()
			if err := tr.Push(nil); err != nil {
				t.Fatal(err)
			}
			res, err := tr.Step(in, nn.NewBCEWithLogits(y), nn.Train, nn.NewRNG(1))
			if err != nil {
				t.Fatal(err)
			}
			if e := math.Abs(res.Loss-cpu.Loss) / math.Max(math.Abs(cpu.Loss), 1e-3); e > tol {
				t.Errorf("loss %v, CPU %v", res.Loss, cpu.Loss)
			}
			if e := relErr(res.Logits, cpuLogits); e > tol {
				t.Errorf("logits %v, CPU %v (relative error %.2g)", res.Logits, cpuLogits, e)
			}
			if e := relErr(res.PerExample, cpu.PerExample); e > tol {
				t.Errorf("per-example losses %v, CPU %v", res.PerExample, cpu.PerExample)
			}
			if err := tr.Grads(); err != nil {
				t.Fatal(err)
			}
			for _, p := range m.Params() {
				if p.Frozen {
					continue
				}
				if e := relErr(p.Grad, cpuGrads[p.Name]); e > tol {
					t.Errorf("gradient of %s: relative error %.3g\n device %v\n cpu    %v", p.Name, e, p.Grad, cpuGrads[p.Name])
				}
			}

			// One Adam step (clipping on: the norm is above 0.05) from the CPU's gradients.
			for _, p := range m.Params() {
				if !p.Frozen {
					copy(p.Grad, cpuGrads[p.Name])
				}
			}
			opt, err := nn.NewAdam(nn.AdamConfig{LR: 0.01, MaxGradNorm: 0.05, Workers: 1})
			if err != nil {
				t.Fatal(err)
			}
			if err := opt.Step(m.Params()); err != nil {
				t.Fatal(err)
			}
			cpuW := map[string][]float32{}
			for _, p := range m.Params() {
				cpuW[p.Name] = slices.Clone(p.Data())
			}
			if err := tr.Update(); err != nil {
				t.Fatal(err)
			}
			got, err := nn.NewAdam(nn.AdamConfig{LR: 0.01})
			if err != nil {
				t.Fatal(err)
			}
			if err := tr.Pull(got); err != nil {
				t.Fatal(err)
			}
			for _, p := range m.Params() {
				if e := relErr(p.Data(), cpuW[p.Name]); e > tol {
					t.Errorf("weights of %s after Adam: relative error %.3g", p.Name, e)
				}
			}
			want, have := opt.State(), got.State()
			if len(want) != len(have) {
				t.Fatalf("optimiser state for %d parameters, CPU %d", len(have), len(want))
			}
			for name, s := range want {
				h := have[name]
				if h.Step != s.Step || relErr(h.ExpAvg, s.ExpAvg) > tol || relErr(h.ExpAvgSq, s.ExpAvgSq) > tol {
					t.Errorf("optimiser state of %s: step %d (CPU %d), moments off by %.3g, %.3g", name, h.Step, s.Step,
						relErr(h.ExpAvg, s.ExpAvg), relErr(h.ExpAvgSq, s.ExpAvgSq))
				}
			}

			// Evaluation after the update, from the pulled weights on both sides.
			ev, err := runner.Step(m, in, nn.NewBCEWithLogits(y), nn.Eval, nil)
			if err != nil {
				t.Fatal(err)
			}
			evLogits := slices.Clone(ev.Logits)
			res, err = tr.Step(in, nn.NewBCEWithLogits(y), nn.Eval, nil)
			if err != nil {
				t.Fatal(err)
			}
			if e := relErr(res.Logits, evLogits); e > tol || math.Abs(res.Loss-ev.Loss) > tol*math.Max(ev.Loss, 1e-3) {
				t.Errorf("evaluation: logits %v loss %v, CPU %v %v", res.Logits, res.Loss, evLogits, ev.Loss)
			}
		})
	}
}

func TestParityEmulated(t *testing.T) {
	checkParity(t, func() backend { return newEmu(t) }, 1e-4)
}

// checkKClassParity runs one training step of every case with K = 3 or 5 outputs and softmax
// cross-entropy (a loss without a device kernel: it runs on the host, on the downloaded logits)
// on the CPU and on be, and compares the loss, the K logits of each example, the per-example
// losses and every gradient; then an evaluation step's logits.
func checkKClassParity(t *testing.T, newBackend func() backend, tol float64) {
	for n, c := range parityCases() {
		K := []int{3, 5}[n%2]
		c.cfg.Outputs = K
		t.Run(fmt.Sprintf("%s/K=%d", c.name, K), func(t *testing.T) {
			m := c.model(t)
			in, _ := c.batch(4)
			labels := make([]int, in.B())
			for i := range labels {
				labels[i] = (i * 7) % K
			}
			var runner nn.Runner
			cpu, err := runner.Step(m, in, nn.NewSoftmaxCrossEntropy(labels), nn.Train, nn.NewRNG(1))
			if err != nil {
				t.Fatal(err)
			}
			if len(cpu.Logits) != in.B()*K {
				t.Fatalf("CPU: %d logits for %d examples of %d classes", len(cpu.Logits), in.B(), K)
			}
			cpuLogits, cpuPer := slices.Clone(cpu.Logits), slices.Clone(cpu.PerExample)
			cpuGrads := map[string][]float32{}
			for _, p := range m.Params() {
				if !p.Frozen {
					cpuGrads[p.Name] = slices.Clone(p.Grad)
				}
			}
			tr, err := newTrainer(newBackend(), m, nn.AdamConfig{LR: 0.01, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8})
			if err != nil {
				t.Fatal(err)
			}
			defer tr.Close()
			if err := tr.Push(nil); err != nil {
				t.Fatal(err)
			}
			res, err := tr.Step(in, nn.NewSoftmaxCrossEntropy(labels), nn.Train, nn.NewRNG(1))
			if err != nil {
				t.Fatal(err)
			}
			if e := math.Abs(res.Loss-cpu.Loss) / math.Max(math.Abs(cpu.Loss), 1e-3); e > tol {
				t.Errorf("loss %v, CPU %v", res.Loss, cpu.Loss)
			}
			if len(res.Logits) != len(cpuLogits) || relErr(res.Logits, cpuLogits) > tol {
				t.Errorf("logits %v, CPU %v", res.Logits, cpuLogits)
			}
			if len(res.PerExample) != len(cpuPer) || relErr(res.PerExample, cpuPer) > tol {
				t.Errorf("per-example losses %v, CPU %v", res.PerExample, cpuPer)
			}
			if err := tr.Grads(); err != nil {
				t.Fatal(err)
			}
			for _, p := range m.Params() {
				if !p.Frozen {
					if e := relErr(p.Grad, cpuGrads[p.Name]); e > tol {
						t.Errorf("gradient of %s: relative error %.3g", p.Name, e)
					}
				}
			}
			ev, err := tr.Step(in, nil, nn.Eval, nil)
			if err != nil {
				t.Fatal(err)
			}
			if relErr(ev.Logits, cpuLogits) > tol {
				t.Errorf("evaluation logits %v, CPU %v", ev.Logits, cpuLogits)
			}
		})
	}
}

func TestKClassParityEmulated(t *testing.T) {
	checkKClassParity(t, func() backend { return newEmu(t) }, 1e-4)
}

// customLoss is binary cross-entropy under another type: the host loss path.
type customLoss struct{ *nn.BCEWithLogits }

func (l customLoss) Build(g *G.ExprGraph, z *G.Node) (*G.Node, error) {
	return l.BCEWithLogits.Build(g, z)
}

// TestHostLossPath checks that a loss without a device kernel (the host path, distillation's)
// gives the device BCE's gradients.
func TestHostLossPath(t *testing.T) {
	c := parityCases()[0]
	in, y := c.batch(5)
	grads := map[bool][]float32{}
	for _, host := range []bool{false, true} {
		m := c.model(t)
		tr, err := newTrainer(newEmu(t), m, nn.AdamConfig{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8})
		if err != nil {
			t.Fatal(err)
		}
		if err := tr.Push(nil); err != nil {
			t.Fatal(err)
		}
		var loss nn.Loss = nn.NewBCEWithLogits(y)
		if host {
			loss = customLoss{nn.NewBCEWithLogits(y)}
		}
		if _, err := tr.Step(in, loss, nn.Train, nil); err != nil {
			t.Fatal(err)
		}
		if err := tr.Grads(); err != nil {
			t.Fatal(err)
		}
		for _, p := range m.Params() {
			grads[host] = append(grads[host], p.Grad...)
		}
	}
	if e := relErr(grads[true], grads[false]); e > 1e-6 {
		t.Fatalf("host loss path: gradients off by %.3g", e)
	}
}

// TestDropoutSteps checks training with dropout: the masks are the same for the same seed (a
// resumed run), the loss changes with the seed, and dropout draws one number per step.
func TestDropoutSteps(t *testing.T) {
	for _, c := range parityCases() {
		c.cfg.Dropout = 0.3
		t.Run(c.name, func(t *testing.T) {
			in, y := c.batch(9)
			run := func(seed uint64) (float64, []float32, *nn.RNG) {
				m := c.model(t)
				tr, err := newTrainer(newEmu(t), m, nn.AdamConfig{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8})
				if err != nil {
					t.Fatal(err)
				}
				if err := tr.Push(nil); err != nil {
					t.Fatal(err)
				}
				rng := nn.NewRNG(seed)
				res, err := tr.Step(in, nn.NewBCEWithLogits(y), nn.Train, rng)
				if err != nil {
					t.Fatal(err)
				}
				if err := tr.Grads(); err != nil {
					t.Fatal(err)
				}
				var g []float32
				for _, p := range m.Params() {
					g = append(g, p.Grad...)
				}
				return res.Loss, g, rng
			}
			l1, g1, rng := run(5)
			l2, g2, _ := run(5)
			l3, _, _ := run(6)
			if l1 != l2 || !slices.Equal(g1, g2) {
				t.Fatalf("the same seed gave losses %v and %v", l1, l2)
			}
			if l1 == l3 {
				t.Fatalf("seeds 5 and 6 gave the same loss %v", l1)
			}
			want := nn.NewRNG(5)
			want.Uint64()
			if rng.Uint64() != want.Uint64() {
				t.Fatal("a training step did not draw exactly one number")
			}
			for _, x := range g1 {
				if math.IsNaN(float64(x)) {
					t.Fatal("NaN gradient")
				}
			}
		})
	}
}

// TestTrainerMemory checks that a step gives its buffers back and that the peak covers them.
func TestTrainerMemory(t *testing.T) {
	c := parityCases()[0]
	be := newEmu(t)
	tr, err := newTrainer(be, c.model(t), nn.AdamConfig{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8})
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.Push(nil); err != nil {
		t.Fatal(err)
	}
	held := be.mem.InUse()
	be.mem.ResetPeak()
	in, y := c.batch(1)
	for i := 0; i < 3; i++ {
		if _, err := tr.Step(in, nn.NewBCEWithLogits(y), nn.Train, nil); err != nil {
			t.Fatal(err)
		}
		if err := tr.Update(); err != nil {
			t.Fatal(err)
		}
	}
	if be.mem.InUse() != held || be.mem.PeakBytes() <= held {
		t.Fatalf("in use %d after the steps (%d before), peak %d", be.mem.InUse(), held, be.mem.PeakBytes())
	}
	reserved := be.mem.Reserved()
	if _, err := tr.Step(in, nn.NewBCEWithLogits(y), nn.Train, nil); err != nil {
		t.Fatal(err)
	}
	if be.mem.Reserved() != reserved {
		t.Fatalf("a repeated step took new memory from the driver: %d -> %d", reserved, be.mem.Reserved())
	}
	if err := tr.Close(); err != nil || be.mem.InUse() != 0 {
		t.Fatalf("close: %v, %d bytes still in use", err, be.mem.InUse())
	}
}

// TestTrainerRejectsBadInput checks the errors of bad batches.
func TestTrainerRejectsBadInput(t *testing.T) {
	c := parityCases()[0]
	tr, err := newTrainer(newEmu(t), c.model(t), nn.AdamConfig{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8})
	if err != nil {
		t.Fatal(err)
	}
	in, y := c.batch(1)
	for name, bad := range map[string]*nn.Input{
		"empty":    {T: 3},
		"unsorted": {Lengths: []int{2, 3}, T: 3, IDs: make([]int32, 6)},
		"ids":      {Lengths: []int{2}, T: 3, IDs: make([]int32, 2)},
		"vocab":    {Lengths: []int{1}, T: 1, IDs: []int32{99}},
	} {
		if _, err := tr.Step(bad, nn.NewBCEWithLogits(y[:max(len(bad.Lengths), 1)]), nn.Eval, nil); err == nil {
			t.Errorf("%s batch accepted", name)
		}
	}
	if _, err := tr.Step(in, nil, nn.Train, nil); err == nil {
		t.Error("a training step without a loss was accepted")
	}
	if _, err := tr.Step(in, nn.NewBCEWithLogits(y[:1]), nn.Train, nil); err == nil {
		t.Error("too few targets accepted")
	}
	if _, err := newTrainer(newEmu(t), nil, nn.AdamConfig{}); err == nil {
		t.Error("no model accepted")
	}
}

// checkTraining runs 30 training steps of each model (dropout on, clipping on) on one batch and
// checks that the loss falls, and that Pull brings the trained weights and Adam's state back.
func checkTraining(t *testing.T, newBackend func() backend) {
	for _, c := range parityCases() {
		c.cfg.Dropout = 0.2
		t.Run(c.name, func(t *testing.T) {
			m := c.model(t)
			fcw := m.Params()[len(m.Params())-2]
			before := slices.Clone(fcw.Data())
			tr, err := newTrainer(newBackend(), m, nn.AdamConfig{LR: 0.02, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, MaxGradNorm: 5})
			if err != nil {
				t.Fatal(err)
			}
			defer tr.Close()
			if err := tr.Push(nil); err != nil {
				t.Fatal(err)
			}
			in, y := c.batch(2)
			rng := nn.NewRNG(3)
			var first, last float64
			for i := 0; i < 30; i++ {
				res, err := tr.Step(in, nn.NewBCEWithLogits(y), nn.Train, rng)
				if err != nil {
					t.Fatal(err)
				}
				if i == 0 {
					first = res.Loss
				}
				last = res.Loss
				if err := tr.Update(); err != nil {
					t.Fatal(err)
				}
			}
			if !(last < first*0.7) {
				t.Fatalf("loss %v -> %v after 30 steps on one batch", first, last)
			}
			opt, _ := nn.NewAdam(nn.AdamConfig{})
			if err := tr.Pull(opt); err != nil {
				t.Fatal(err)
			}
			if slices.Equal(before, fcw.Data()) {
				t.Fatal("Pull brought back the initial weights")
			}
			if len(opt.State()) == 0 {
				t.Fatal("no optimiser state")
			}
			for name, s := range opt.State() {
				if s.Step != 30 {
					t.Fatalf("%s: %d Adam steps, want 30", name, s.Step)
				}
			}
		})
	}
}

func TestTrainingEmulated(t *testing.T) {
	checkTraining(t, func() backend { return newEmu(t) })
}
