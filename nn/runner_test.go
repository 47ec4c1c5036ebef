package nn

import (
	"math"
	"runtime"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// tinyBatch returns a batch of B sequences over a vocabulary of V ids with descending lengths,
// and alternating labels.
func tinyBatch(rng *RNG, V, padID int, lengths []int) (*Input, []float32) {
	T := lengths[0]
	in := &Input{Lengths: lengths, T: T, IDs: make([]int32, len(lengths)*T)}
	y := make([]float32, len(lengths))
	for b, l := range lengths {
		for t := 0; t < T; t++ {
			id := int32(padID)
			if t < l {
				for id == int32(padID) {
					id = int32(rng.IntN(V))
				}
			}
			in.IDs[b*T+t] = id
		}
		y[b] = float32(b % 2)
	}
	return in, y
}

func TestRunnerTrainsCNN(t *testing.T) {
	dev := testCPU(t)
	cfg, err := DefaultConfig(KindCNN, 50)
	if err != nil {
		t.Fatal(err)
	}
	cfg.EmbedDim, cfg.Filters, cfg.Dropout = 8, 4, 0.5
	rng := NewRNG(1)
	m, err := NewModel(dev, cfg, rng)
	if err != nil {
		t.Fatal(err)
	}
	in, y := tinyBatch(rng, 50, 1, []int{12, 9, 7, 3, 1})
	loss := NewBCEWithLogits(y)
	opt, err := NewAdam(AdamConfig{LR: 1e-2})
	if err != nil {
		t.Fatal(err)
	}
	var r Runner
	var first, last float64
	for step := 0; step < 30; step++ {
		res, err := r.Step(m, in, loss, Train, rng)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Logits) != 5 || len(res.PerExample) != 5 {
			t.Fatalf("got %d logits, %d per-example losses", len(res.Logits), len(res.PerExample))
		}
		var sum float64
		for _, l := range res.PerExample {
			sum += float64(l)
		}
		if math.Abs(sum/5-res.Loss) > 1e-6 {
			t.Fatalf("mean of per-example losses %v != loss %v", sum/5, res.Loss)
		}
		if step == 0 {
			first = res.Loss
			t.Logf("graph of %d nodes, build %.0f us, forward %.0f us, backward %.0f us", res.Nodes,
				res.BuildSeconds*1e6, res.ForwardSeconds*1e6, res.BackwardSeconds*1e6)
		}
		last = res.Loss
		if err := opt.Step(m.Params()); err != nil {
			t.Fatal(err)
		}
		if pad := m.(WordModel).WordEmbedding().Weight.Data()[cfg.EmbedDim : 2*cfg.EmbedDim]; !allZero(pad) {
			t.Fatalf("step %d: the <pad> row is no longer zero: %v", step, pad)
		}
	}
	t.Logf("loss %.4f -> %.4f", first, last)
	if !(last < first/2) {
		t.Fatalf("training did not reduce the loss: %.4f -> %.4f", first, last)
	}
	// Eval: deterministic, no gradients needed, dropout off.
	a, err := r.Step(m, in, loss, Eval, nil)
	if err != nil {
		t.Fatal(err)
	}
	la := append([]float32(nil), a.Logits...)
	b, err := r.Step(m, in, nil, Eval, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range la {
		if la[i] != b.Logits[i] {
			t.Fatalf("eval logits differ between runs: %v vs %v", la, b.Logits)
		}
	}
	if !math.IsNaN(b.Loss) {
		t.Fatalf("loss without a Loss = %v, want NaN", b.Loss)
	}
}

func allZero(x []float32) bool {
	for _, v := range x {
		if v != 0 {
			return false
		}
	}
	return true
}

// TestRunnerSteadyMemory runs many steps and checks that the live heap does not grow: every
// graph and machine is dropped, and the layers reuse their buffers.
func TestRunnerSteadyMemory(t *testing.T) {
	dev := testCPU(t)
	cfg, _ := DefaultConfig(KindCNN, 500)
	cfg.EmbedDim, cfg.Filters = 16, 8
	rng := NewRNG(1)
	m, _ := NewModel(dev, cfg, rng)
	in, y := tinyBatch(rng, 500, 1, []int{40, 31, 30, 22, 9, 3})
	loss := NewBCEWithLogits(y)
	opt, _ := NewAdam(AdamConfig{})
	var r Runner
	heap := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	steps := func(n int) {
		for i := 0; i < n; i++ {
			if _, err := r.Step(m, in, loss, Train, rng); err != nil {
				t.Fatal(err)
			}
			if err := opt.Step(m.Params()); err != nil {
				t.Fatal(err)
			}
		}
	}
	steps(100)
	before := heap()
	steps(800)
	after := heap()
	t.Logf("live heap after 100 steps %d KiB, after 900 steps %d KiB", before>>10, after>>10)
	if after > before+(512<<10) {
		t.Fatalf("the live heap grew by %d KiB over 800 steps", (after-before)>>10)
	}
}

// A frozen embedding gets no gradient and stays as it is; the rest still trains.
func TestRunnerFrozenEmbedding(t *testing.T) {
	dev := testCPU(t)
	for _, kind := range []string{KindCNN, KindLSTM} {
		cfg, _ := DefaultConfig(kind, 60)
		cfg.EmbedDim, cfg.Filters, cfg.Hidden, cfg.Layers = 6, 3, 5, 2
		rng := NewRNG(4)
		m, err := NewModel(dev, cfg, rng)
		if err != nil {
			t.Fatal(err)
		}
		emb := m.(WordModel).WordEmbedding()
		emb.Freeze()
		before := append([]float32(nil), emb.Weight.Data()...)
		fcBefore := append([]float32(nil), m.Params()[len(m.Params())-2].Data()...)
		in, y := tinyBatch(rng, 60, 1, []int{7, 5, 2})
		opt, _ := NewAdam(AdamConfig{})
		var r Runner
		for i := 0; i < 3; i++ {
			if _, err := r.Step(m, in, NewBCEWithLogits(y), Train, rng); err != nil {
				t.Fatalf("%s: %v", kind, err)
			}
			if err := opt.Step(m.Params()); err != nil {
				t.Fatal(err)
			}
		}
		for i, v := range emb.Weight.Data() {
			if v != before[i] {
				t.Fatalf("%s: the frozen embedding changed", kind)
			}
		}
		if emb.Weight.Grad != nil {
			t.Fatalf("%s: the frozen embedding has a gradient", kind)
		}
		same := true
		for i, v := range m.Params()[len(m.Params())-2].Data() {
			same = same && v == fcBefore[i]
		}
		if same {
			t.Fatalf("%s: fc.weight did not train", kind)
		}
	}
}

func TestRunnerRejectsBadBatches(t *testing.T) {
	dev := testCPU(t)
	cfg, _ := DefaultConfig(KindLSTM, 20)
	cfg.EmbedDim, cfg.Hidden, cfg.Layers = 4, 3, 1
	m, _ := NewModel(dev, cfg, NewRNG(1))
	var r Runner
	for name, in := range map[string]*Input{
		"unsorted":        {Lengths: []int{2, 3}, T: 3, IDs: make([]int32, 6)},
		"too long":        {Lengths: []int{4, 3}, T: 3, IDs: make([]int32, 6)},
		"empty":           {T: 3},
		"missing ids":     {Lengths: []int{3, 3}, T: 3, IDs: make([]int32, 5)},
		"id out of vocab": {Lengths: []int{1}, T: 1, IDs: []int32{20}},
	} {
		if _, err := r.Step(m, in, NewBCEWithLogits(make([]float32, len(in.Lengths))), Train, NewRNG(1)); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	in := &Input{Lengths: []int{2}, T: 2, IDs: []int32{3, 4}}
	if _, err := r.Step(m, in, nil, Train, NewRNG(1)); err == nil {
		t.Error("a training step without a loss: no error")
	}
	if _, err := r.Step(m, in, NewBCEWithLogits([]float32{1, 0}), Eval, nil); err == nil {
		t.Error("2 targets for 1 logit: no error")
	}
}

// mseLoss is a loss made of Gorgonia's own ops, as another package would plug one in.
type mseLoss struct{ target []float32 }

func (l mseLoss) Build(g *G.ExprGraph, logits *G.Node) (*G.Node, error) {
	t := G.NewMatrix(g, tensor.Float32, G.WithShape(logits.Shape()...), G.WithName("target"),
		G.WithValue(tensor.New(tensor.WithShape(logits.Shape()...), tensor.WithBacking(l.target))))
	d, err := G.Sub(logits, t)
	if err != nil {
		return nil, err
	}
	sq, err := G.Square(d)
	if err != nil {
		return nil, err
	}
	return G.Mean(sq)
}

func TestRunnerCustomLoss(t *testing.T) {
	dev := testCPU(t)
	cfg, _ := DefaultConfig(KindCNN, 40)
	cfg.EmbedDim, cfg.Filters, cfg.Dropout = 6, 3, 0
	rng := NewRNG(8)
	m, _ := NewModel(dev, cfg, rng)
	in, _ := tinyBatch(rng, 40, 1, []int{8, 6, 5, 2})
	target := []float32{2, -1, 0.5, 3}
	var r Runner
	ev, err := r.Step(m, in, nil, Eval, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := append([]float32(nil), ev.Logits...)
	opt, _ := NewAdam(AdamConfig{LR: 1e-2})
	var first float64
	for step := 0; step < 40; step++ {
		res, err := r.Step(m, in, mseLoss{target}, Train, rng)
		if err != nil {
			t.Fatal(err)
		}
		if step == 0 {
			// The logits come out intact although the loss's ops may overwrite them in place.
			var mse float64
			for i, z := range res.Logits {
				if z != want[i] {
					t.Fatalf("train-step logits %v, eval logits %v", res.Logits, want)
				}
				mse += (float64(z) - float64(target[i])) * (float64(z) - float64(target[i])) / 4
			}
			if math.Abs(mse-res.Loss) > 1e-5 {
				t.Fatalf("loss %v, want mean squared error %v", res.Loss, mse)
			}
			first = res.Loss
		}
		if res.PerExample != nil {
			t.Fatal("per-example losses from a loss that does not report them")
		}
		if err := opt.Step(m.Params()); err != nil {
			t.Fatal(err)
		}
		if step == 39 && !(res.Loss < first/4) {
			t.Fatalf("the squared error did not go down: %v -> %v", first, res.Loss)
		}
	}
}
