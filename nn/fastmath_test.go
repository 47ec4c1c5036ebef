package nn

import (
	"math"
	"testing"
)

// TestFastActivations checks the float32 tanh and sigmoid against the float64 math package
// over the whole useful range and a little beyond, and their limits.
func TestFastActivations(t *testing.T) {
	var worstT, worstS float64
	for x := -20.0; x <= 20.0; x += 1e-4 {
		xf := float32(x)
		et := math.Abs(float64(tanh32(xf)) - math.Tanh(float64(xf)))
		es := math.Abs(float64(sigmoid32(xf)) - sigmoid64(float64(xf)))
		worstT = max(worstT, et)
		worstS = max(worstS, es)
	}
	t.Logf("max abs error: tanh %.3g, sigmoid %.3g", worstT, worstS)
	if worstT > 4e-7 || worstS > 4e-7 {
		t.Fatalf("max abs error: tanh %.3g, sigmoid %.3g, want < 4e-7", worstT, worstS)
	}
	// Relative accuracy near zero (tanh(x) ~ x), and exact limits far out.
	for _, x := range []float32{1e-6, -3e-5, 1e-3} {
		if r := math.Abs(float64(tanh32(x))/math.Tanh(float64(x)) - 1); r > 1e-6 {
			t.Errorf("tanh32(%g): relative error %.3g", x, r)
		}
	}
	inf := float32(math.Inf(1))
	if tanh32(inf) > 1 || tanh32(-inf) < -1 || sigmoid32(inf) > 1 || sigmoid32(-inf) < 0 {
		t.Errorf("limits: tanh32(±inf) = %v %v, sigmoid32(±inf) = %v %v", tanh32(inf), tanh32(-inf), sigmoid32(inf), sigmoid32(-inf))
	}
	v := []float32{-1, 0, 2}
	sigmoidInPlace(v)
	if math.Abs(float64(v[1])-0.5) > 1e-7 || math.Abs(float64(v[2])-sigmoid64(2)) > 3e-7 {
		t.Errorf("sigmoidInPlace = %v", v)
	}
	w := []float64{-1, 0, 2}
	tanhInPlace(w)
	if w[0] != math.Tanh(-1) || w[2] != math.Tanh(2) {
		t.Errorf("tanhInPlace float64 = %v", w)
	}
}

// TestFastActivationSlices checks the slice functions, which run the assembly versions on
// amd64 with AVX2 (tails of any length in Go), against the float64 math package.
func TestFastActivationSlices(t *testing.T) {
	for _, n := range []int{1, 7, 8, 9, 31, 1000} {
		src := make([]float32, n)
		for i := range src {
			src[i] = float32(i%97)*0.37 - 18 + float32(n%5)*0.01
		}
		tn := make([]float32, n)
		tanhTo(tn, src)
		sg := append([]float32(nil), src...)
		sigmoidInPlace(sg)
		th := append([]float32(nil), src...)
		tanhInPlace(th)
		for i, x := range src {
			wt, ws := math.Tanh(float64(x)), sigmoid64(float64(x))
			if math.Abs(float64(tn[i])-wt) > 4e-7 || math.Abs(float64(th[i])-wt) > 4e-7 || math.Abs(float64(sg[i])-ws) > 4e-7 {
				t.Fatalf("n=%d, x=%g: tanhTo %g, tanhInPlace %g (want %g), sigmoid %g (want %g)", n, x, tn[i], th[i], wt, sg[i], ws)
			}
		}
	}
	t.Logf("assembly (AVX2+FMA) in use: %v", hasVectorActivations())
}

func BenchmarkActivations(b *testing.B) {
	v := make([]float32, 4096)
	for i := range v {
		v[i] = float32(i%200)/20 - 5
	}
	b.Run("tanh32", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			tanhTo(v, v)
			v[0] = -5
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(v)), "ns/elem")
	})
	b.Run("sigmoid32", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			sigmoidInPlace(v)
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(v)), "ns/elem")
	})
}
