//go:build cgo

package bert

/*
#cgo CFLAGS: -O3
#include <stdint.h>
#include <string.h>

// The element-wise kernels of the encoder in C, so that the compiler vectorises them: the
// softmax's exponentials and the GELU's erf are most of the work outside the matrix products.
// Each kernel is compiled for AVX2+FMA and for the baseline, and picked at run time. The
// formulas are the ones of kernels.go (expf, geluErfGo), so both builds agree to rounding.
// Loops with selects vectorise only when comparisons may be assumed not to trap:
#pragma GCC optimize ("no-trapping-math")

static inline float sb_bits_to_float(int32_t b) { float f; memcpy(&f, &b, 4); return f; }
static inline int32_t sb_float_to_bits(float f) { int32_t b; memcpy(&b, &f, 4); return b; }

// e^x for x <= 0 (0 below -87): Cody-Waite reduction around the nearest k = round(x / ln 2)
// (the 1.5 * 2^23 rounding trick) and Cephes' degree-6 polynomial; branch-free.
static inline __attribute__((always_inline)) float sb_exp_neg(float x) {
	float xc = x > -87.0f ? x : -87.0f;
	float kr = xc * 1.44269504088896341f + 12582912.0f;
	int32_t k = sb_float_to_bits(kr) - 0x4B400000;
	float fk = kr - 12582912.0f;
	float r = xc - fk * 0.693359375f - fk * -2.12194440e-4f;
	float p = 1.9875691500e-4f;
	p = p * r + 1.3981999507e-3f;
	p = p * r + 8.3334519073e-3f;
	p = p * r + 4.1665795894e-2f;
	p = p * r + 1.6666665459e-1f;
	p = p * r + 5.0000001201e-1f;
	float y = p * r * r + r + 1.0f;
	float e = sb_bits_to_float(sb_float_to_bits(y) + (k << 23));
	return x > -87.0f ? e : 0.0f;
}

#define SB_LANES 8

static inline __attribute__((always_inline)) void sb_softmax_body(float *s, int64_t rows, int64_t n) {
	for (int64_t r = 0; r < rows; r++) {
		float *row = s + r * n;
		float mx[SB_LANES];
		for (int k = 0; k < SB_LANES; k++) mx[k] = row[0];
		int64_t j = 0;
		for (; j + SB_LANES <= n; j += SB_LANES)
			for (int k = 0; k < SB_LANES; k++) mx[k] = row[j + k] > mx[k] ? row[j + k] : mx[k];
		float m = mx[0];
		for (int k = 1; k < SB_LANES; k++) m = mx[k] > m ? mx[k] : m;
		for (; j < n; j++) m = row[j] > m ? row[j] : m;
		for (j = 0; j < n; j++) row[j] = sb_exp_neg(row[j] - m);
		float acc[SB_LANES] = {0};
		for (j = 0; j + SB_LANES <= n; j += SB_LANES)
			for (int k = 0; k < SB_LANES; k++) acc[k] += row[j + k];
		float sum = 0;
		for (int k = 0; k < SB_LANES; k++) sum += acc[k];
		for (; j < n; j++) sum += row[j];
		float inv = 1.0f / sum;
		for (j = 0; j < n; j++) row[j] *= inv;
	}
}

// GELU(x) = x Phi(x) through erfc (Numerical Recipes' Chebyshev fit, relative error < 1.2e-7):
// with a = |x|/sqrt(2) and c = erfc(a), GELU is x - x c / 2 for x > 0 and x c / 2 otherwise.
static inline __attribute__((always_inline)) void sb_gelu_body(float *x, int64_t n) {
	for (int64_t i = 0; i < n; i++) {
		float v = x[i];
		float a = (v < 0 ? -v : v) * 0.70710678118654752f;
		float t = 1.0f / (1.0f + 0.5f * a);
		float p = 0.17087277f;
		p = p * t - 0.82215223f;
		p = p * t + 1.48851587f;
		p = p * t - 1.13520398f;
		p = p * t + 0.27886807f;
		p = p * t - 0.18628806f;
		p = p * t + 0.09678418f;
		p = p * t + 0.37409196f;
		p = p * t + 1.00002368f;
		p = p * t - 1.26551223f;
		float c = t * sb_exp_neg(p - a * a);
		float g = 0.5f * v * c;
		x[i] = v > 0 ? v - g : g;
	}
}

__attribute__((target("avx2,fma"))) static void sb_softmax_avx2(float *s, int64_t rows, int64_t n) { sb_softmax_body(s, rows, n); }
static void sb_softmax_base(float *s, int64_t rows, int64_t n) { sb_softmax_body(s, rows, n); }
__attribute__((target("avx2,fma"))) static void sb_gelu_avx2(float *x, int64_t n) { sb_gelu_body(x, n); }
static void sb_gelu_base(float *x, int64_t n) { sb_gelu_body(x, n); }

static int sb_has_avx2(void) {
	__builtin_cpu_init();
	return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

static void sb_softmax(int avx2, float *s, int64_t rows, int64_t n) {
	if (avx2) sb_softmax_avx2(s, rows, n); else sb_softmax_base(s, rows, n);
}
static void sb_gelu(int avx2, float *x, int64_t n) {
	if (avx2) sb_gelu_avx2(x, n); else sb_gelu_base(x, n);
}
*/
import "C"

import "unsafe"

// hasAVX2 is read once; it describes the machine, not a setting.
var hasAVX2 = C.sb_has_avx2()

// softmaxRows applies a softmax to each row of s (width n) in place.
func softmaxRows(s []float32, n int) {
	if n == 0 || len(s) < n {
		return
	}
	C.sb_softmax(hasAVX2, (*C.float)(unsafe.Pointer(&s[0])), C.int64_t(len(s)/n), C.int64_t(n))
}

// geluErf is the exact GELU, x Φ(x), within float32 rounding (see sb_gelu_body).
func geluErf(x []float32) {
	if len(x) == 0 {
		return
	}
	C.sb_gelu(hasAVX2, (*C.float)(unsafe.Pointer(&x[0])), C.int64_t(len(x)))
}

// kernelsName says which element-wise kernels run.
func kernelsName() string {
	if hasAVX2 != 0 {
		return "C (AVX2+FMA)"
	}
	return "C (baseline)"
}
