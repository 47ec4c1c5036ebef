package sgemm

import (
	"runtime"
	"testing"
)

// TestSubnormalsFlushed checks that the kernels treat subnormal operands as zero and flush
// subnormal products to zero (MXCSR's DAZ and FTZ bits, set for the kernel's duration: see
// flushSubnormals in asm/gen.go), and that the caller's floating-point mode is back afterwards.
// Computed exactly, each C entry below would be 64 * 1e-39 * 1e30 = 6.4e-8 (a subnormal A) or
// 64 * 1e-20 * 1e-20 = 6.4e-39 (products that underflow).
func TestSubnormalsFlushed(t *testing.T) {
	runtime.LockOSThread() // the mode checked afterwards is this thread's
	defer runtime.UnlockOSThread()
	const m, n, k = 24, 64, 64
	for _, isa := range kernels(t) {
		for _, tc := range []struct {
			name string
			a, b float32
		}{
			{"subnormal operand", 1e-39, 1e30},
			{"subnormal products", 1e-20, 1e-20},
		} {
			a, b, c := fill(m*k, tc.a), fill(k*n, tc.b), fill(m*n, 1)
			Sgemm(isa, 1, false, false, m, n, k, 1, a, k, b, n, 0, c, n)
			for i, v := range c {
				if v != 0 {
					t.Fatalf("%v, %s: C[%d] = %g, want 0 (subnormals flushed)", isa, tc.name, i, v)
				}
			}
		}
		if got := multiply(1e-20, 1e-20); got == 0 {
			t.Fatalf("%v: after the product, 1e-20*1e-20 = 0 in Go: the kernel left flush-to-zero on", isa)
		}
	}
}

func fill(n int, v float32) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = v
	}
	return s
}

//go:noinline
func multiply(x, y float32) float32 { return x * y }
