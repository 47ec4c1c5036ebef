package sgemm

// How a kernel reads A (see asm/gen.go).
const (
	packedA = iota // a packed panel (12 rows for AVX-512, 6 for AVX2)
	rowsA          // rows of A in place (op(A) = A)
	colsA          // columns of A in place (op(A) = Aᵀ)
)
