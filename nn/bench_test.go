package nn

import (
	"testing"

	G "gorgonia.org/gorgonia"
)

// Benchmarks at the recipe's shapes: B=64, T=200, E=100, 3x100 filters of widths 3/4/5,
// vocabulary 25,002. GFLOP/s counts the nominal work of a dense implementation (TrainFLOPs).

const benchB, benchT, benchV = 64, 200, 25002

// benchInput returns a batch of full-length (T) random sequences.
func benchInput(T int) *Input {
	rng := NewRNG(9)
	lengths := make([]int, benchB)
	for i := range lengths {
		lengths[i] = T
	}
	in, _ := tinyBatch(rng, benchV, DefaultPadID, lengths)
	return in
}

// BenchmarkTextCNNOp is the fused op alone, forward and backward, on a graph compiled once.
// (Blocks of 256 to 1024 rows measured alike; one GEMM against all widths' taps zero-padded to
// the widest was about 15% slower than one GEMM per width.)
func BenchmarkTextCNNOp(b *testing.B) {
	dev := testCPU(b)
	cfg, _ := DefaultConfig(KindCNN, benchV)
	c := NewTextCNN(dev, "convs.", cfg.EmbedDim, cfg.Filters, cfg.Widths)
	c.Init(NewRNG(1))
	in := benchInput(benchT)
	g := G.NewGraph()
	xv := make([]float32, benchB*benchT*cfg.EmbedDim)
	r := NewRNG(2)
	for i := range xv {
		xv[i] = float32(r.NormFloat64())
	}
	x := input32(g, "x", xv, benchB*benchT, cfg.EmbedDim)
	var params G.Nodes
	for _, p := range c.Params() {
		n, err := paramNode(g, p)
		if err != nil {
			b.Fatal(err)
		}
		params = append(params, n)
	}
	y, err := c.Apply(x, params, in.Lengths, benchT, WithInputGrad)
	if err != nil {
		b.Fatal(err)
	}
	s, _ := G.Sum(y)
	if _, err := G.Grad(s, append(G.Nodes{x}, params...)...); err != nil {
		b.Fatal(err)
	}
	vm := G.NewTapeMachine(g)
	defer vm.Close()
	run := func() {
		vm.Reset()
		if err := vm.RunAll(); err != nil {
			b.Fatal(err)
		}
	}
	run()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		run()
	}
	flops := TrainFLOPs(cfg, in) - 3*2*benchB*300 // the convolutions only
	b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}

// BenchmarkEmbeddingOp is the lookup (time-major) and its backward into the gradient of a
// 25,002 x 100 table, the ops' Do called directly.
func BenchmarkEmbeddingOp(b *testing.B) {
	e := NewEmbedding("embedding.", benchV, 100, DefaultPadID)
	e.Init(NewRNG(1))
	in := benchInput(benchT)
	g := G.NewGraph()
	y, err := e.Forward(g, in.IDs, benchB, benchT, TimeMajor)
	if err != nil {
		b.Fatal(err)
	}
	fwd := y.Op().(*embedOp)
	bwd := fwd.backward()
	dy := dense(make([]float32, benchB*benchT*100), benchB*benchT, 100)
	step := func() {
		if _, err := fwd.Do(e.Weight.Value); err != nil {
			b.Fatal(err)
		}
		if _, err := bwd.Do(dy); err != nil {
			b.Fatal(err)
		}
	}
	step() // the buffers are allocated once
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		step()
	}
	b.ReportMetric(float64(benchB*benchT*b.N)/b.Elapsed().Seconds(), "tokens/s")
}

// benchTrainStep times full training steps (graph build, forward, backward, Adam) of a model.
func benchTrainStep(b *testing.B, kind string, T int) {
	dev := testCPU(b)
	cfg, _ := DefaultConfig(kind, benchV)
	m, err := NewModel(dev, cfg, NewRNG(1))
	if err != nil {
		b.Fatal(err)
	}
	in := benchInput(T)
	y := make([]float32, benchB)
	for i := range y {
		y[i] = float32(i % 2)
	}
	loss := NewBCEWithLogits(y)
	opt, _ := NewAdam(AdamConfig{})
	rng := NewRNG(3)
	var r Runner
	var build, fwd, bwd float64
	step := func() {
		res, err := r.Step(m, in, loss, Train, rng)
		if err != nil {
			b.Fatal(err)
		}
		build += res.BuildSeconds
		fwd += res.ForwardSeconds
		bwd += res.BackwardSeconds
		if err := opt.Step(m.Params()); err != nil {
			b.Fatal(err)
		}
	}
	step()
	build, fwd, bwd = 0, 0, 0
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		step()
	}
	n := float64(b.N)
	b.ReportMetric(TrainFLOPs(cfg, in)*n/b.Elapsed().Seconds()/1e9, "GFLOP/s")
	b.ReportMetric(float64(in.Tokens())*n/b.Elapsed().Seconds(), "tokens/s")
	b.ReportMetric(build/n*1e6, "build-us")
	b.ReportMetric(fwd/n*1e3, "fwd-ms")
	b.ReportMetric(bwd/n*1e3, "bwd-ms")
}

func BenchmarkCNNTrainStep(b *testing.B) { benchTrainStep(b, KindCNN, benchT) }

// BenchmarkRunnerOverhead is a step of a tiny model: the graph build, differentiation and
// compilation dominate.
func BenchmarkRunnerOverhead(b *testing.B) {
	dev := testCPU(b)
	cfg, _ := DefaultConfig(KindCNN, 50)
	cfg.EmbedDim, cfg.Filters = 4, 2
	m, _ := NewModel(dev, cfg, NewRNG(1))
	in, y := tinyBatch(NewRNG(2), 50, 1, []int{8, 6, 5, 2})
	loss := NewBCEWithLogits(y)
	rng := NewRNG(3)
	var r Runner
	var build float64
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		res, err := r.Step(m, in, loss, Train, rng)
		if err != nil {
			b.Fatal(err)
		}
		build += res.BuildSeconds
	}
	b.ReportMetric(build/float64(b.N)*1e6, "build-us")
}

func BenchmarkLSTMTrainStep(b *testing.B) { benchTrainStep(b, KindLSTM, benchT) }
