package sgemm

// How the AVX-512 kernel reads A (see asm/gen.go).
const (
	packedA = iota // a packed 12-row panel
	rowsA          // rows of A in place (op(A) = A)
	colsA          // columns of A in place (op(A) = Aᵀ)
)
