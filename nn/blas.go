package nn

// The matrix and vector products of the fused ops, on the device's BLAS (internal/blas), in
// float32 or float64.

import (
	"sync"

	gblas "gonum.org/v1/gonum/blas"

	"github.com/sentibench/sentibench/internal/blas"
)

// starts at (row, col), as the shortest slice BLAS accepts.
func sub[F float](buf []F, row, col, ld, rows, cols int) []F {
	if rows == 0 || cols == 0 {
		return nil
	}
	start := row*ld + col
	return buf[start : start+(rows-1)*ld+cols]
}

// gemm computes C = alpha*op(A)*op(B) + beta*C (row-major) with the device's BLAS.
func gemm[F float](bl blas.Impl, transA, transB bool, m, n, kk int, alpha F, a []F, lda int, b []F, ldb int, beta F, c []F, ldc int) {
	if m == 0 || n == 0 {
		return
	}
	tA, tB := gblas.NoTrans, gblas.NoTrans
	if transA {
		tA = gblas.Trans
	}
	if transB {
		tB = gblas.Trans
	}
	switch cc := any(c).(type) {
	case []float32:
		bl.Sgemm(tA, tB, m, n, kk, float32(alpha), any(a).([]float32), lda, any(b).([]float32), ldb, float32(beta), cc, ldc)
	case []float64:
		bl.Dgemm(tA, tB, m, n, kk, float64(alpha), any(a).([]float64), lda, any(b).([]float64), ldb, float64(beta), cc, ldc)
	}
}

// gemmRows is gemm (alpha 1) with the rows of C split over workers goroutines (for a
// single-threaded BLAS and products of many rows).
func gemmRows[F float](bl blas.Impl, workers int, transA, transB bool, m, n, kk int, a []F, lda int, b []F, ldb int, beta F, c []F, ldc int) {
	var wg sync.WaitGroup
	chunk := (m + workers - 1) / workers
	part := func(lo, hi int) {
		rows := hi - lo
		var ab []F
		if transA {
			ab = sub(a, 0, lo, lda, kk, rows)
		} else {
			ab = sub(a, lo, 0, lda, rows, kk)
		}
		gemm(bl, transA, transB, rows, n, kk, 1, ab, lda, b, ldb, beta, sub(c, lo, 0, ldc, rows, n), ldc)
	}
	for lo := chunk; lo < m; lo += chunk {
		wg.Add(1)
		go func(lo, hi int) { defer wg.Done(); part(lo, hi) }(lo, min(lo+chunk, m))
	}
	part(0, chunk)
	wg.Wait()
}

// colSums sets dst[j] = beta*dst[j] + sum over the m rows of a (m×n, leading dimension lda) of
// a[i][j], as a BLAS matrix-vector product with ones (at least m ones).
func colSums[F float](bl blas.Impl, dst, a, ones []F, m, n, lda int, beta F) {
	if m == 0 {
		for j := range dst[:n] {
			dst[j] *= beta
		}
		return
	}
	switch d := any(dst).(type) {
	case []float32:
		bl.Sgemv(gblas.Trans, m, n, 1, any(a).([]float32), lda, any(ones).([]float32), 1, float32(beta), d, 1)
	case []float64:
		bl.Dgemv(gblas.Trans, m, n, 1, any(a).([]float64), lda, any(ones).([]float64), 1, float64(beta), d, 1)
	}
}

// transposeTo sets dst (cols×rows) to the transpose of the row-major rows×cols matrix src.
// The per-step product h W_hhᵀ runs faster on OpenBLAS with W_hhᵀ stored than with W_hh
// transposed on the fly (its packing of a transposed operand is the slower one), and the
// transpose costs one pass over W_hh per layer and pass.
func transposeTo[F float](dst, src []F, rows, cols int) {
	dst, src = dst[:rows*cols], src[:rows*cols]
	const blk = 32
	for i0 := 0; i0 < rows; i0 += blk {
		for j0 := 0; j0 < cols; j0 += blk {
			for i := i0; i < min(i0+blk, rows); i++ {
				for j := j0; j < min(j0+blk, cols); j++ {
					dst[j*rows+i] = src[i*cols+j]
				}
			}
		}
	}
}

// axpy computes y += alpha x over len(x) elements (gonum's vectorised kernels).
func axpy[T float](impl blas.Impl, alpha T, x, y []T) {
	switch x := any(x).(type) {
	case []float32:
		impl.Saxpy(len(x), float32(alpha), x, 1, any(y).([]float32), 1)
	case []float64:
		impl.Daxpy(len(x), float64(alpha), x, 1, any(y).([]float64), 1)
	}
}
