package nn

import (
	"fmt"
	"math/rand/v2"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/sentibench/sentibench/internal/blas"
)

// BenchmarkLSTM times the recipe's LSTM (E=100, H=256, 2 layers, bidirectional, B=64, T=200)
// inside its op: training step (forward + backward) and evaluation (forward only), with all
// sequences full length or lengths varied in [T/2, T], and OpenBLAS at 1 or 2 threads.
func BenchmarkLSTM(b *testing.B) {
	for _, train := range []bool{true, false} {
		for _, varied := range []bool{false, true} {
			for _, tw := range [][2]int{{1, 2}, {2, 2}, {2, 1}} {
				name := fmt.Sprintf("%s/%s/blas%d_workers%d", map[bool]string{true: "train", false: "eval"}[train],
					map[bool]string{true: "varied", false: "full"}[varied], tw[0], tw[1])
				b.Run(name, func(b *testing.B) {
					benchRNN(b, cellLSTM, 100, 256, 2, 64, 200, train, varied, true, tw[0], tw[1])
				})
			}
		}
	}
}

// BenchmarkLSTMGraphStep is BenchmarkLSTM's training step (full lengths, OpenBLAS at 1 thread,
// 2 workers) run the way the step runner runs it: a new graph per batch, Forward, a scalar loss
// on the final states, gorgonia.Grad, a TapeMachine with BindDualValues, and the gradients
// copied into Param.Grad. The difference with the op alone is Gorgonia's own cost, and its
// allocations (the parameters' gradient values among them).
func BenchmarkLSTMGraphStep(b *testing.B) {
	const T, B, E, H = 200, 64, 100, 256
	impl, err := blas.Load("auto")
	if err != nil {
		b.Fatal(err)
	}
	impl.SetThreads(1)
	defer impl.SetThreads(2)
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
		final, _, err := l.Forward(xn, lengths, T, Train, rng, false)
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
	b.ReportMetric((cpuSeconds()-cpu0)/b.Elapsed().Seconds(), "cores")
}
