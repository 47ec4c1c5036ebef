package sgemm

import "golang.org/x/sys/cpu"

func detect() ISA {
	switch {
	case cpu.X86.HasAVX512F:
		return AVX512
	case cpu.X86.HasAVX2 && cpu.X86.HasFMA:
		return AVX2
	}
	return None
}

// kernel12 runs the AVX-512 kernel for a rows×cols tile (rows ≤ 12, cols ≤ 32): A is a packed
// panel when lda is 0, else 12 rows of A lda floats apart; b is a packed 32-column panel.
func kernel12(k int, a *float32, lda int, b, c *float32, ldc int, alpha, beta float32, loadC, rows, cols int) {
	m0, m1 := colMasks(cols)
	switch {
	case lda == 0 && cols > 16:
		sgemmKernel12x32(k, a, b, c, ldc, alpha, beta, loadC, rows, m0, m1)
	case lda == 0:
		sgemmKernel12x16(k, a, b, c, ldc, alpha, beta, loadC, rows, m0, m1)
	case cols > 16:
		sgemmKernel12x32Rows(k, a, lda, b, c, ldc, alpha, beta, loadC, rows, m0, m1)
	default:
		sgemmKernel12x16Rows(k, a, lda, b, c, ldc, alpha, beta, loadC, rows, m0, m1)
	}
}

func kernel6x16(k int, a, b, c *float32, ldc int, alpha, beta float32, loadC int) {
	sgemmKernel6x16(k, a, b, c, ldc, alpha, beta, loadC)
}
