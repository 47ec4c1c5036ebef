// Command asm generates package sgemm's micro-kernels for amd64 (kernel_amd64.s and the
// Go declarations in kernel_amd64_stubs.go) with avo. It is its own module so that avo stays out
// of sentibench's build: run `go generate ./internal/blas/sgemm/` (or `go run . -out ../kernel_amd64.s
// -stubs ../kernel_amd64_stubs.go -pkg sgemm` here) after changing it, and commit both outputs.
//
// Each kernel computes one register tile of C = alpha*A*B + beta*C: b is a packed panel, NR
// floats per step of k (one row of the tile's columns of op(B)); a is a packed panel, MR floats
// per step (one column of the tile's rows of op(A)), or for the AVX-512 kernels named ...Rows
// and ...Cols the tile's rows of A or columns of Aᵀ where they lie, lda floats apart. The k
// loop keeps the tile in registers; the epilogue scales by alpha and, only when loadC is
// non-zero, adds beta times the old C (so beta 0 never reads C and a NaN there cannot leak
// into the result). It is its own module's test (gen_test.go) that the committed output is
// what this program writes.
package main

import (
	"fmt"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

func main() {
	ConstraintExpr("amd64")
	for _, modeA := range []int{packedA, rowsA, colsA} {
		for _, kr := range []int{12, 8, 4} {
			kernelAVX512(kr, 2, modeA)
			kernelAVX512(kr, 1, modeA)
		}
	}
	kernelAVX2()
	Generate()
}

// unroll is how many steps of k one iteration of a kernel's main loop does.
const unroll = 4

// kernelAVX512 emits an AVX-512 kernel for kr rows (12; 8 and 4 for the last rows of C) over
// nz zmm columns (nz 2: 32 columns, 24 accumulators for 12 rows; nz 1: 16, for the last
// columns of C), with two zmm of B and two broadcast registers. B is a packed panel of 32 floats per step of k (the 12x16 kernel reads the first
// 16). A is a packed panel (12 floats per step) or, with rowsA, 12 rows of A itself, lda floats
// apart, read in place (no packing). The epilogue stores only the first rows rows and, within
// a row, the columns whose bits are set in mask0 (columns 0-15) and mask1 (16-31), so it also
// serves the tiles at the bottom and right edges of C; masked loads and stores touch no other
// memory.
// How an AVX-512 kernel reads A.
const (
	packedA = iota // a packed panel: 12 floats per step of k
	rowsA          // rows of A in place: row i at a + i*lda, step q at + q
	colsA          // rows of op(A) = Aᵀ in place: row i at a + i, step q at + q*lda
)

func kernelAVX512(kr, nz, modeA int) {
	const mr, nr = 12, 32
	name := fmt.Sprintf("sgemmKernel%dx%d", kr, 16*nz)
	sig := "func(k int, a, b, c *float32, ldc int, alpha, beta float32, loadC int, rows int, mask0, mask1 uint16)"
	doc := fmt.Sprintf("%s computes rows×%d of C (rows ≤ %d; ldc floats apart) from a packed 12-row panel of A and a 32-column panel of B (AVX-512).", name, 16*nz, kr)
	switch modeA {
	case rowsA:
		name += "Rows"
		sig = "func(k int, a *float32, lda int, b, c *float32, ldc int, alpha, beta float32, loadC int, rows int, mask0, mask1 uint16)"
		doc = fmt.Sprintf("%s computes rows×%d of C (rows ≤ %d; ldc floats apart) from %d rows of A (lda floats apart) and a 32-column panel of B (AVX-512).", name, 16*nz, kr, kr)
	case colsA:
		name += "Cols"
		sig = "func(k int, a *float32, lda int, b, c *float32, ldc int, alpha, beta float32, loadC int, rows int, mask0, mask1 uint16)"
		doc = fmt.Sprintf("%s computes rows×%d of C (rows ≤ %d; ldc floats apart) from %d columns of A (A stored transposed, lda floats apart) and a 32-column panel of B (AVX-512).", name, 16*nz, kr, kr)
	}
	TEXT(name, NOSPLIT, sig)
	Doc(doc)
	restoreMXCSR := flushSubnormals()
	acc := func(i, j int) reg.VecPhysical { return zmm(2*i + j) }
	bv := [2]reg.VecPhysical{reg.Z24, reg.Z25}
	bc := [2]reg.VecPhysical{reg.Z26, reg.Z27}

	k, a, b := reg.RCX, reg.RSI, reg.RDI
	Load(Param("k"), k)
	Load(Param("a"), a)
	Load(Param("b"), b)
	// aAt is the address of row i of A at step s of the current iteration.
	aAt := func(s, i int) Mem { return Mem{Base: a, Disp: 4 * (mr*s + i)} }
	aStep := 4 * mr
	switch modeA {
	case colsA:
		// Steps 0-3 of an iteration are a, a+lda, a2, a2+lda with a2 = a+2*lda.
		lda, a2, lda4 := reg.R10, reg.R11, reg.R12
		Load(Param("lda"), lda)
		SHLQ(U8(2), lda)
		LEAQ(Mem{Base: a, Index: lda, Scale: 2}, a2)
		MOVQ(lda, lda4)
		SHLQ(U8(2), lda4)
		aAt = func(s, i int) Mem {
			m := Mem{Base: []reg.Register{a, a2}[s/2], Disp: 4 * i}
			if s%2 == 1 {
				m.Index, m.Scale = lda, 1
			}
			return m
		}
		defer func() { advanceA = nil }()
		advanceA = func(n int) {
			step := lda
			if n == 4 {
				step = lda4
			} else if n != 1 {
				panic("colsA advances by 1 or 4 steps")
			}
			ADDQ(step, a)
			ADDQ(step, a2)
		}
	case rowsA:
		// Rows 0-11 are base, base+lda, base+2*lda for the bases a, a+3*lda, a+6*lda, a+9*lda.
		lda, a3, a6, a9 := reg.R10, reg.R11, reg.R12, reg.R13
		Load(Param("lda"), lda)
		SHLQ(U8(2), lda)
		LEAQ(Mem{Base: a, Index: lda, Scale: 2}, a3)
		ADDQ(lda, a3)
		LEAQ(Mem{Base: a3, Index: lda, Scale: 2}, a6)
		ADDQ(lda, a6)
		LEAQ(Mem{Base: a6, Index: lda, Scale: 2}, a9)
		ADDQ(lda, a9)
		bases := []reg.Register{a, a3, a6, a9}
		aAt = func(s, i int) Mem {
			m := Mem{Base: bases[i/3], Disp: 4 * s}
			if i%3 > 0 {
				m.Index, m.Scale = lda, uint8(i%3)
			}
			return m
		}
		aStep = 4
		advance := func(n int) {
			for _, r := range bases {
				ADDQ(U8(aStep*n), r)
			}
		}
		defer func() { advanceA = nil }()
		advanceA = advance
	}
	for i := 0; i < kr; i++ {
		for j := 0; j < nz; j++ {
			VPXORD(acc(i, j), acc(i, j), acc(i, j))
		}
	}
	step := func(s int) {
		for j := 0; j < nz; j++ {
			VMOVUPS(Mem{Base: b, Disp: 4*nr*s + 64*j}, bv[j])
		}
		for i := 0; i < kr; i++ {
			t := bc[i%2]
			VBROADCASTSS(aAt(s, i), t)
			for j := 0; j < nz; j++ {
				VFMADD231PS(bv[j], t, acc(i, j))
			}
		}
	}
	kLoops(name, k, a, b, aStep, nr, step)

	c, ldc, rows := reg.RDX, reg.R8, reg.R9
	Load(Param("c"), c)
	Load(Param("ldc"), ldc)
	SHLQ(U8(2), ldc)
	Load(Param("rows"), rows)
	KMOVW(paramAddr("mask0"), reg.K1)
	KMOVW(paramAddr("mask1"), reg.K2)
	alpha, beta := reg.Z24, reg.Z25
	VBROADCASTSS(paramAddr("alpha"), alpha)
	VBROADCASTSS(paramAddr("beta"), beta)
	loadC := reg.RAX
	Load(Param("loadC"), loadC)
	TESTQ(loadC, loadC)
	JZ(LabelRef("store" + name))
	for i := 0; i < kr; i++ {
		CMPQ(rows, U8(i))
		JLE(LabelRef("done" + name))
		for j := 0; j < nz; j++ {
			m, kr := Mem{Base: c, Disp: 64 * j}, []reg.Register{reg.K1, reg.K2}[j]
			VMOVUPS_Z(m, kr, bc[j])
			VMULPS(alpha, acc(i, j), acc(i, j))
			VFMADD231PS(beta, bc[j], acc(i, j))
			VMOVUPS(acc(i, j), kr, m)
		}
		ADDQ(ldc, c)
	}
	JMP(LabelRef("done" + name))
	Label("store" + name)
	for i := 0; i < kr; i++ {
		CMPQ(rows, U8(i))
		JLE(LabelRef("done" + name))
		for j := 0; j < nz; j++ {
			m, kr := Mem{Base: c, Disp: 64 * j}, []reg.Register{reg.K1, reg.K2}[j]
			VMULPS(alpha, acc(i, j), acc(i, j))
			VMOVUPS(acc(i, j), kr, m)
		}
		ADDQ(ldc, c)
	}
	Label("done" + name)
	restoreMXCSR()
	VZEROUPPER()
	RET()
}

// advanceA, when set, moves the A pointers of a kernel that reads A in place by n steps of k
// (kLoops otherwise adds n*aStep to the one A pointer).
var advanceA func(n int)

// kernelAVX2 is the 6x16 kernel: 12 ymm accumulators (two per row), two ymm of B and two
// broadcast registers. It stores a whole tile; the caller gives edge tiles a scratch tile.
func kernelAVX2() {
	const mr, nr = 6, 16
	TEXT("sgemmKernel6x16", NOSPLIT, "func(k int, a, b, c *float32, ldc int, alpha, beta float32, loadC int)")
	Doc("sgemmKernel6x16 computes 6×16 of C (ldc floats apart) from 6-row and 16-column panels (AVX2 and FMA).")
	restoreMXCSR := flushSubnormals()
	acc := func(i, j int) reg.VecPhysical { return ymm(2*i + j) }
	bv := [2]reg.VecPhysical{reg.Y12, reg.Y13}
	bc := [2]reg.VecPhysical{reg.Y14, reg.Y15}

	k, a, b := reg.RCX, reg.RSI, reg.RDI
	Load(Param("k"), k)
	Load(Param("a"), a)
	Load(Param("b"), b)
	for i := 0; i < mr; i++ {
		for j := 0; j < 2; j++ {
			VXORPS(acc(i, j), acc(i, j), acc(i, j))
		}
	}
	step := func(s int) {
		VMOVUPS(Mem{Base: b, Disp: 4 * nr * s}, bv[0])
		VMOVUPS(Mem{Base: b, Disp: 4*nr*s + 32}, bv[1])
		for i := 0; i < mr; i++ {
			t := bc[i%2]
			VBROADCASTSS(Mem{Base: a, Disp: 4 * (mr*s + i)}, t)
			VFMADD231PS(bv[0], t, acc(i, 0))
			VFMADD231PS(bv[1], t, acc(i, 1))
		}
	}
	kLoops("sgemmKernel6x16", k, a, b, 4*mr, nr, step)

	c, ldc := reg.RDX, reg.R8
	Load(Param("c"), c)
	Load(Param("ldc"), ldc)
	SHLQ(U8(2), ldc)
	alpha, beta := reg.Y12, reg.Y13
	VBROADCASTSS(paramAddr("alpha"), alpha)
	VBROADCASTSS(paramAddr("beta"), beta)
	loadC := reg.RAX
	Load(Param("loadC"), loadC)
	TESTQ(loadC, loadC)
	JZ(LabelRef("store256"))
	for i := 0; i < mr; i++ {
		for j := 0; j < 2; j++ {
			m := Mem{Base: c, Disp: 32 * j}
			VMULPS(alpha, acc(i, j), acc(i, j))
			VFMADD231PS(m, beta, acc(i, j))
			VMOVUPS(acc(i, j), m)
		}
		ADDQ(ldc, c)
	}
	restoreMXCSR()
	VZEROUPPER()
	RET()
	Label("store256")
	for i := 0; i < mr; i++ {
		for j := 0; j < 2; j++ {
			VMULPS(alpha, acc(i, j), acc(i, j))
			VMOVUPS(acc(i, j), Mem{Base: c, Disp: 32 * j})
		}
		ADDQ(ldc, c)
	}
	restoreMXCSR()
	VZEROUPPER()
	RET()
}

// flushSubnormals emits the code that makes the kernel treat subnormal inputs as zero (MXCSR's
// DAZ bit) and flush subnormal results to zero (FTZ), saving the caller's MXCSR in the frame,
// and returns the emitter of the code that restores it (before every RET). x86 cores handle a
// subnormal operand or result with a microcode assist of about a hundred cycles; a recurrent
// layer's backward pass feeds products whose gradients decay into that range, and ran 2-3
// times slower for it. The value of C differs only by amounts below 1.2e-38.
func flushSubnormals() (restore func()) {
	saved, mode := AllocLocal(4), AllocLocal(4)
	STMXCSR(saved)
	MOVL(saved, reg.EAX)
	ORL(U32(0x8040), reg.EAX) // FTZ (bit 15) and DAZ (bit 6)
	MOVL(reg.EAX, mode)
	LDMXCSR(mode)
	return func() { LDMXCSR(saved) }
}

// kLoops emits the k loop: unroll steps per iteration while k allows, then one step at a time.
// aStep is the bytes A advances per step, nr the floats B does.
func kLoops(name string, k, a, b reg.Register, aStep, nr int, step func(s int)) {
	moveA := func(n int) {
		if advanceA != nil {
			advanceA(n)
			return
		}
		ADDQ(U32(aStep*n), a)
	}
	Label("unrolled" + name)
	CMPQ(k, U8(unroll))
	JL(LabelRef("single" + name))
	for s := 0; s < unroll; s++ {
		step(s)
	}
	moveA(unroll)
	ADDQ(U32(4*nr*unroll), b)
	SUBQ(U8(unroll), k)
	JMP(LabelRef("unrolled" + name))
	Label("single" + name)
	TESTQ(k, k)
	JZ(LabelRef("epilogue" + name))
	step(0)
	moveA(1)
	ADDQ(U32(4*nr), b)
	DECQ(k)
	JMP(LabelRef("single" + name))
	Label("epilogue" + name)
}

func zmm(i int) reg.VecPhysical {
	return []reg.VecPhysical{reg.Z0, reg.Z1, reg.Z2, reg.Z3, reg.Z4, reg.Z5, reg.Z6, reg.Z7, reg.Z8,
		reg.Z9, reg.Z10, reg.Z11, reg.Z12, reg.Z13, reg.Z14, reg.Z15, reg.Z16, reg.Z17, reg.Z18,
		reg.Z19, reg.Z20, reg.Z21, reg.Z22, reg.Z23}[i]
}

func ymm(i int) reg.VecPhysical {
	return []reg.VecPhysical{reg.Y0, reg.Y1, reg.Y2, reg.Y3, reg.Y4, reg.Y5, reg.Y6, reg.Y7, reg.Y8,
		reg.Y9, reg.Y10, reg.Y11}[i]
}

// paramAddr is the stack address of the current function's parameter name.
func paramAddr(name string) Mem {
	b, err := Param(name).Resolve()
	if err != nil {
		panic(err)
	}
	return b.Addr
}
