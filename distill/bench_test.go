package distill

import (
	"math/rand/v2"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// BenchmarkKDLoss times the KD loss op's forward and backward pass on a batch of 64 logits,
// graph building included (as the trainer builds it every step).
func BenchmarkKDLoss(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	const n = 64
	z := make([]float32, n)
	teacher := make([]float32, n)
	labels := make([]float32, n)
	for i := range z {
		z[i], teacher[i], labels[i] = float32(r.NormFloat64()), float32(2*r.NormFloat64()), float32(r.IntN(2))
	}
	l := &KD{Teacher: teacher, Labels: labels, T: 2, Alpha: 0.5}
	for b.Loop() {
		g := G.NewGraph()
		zn := G.NewTensor(g, tensor.Float32, 2, G.WithShape(n, 1), G.WithName("z"),
			G.WithValue(tensor.New(tensor.WithShape(n, 1), tensor.WithBacking(z))))
		cost, err := l.Build(g, zn)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := G.Grad(cost, zn); err != nil {
			b.Fatal(err)
		}
		vm := G.NewTapeMachine(g)
		if err := vm.RunAll(); err != nil {
			b.Fatal(err)
		}
		vm.Close()
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "examples/s")
}
