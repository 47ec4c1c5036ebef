//go:build !amd64

package sgemm

func detect() ISA { return None }

// The kernels exist only on amd64; Sgemm refuses every ISA elsewhere before reaching these.

func kernel12(modeA int, k int, a *float32, lda int, b, c *float32, ldc int, alpha, beta float32, loadC, rows, cols int) {
	panic("sgemm: no AVX-512 kernel on this architecture")
}

func kernel6(modeA int, k int, a *float32, lda int, b, c *float32, ldc int, alpha, beta float32, loadC, rows, cols int) {
	panic("sgemm: no AVX2 kernel on this architecture")
}

func packColsPanel6(dst, a *float32, lda, k int) {
	panic("sgemm: no AVX2 packing on this architecture")
}
