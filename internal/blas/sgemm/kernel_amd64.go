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

func kernel12x32(k int, a, b, c *float32, ldc int, alpha, beta float32, loadC, rows int, mask0, mask1 uint16) {
	sgemmKernel12x32(k, a, b, c, ldc, alpha, beta, loadC, rows, mask0, mask1)
}

func kernel6x16(k int, a, b, c *float32, ldc int, alpha, beta float32, loadC int) {
	sgemmKernel6x16(k, a, b, c, ldc, alpha, beta, loadC)
}
