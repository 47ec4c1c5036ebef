package nn

import "math"

// Element-wise activations of the fused recurrent ops.
//
// The float32 path (training) uses a rational approximation of tanh (the one Eigen, and so
// TensorFlow, use: a degree-13 odd polynomial over a degree-6 even one on [-7.9, 7.9]), and
// sigmoid(x) = 0.5 + 0.5*tanh(x/2). Both are branch-free multiply-adds and one division, several
// times faster than math.Exp-based forms in Go, with an absolute error below 4e-7 everywhere
// (TestFastActivations). The float64 path (the gradient checks) uses the exact math package
// functions, so finite differences see a smooth function.
//
// The functions work on whole slices so that the per-type choice is made once per row, not
// once per element. On amd64 with AVX2 and FMA, the float32 ones run 8 lanes at a time in
// assembly (fastmath_amd64.s), the same approximation; elsewhere, and for the tails, in Go.

// float is the element type of the fused ops' kernels: float32 for training, float64 for the
// finite-difference gradient checks, which run the very same code.
type float interface{ ~float32 | ~float64 }

const (
	tanhClamp = 7.90531110763549805
	tanhA1    = 4.89352455891786e-03
	tanhA3    = 6.37261928875436e-04
	tanhA5    = 1.48572235717979e-05
	tanhA7    = 5.12229709037114e-08
	tanhA9    = -8.60467152213735e-11
	tanhA11   = 2.00018790482477e-13
	tanhA13   = -2.76076847742355e-16
	tanhB0    = 4.89352518554385e-03
	tanhB2    = 2.26843463243900e-03
	tanhB4    = 1.18534705686654e-04
	tanhB6    = 1.19825839466702e-06
)

// tanh32 is a fast float32 tanh (absolute error < 4e-7, about 3 ulp near ±1).
func tanh32(x float32) float32 {
	x = min(max(x, -tanhClamp), tanhClamp)
	x2 := x * x
	p := x2*tanhA13 + tanhA11
	p = p*x2 + tanhA9
	p = p*x2 + tanhA7
	p = p*x2 + tanhA5
	p = p*x2 + tanhA3
	p = p*x2 + tanhA1
	p *= x
	q := x2*tanhB6 + tanhB4
	q = q*x2 + tanhB2
	q = q*x2 + tanhB0
	return p / q
}

// sigmoid32 is a fast float32 logistic function, 0.5 + 0.5*tanh(x/2).
func sigmoid32(x float32) float32 { return 0.5 + 0.5*tanh32(0.5*x) }

// sigmoid64 is the exact logistic function.
func sigmoid64(x float64) float64 { return 1 / (1 + math.Exp(-x)) }

// sigmoidInPlace replaces every v[i] by sigmoid(v[i]).
func sigmoidInPlace[F float](v []F) {
	switch s := any(v).(type) {
	case []float32:
		for i := sigmoidVec32(s, s); i < len(s); i++ {
			s[i] = sigmoid32(s[i])
		}
	case []float64:
		for i, x := range s {
			s[i] = sigmoid64(x)
		}
	}
}

// tanhInPlace replaces every v[i] by tanh(v[i]).
func tanhInPlace[F float](v []F) {
	switch s := any(v).(type) {
	case []float32:
		for i := tanhVec32(s, s); i < len(s); i++ {
			s[i] = tanh32(s[i])
		}
	case []float64:
		for i, x := range s {
			s[i] = math.Tanh(x)
		}
	}
}

// tanhTo sets dst[i] = tanh(src[i]); dst must be at least as long as src.
func tanhTo[F float](dst, src []F) {
	switch s := any(src).(type) {
	case []float32:
		d := any(dst).([]float32)
		d = d[:len(s)]
		for i := tanhVec32(d, s); i < len(s); i++ {
			d[i] = tanh32(s[i])
		}
	case []float64:
		d := any(dst).([]float64)
		d = d[:len(s)]
		for i, x := range s {
			d[i] = math.Tanh(x)
		}
	}
}
