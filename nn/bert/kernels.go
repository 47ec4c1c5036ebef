package bert

import (
	"fmt"
	"math"
)

// activation returns the feed-forward activation named in config.json, applied in place.
func activation(name string) (func(x []float32), error) {
	switch name {
	case "gelu":
		return geluErf, nil // exact GELU (erf), not an approximation
	case "gelu_new", "gelu_pytorch_tanh":
		return geluTanh, nil
	case "relu":
		return relu, nil
	}
	return nil, fmt.Errorf("activation %q is not supported (gelu, gelu_new, gelu_pytorch_tanh, relu)", name)
}

// geluErfGo is GELU(x) = x Φ(x) in pure Go, by the formula of the C kernel (kernels_cgo.go):
// with a = |x|/√2 and c = erfc(a) from Numerical Recipes' Chebyshev fit (relative error below
// 1.2e-7), GELU is x - x c / 2 for x > 0 and x c / 2 otherwise.
func geluErfGo(x []float32) {
	for i, v := range x {
		a := float32(math.Abs(float64(v))) * 0.70710678118654752
		t := 1 / (1 + 0.5*a)
		p := float32(0.17087277)
		p = p*t - 0.82215223
		p = p*t + 1.48851587
		p = p*t - 1.13520398
		p = p*t + 0.27886807
		p = p*t - 0.18628806
		p = p*t + 0.09678418
		p = p*t + 0.37409196
		p = p*t + 1.00002368
		p = p*t - 1.26551223
		c := t * expf(p-a*a)
		g := 0.5 * v * c
		if v > 0 {
			x[i] = v - g
		} else {
			x[i] = g
		}
	}
}

// geluExact is 0.5 x (1 + erf(x/√2)) in float64, the reference for the tests.
func geluExact(x []float32) {
	for i, v := range x {
		x[i] = float32(0.5 * float64(v) * (1 + math.Erf(float64(v)*math.Sqrt2/2)))
	}
}

// geluTanh is the tanh approximation of GELU (transformers' gelu_new).
func geluTanh(x []float32) {
	const c = 0.7978845608028654 // √(2/π)
	for i, v := range x {
		u := float64(v)
		x[i] = float32(0.5 * u * (1 + math.Tanh(c*(u+0.044715*u*u*u))))
	}
}

func relu(x []float32) {
	for i, v := range x {
		if v < 0 {
			x[i] = 0
		}
	}
}

// layerNorm normalises each row of x (width n) in place: (x - mean) / sqrt(var + eps) * g + b,
// with the biased variance, as torch.nn.LayerNorm. Sums run in float64.
func layerNorm(x []float32, n int, g, b []float32, eps float64) {
	for r := 0; r+n <= len(x); r += n {
		row := x[r : r+n]
		var sum float64
		for _, v := range row {
			sum += float64(v)
		}
		mean := sum / float64(n)
		var ss float64
		for _, v := range row {
			d := float64(v) - mean
			ss += d * d
		}
		inv := 1 / math.Sqrt(ss/float64(n)+eps)
		for i, v := range row {
			row[i] = float32((float64(v)-mean)*inv)*g[i] + b[i]
		}
	}
}

// softmaxRowsGo applies a softmax to each row of s (width n) in place, in pure Go.
func softmaxRowsGo(s []float32, n int) {
	for r := 0; r+n <= len(s); r += n {
		row := s[r : r+n]
		m := row[0]
		for _, v := range row[1:] {
			m = max(m, v)
		}
		var sum float32
		for i, v := range row {
			e := expf(v - m)
			row[i] = e
			sum += e
		}
		inv := 1 / sum
		for i := range row {
			row[i] *= inv
		}
	}
}

// expf is e^x in float32 for x <= 0 (the softmax's range), within about 1 ulp: Cody-Waite range
// reduction x = k ln2 + r around the nearest integer k, |r| <= ln2/2, and a degree-6 polynomial
// (Cephes' expf). Below -87 (e^x < 2^-125) it returns 0: such terms vanish next to the
// softmax's largest term, 1. The C kernels use the same formula.
func expf(x float32) float32 {
	if x < -87 {
		return 0
	}
	const (
		log2e = 1.44269504088896341
		ln2hi = 0.693359375
		ln2lo = -2.12194440e-4
	)
	fk := float32(math.RoundToEven(float64(x * log2e)))
	r := x - fk*ln2hi - fk*ln2lo
	p := float32(1.9875691500e-4)
	p = p*r + 1.3981999507e-3
	p = p*r + 8.3334519073e-3
	p = p*r + 4.1665795894e-2
	p = p*r + 1.6666665459e-1
	p = p*r + 5.0000001201e-1
	y := p*r*r + r + 1
	return math.Float32frombits(uint32(int32(math.Float32bits(y)) + int32(fk)<<23))
}

// sinusoidal returns DistilBERT's fixed position embeddings: row p, column j holds
// sin(p / 10000^(2⌊j/2⌋/dim)) for even j and the cosine for odd j.
func sinusoidal(positions, dim int) []float32 {
	out := make([]float32, positions*dim)
	for p := 0; p < positions; p++ {
		for j := 0; j < dim; j++ {
			a := float64(p) / math.Pow(10000, float64(2*(j/2))/float64(dim))
			if j%2 == 0 {
				out[p*dim+j] = float32(math.Sin(a))
			} else {
				out[p*dim+j] = float32(math.Cos(a))
			}
		}
	}
	return out
}
