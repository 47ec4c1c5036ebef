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
// 12-row panel when lda is 0, else rows of A lda floats apart (then rows must be 4, 8 or 12:
// the kernel reads that many); b is a packed 32-column panel. It picks the kernel with the
// fewest rows and columns that covers the tile.
func kernel12(k int, a *float32, lda int, b, c *float32, ldc int, alpha, beta float32, loadC, rows, cols int) {
	m0, m1 := colMasks(cols)
	wide := cols > 16
	if lda == 0 {
		switch {
		case rows > 8 && wide:
			sgemmKernel12x32(k, a, b, c, ldc, alpha, beta, loadC, rows, m0, m1)
		case rows > 8:
			sgemmKernel12x16(k, a, b, c, ldc, alpha, beta, loadC, rows, m0, m1)
		case rows > 4 && wide:
			sgemmKernel8x32(k, a, b, c, ldc, alpha, beta, loadC, rows, m0, m1)
		case rows > 4:
			sgemmKernel8x16(k, a, b, c, ldc, alpha, beta, loadC, rows, m0, m1)
		case wide:
			sgemmKernel4x32(k, a, b, c, ldc, alpha, beta, loadC, rows, m0, m1)
		default:
			sgemmKernel4x16(k, a, b, c, ldc, alpha, beta, loadC, rows, m0, m1)
		}
		return
	}
	switch {
	case rows > 8 && wide:
		sgemmKernel12x32Rows(k, a, lda, b, c, ldc, alpha, beta, loadC, rows, m0, m1)
	case rows > 8:
		sgemmKernel12x16Rows(k, a, lda, b, c, ldc, alpha, beta, loadC, rows, m0, m1)
	case rows > 4 && wide:
		sgemmKernel8x32Rows(k, a, lda, b, c, ldc, alpha, beta, loadC, rows, m0, m1)
	case rows > 4:
		sgemmKernel8x16Rows(k, a, lda, b, c, ldc, alpha, beta, loadC, rows, m0, m1)
	case wide:
		sgemmKernel4x32Rows(k, a, lda, b, c, ldc, alpha, beta, loadC, rows, m0, m1)
	default:
		sgemmKernel4x16Rows(k, a, lda, b, c, ldc, alpha, beta, loadC, rows, m0, m1)
	}
}

func kernel6x16(k int, a, b, c *float32, ldc int, alpha, beta float32, loadC int) {
	sgemmKernel6x16(k, a, b, c, ldc, alpha, beta, loadC)
}
