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

type inPlaceKernel func(k int, a *float32, lda int, b, c *float32, ldc int, alpha, beta float32, loadC, rows int, mask0, mask1 uint16)

type packedKernel func(k int, a, b, c *float32, ldc int, alpha, beta float32, loadC, rows int, mask0, mask1 uint16)

// The AVX-512 kernels by rows (12, 8, 4) and columns (32, 16).
var (
	packedKernels = [3][2]packedKernel{
		{sgemmKernel12x32, sgemmKernel12x16},
		{sgemmKernel8x32, sgemmKernel8x16},
		{sgemmKernel4x32, sgemmKernel4x16},
	}
	rowsKernels = [3][2]inPlaceKernel{
		{sgemmKernel12x32Rows, sgemmKernel12x16Rows},
		{sgemmKernel8x32Rows, sgemmKernel8x16Rows},
		{sgemmKernel4x32Rows, sgemmKernel4x16Rows},
	}
	colsKernels = [3][2]inPlaceKernel{
		{sgemmKernel12x32Cols, sgemmKernel12x16Cols},
		{sgemmKernel8x32Cols, sgemmKernel8x16Cols},
		{sgemmKernel4x32Cols, sgemmKernel4x16Cols},
	}
)

// kernel12 runs the AVX-512 kernel for a rows×cols tile (rows ≤ 12, cols ≤ 32) with the
// fewest rows and columns that covers it; b is a packed 32-column panel. With modeA packedA,
// a is a packed 12-row panel; with rowsA (op(A) = A) or colsA (op(A) = Aᵀ), a is the tile's
// first row of op(A) in A itself, lda floats apart, and rows must be 4, 8 or 12 (the kernel
// reads that many).
func kernel12(modeA int, k int, a *float32, lda int, b, c *float32, ldc int, alpha, beta float32, loadC, rows, cols int) {
	m0, m1 := colMasks(cols)
	r := 0 // 12 rows
	if rows <= 4 {
		r = 2
	} else if rows <= 8 {
		r = 1
	}
	w := 0 // 32 columns
	if cols <= 16 {
		w = 1
	}
	switch modeA {
	case packedA:
		packedKernels[r][w](k, a, b, c, ldc, alpha, beta, loadC, rows, m0, m1)
	case rowsA:
		rowsKernels[r][w](k, a, lda, b, c, ldc, alpha, beta, loadC, rows, m0, m1)
	case colsA:
		colsKernels[r][w](k, a, lda, b, c, ldc, alpha, beta, loadC, rows, m0, m1)
	}
}

// kernel6 runs the AVX2 kernel for a rows×cols tile (rows ≤ 6, cols ≤ 16): the 6x8 one when
// cols ≤ 8; b is a packed 16-column panel. modeA and a are as for kernel12, except that
// rowsA needs rows = 6 and colsA is not offered (slab packs those panels).
func kernel6(modeA int, k int, a *float32, lda int, b, c *float32, ldc int, alpha, beta float32, loadC, rows, cols int) {
	narrow := cols <= 8
	switch {
	case modeA == packedA && narrow:
		sgemmKernel6x8(k, a, b, c, ldc, alpha, beta, loadC, rows, cols)
	case modeA == packedA:
		sgemmKernel6x16(k, a, b, c, ldc, alpha, beta, loadC, rows, cols)
	case modeA == rowsA && narrow:
		sgemmKernel6x8Rows(k, a, lda, b, c, ldc, alpha, beta, loadC, rows, cols)
	case modeA == rowsA:
		sgemmKernel6x16Rows(k, a, lda, b, c, ldc, alpha, beta, loadC, rows, cols)
	default:
		panic("sgemm: the AVX2 kernels do not read Aᵀ in place")
	}
}
