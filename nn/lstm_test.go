package nn

import (
	"math/rand/v2"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/sentibench/sentibench/internal/blas"
)

// BenchmarkLSTM times the recipe's LSTM (E=100, H=256, 2 layers, bidirectional, dropout 0.5,
// B=64, T=200) inside its op: a training step (forward + backward) and an evaluation pass
// (forward only), with all sequences full length or lengths varied in [T/2, T].
//
// workers2 is the op's own policy on this 2-core machine: the two directions concurrent, each
// on a single-threaded BLAS (the op sets it, whatever the BLAS had: 2 threads here).
// workers1_blas2 is the alternative it was measured against: the directions in turn, each
// product on a two-threaded OpenBLAS.
func BenchmarkLSTM(b *testing.B) {
	for _, mode := range []string{"train", "eval"} {
		for _, lengths := range []string{"full", "varied"} {
			for _, cfg := range []struct {
				name             string
				threads, workers int
			}{{"workers2", 2, 2}, {"workers1_blas2", 2, 1}} {
				if lengths == "varied" && cfg.workers == 1 {
					continue
				}
				b.Run(mode+"/"+lengths+"/"+cfg.name, func(b *testing.B) {
					benchRNN(b, cellLSTM, 100, 256, 2, 64, 200, mode == "train", lengths == "varied", true, cfg.threads, cfg.workers)
				})
			}
		}
	}
}

// BenchmarkLSTMGraphStep is BenchmarkLSTM's training step (full lengths, 2 workers) run the way the step runner runs it: a new graph per batch, Forward, a scalar loss
// on the final states, gorgonia.Grad, a TapeMachine with BindDualValues, and the gradients
// copied into Param.Grad. The difference with the op alone is Gorgonia's own cost, and its
// allocations (the parameters' gradient values among them).
func BenchmarkLSTMGraphStep(b *testing.B) {
	const T, B, E, H = 200, 64, 100, 256
	impl, err := blas.Load("auto")
	if err != nil {
		b.Fatal(err)
	}
	l, err := NewLSTM(NewCPU(impl, 2), "rnn.", E, H, 2, true, 0.5)
	if err != nil {
		b.Fatal(err)
	}
	l.Init(NewRNG(1))
	r := rand.New(rand.NewPCG(1, 2))
	x := make([]float32, T*B*E)
	for i := range x {
		x[i] = r.Float32()*2 - 1
	}
	rf := make([]float32, B*2*H)
	for i := range rf {
		rf[i] = r.Float32() - 0.5
	}
	lengths := make([]int, B)
	for i := range lengths {
		lengths[i] = T
	}
	rng := NewRNG(3)
	step := func() {
		g := G.NewGraph()
		xn := G.NewMatrix(g, tensor.Float32, G.WithShape(T*B, E), G.WithName("x"),
			G.WithValue(tensor.New(tensor.WithShape(T*B, E), tensor.WithBacking(x))))
		final, err := l.Forward(xn, lengths, T, Train, rng)
		if err != nil {
			b.Fatal(err)
		}
		rn := G.NewMatrix(g, tensor.Float32, G.WithShape(B, 2*H), G.WithName("r"),
			G.WithValue(tensor.New(tensor.WithShape(B, 2*H), tensor.WithBacking(rf))))
		loss := G.Must(G.Sum(G.Must(G.HadamardProd(final, rn))))
		var nodes G.Nodes
		for _, p := range l.Params() {
			n, err := paramNode(g, p)
			if err != nil {
				b.Fatal(err)
			}
			nodes = append(nodes, n)
		}
		wrt := append(G.Nodes{xn}, nodes...)
		if _, err := G.Grad(loss, wrt...); err != nil {
			b.Fatal(err)
		}
		m := G.NewTapeMachine(g, G.BindDualValues(wrt...))
		if err := m.RunAll(); err != nil {
			b.Fatal(err)
		}
		for i, p := range l.Params() {
			gv, err := nodes[i].Grad()
			if err != nil {
				b.Fatal(err)
			}
			copy(p.Grad, gv.Data().([]float32))
		}
		m.Close()
	}
	step()
	b.ReportAllocs()
	cpu0 := cpuSeconds()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		step()
	}
	b.StopTimer()
	sec := b.Elapsed().Seconds() / float64(b.N)
	b.ReportMetric(rnnFLOPs(l.s, T*B, true)/sec/1e9, "GFLOP/s")
	cpu := cpuSeconds() - cpu0
	b.ReportMetric(cpu/b.Elapsed().Seconds(), "cores")
	b.ReportMetric(cpu/float64(b.N), "cpu-s/op")
}
