package nn

import "testing"

// BenchmarkAdamStep: one Adam update of the recipe's embedding (25,000 x 100 weights).
func BenchmarkAdamStep(b *testing.B) {
	p := NewParam("embedding.weight", 25000, 100)
	for i := range p.Grad {
		p.Grad[i] = float32(i%7) * 1e-3
	}
	opt, err := NewAdam(AdamConfig{Workers: 1})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(4 * p.Size()))
	for b.Loop() {
		if err := opt.Step([]*Param{p}); err != nil {
			b.Fatal(err)
		}
	}
}
