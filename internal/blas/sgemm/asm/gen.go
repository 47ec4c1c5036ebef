// Command asm generates package sgemm's micro-kernels for amd64 (kernel_amd64.s and the
// Go declarations in kernel_amd64_stubs.go) with avo. It is its own module so that avo stays out
// of sentibench's build: run `go generate ./internal/blas/sgemm/` (or `go run . -out ../kernel_amd64.s
// -stubs ../kernel_amd64_stubs.go -pkg sgemm` here) after changing it, and commit both outputs.
//
// Each kernel computes one register tile of C = alpha*A*B + beta*C: b is a packed panel, NR
// floats per step of k (one row of the tile's columns of op(B)); a is a packed panel, MR floats
// per step (one column of the tile's rows of op(A)), or for the kernels named ...Rows and
// ...Cols (AVX-512 only) the tile's rows of A or columns of Aᵀ where they lie, lda floats
// apart. The k loop keeps the tile in registers; the epilogue scales by alpha and, only when loadC is
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
	colMaskTable = GLOBL("colmask", RODATA|NOPTR)
	for i := 0; i < 16; i++ {
		DATA(4*i, U32(map[bool]uint32{true: 0xffffffff, false: 0}[i < 8]))
	}
	// The AVX2 kernels do not read Aᵀ in place: its panels are packed (packColsPanel6).
	for _, modeA := range []int{packedA, rowsA} {
		kernelAVX2(2, modeA)
		kernelAVX2(1, modeA)
	}
	packColsPanel6()
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
	aAt, aStep := addressA(modeA, mr, a)
	defer func() { advanceA = nil }()
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

// addressA emits the set-up of a kernel's reads of A for modeA with an mr-row panel (mr a
// multiple of 3 when A is read in place) held in register a, and returns the address of row i
// at step s of the current iteration and the bytes a packed panel advances per step. For the
// in-place modes it sets advanceA (the caller resets it when the kernel is done).
func addressA(modeA, mr int, a reg.Register) (aAt func(s, i int) Mem, aStep int) {
	aAt = func(s, i int) Mem { return Mem{Base: a, Disp: 4 * (mr*s + i)} }
	aStep = 4 * mr
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
		// Rows 0-11 are base, base+lda, base+2*lda for the bases a, a+3*lda, a+6*lda, a+9*lda
		// (the first mr/3 of them).
		lda := reg.R10
		bases := []reg.Register{a, reg.R11, reg.R12, reg.R13}[:mr/3]
		Load(Param("lda"), lda)
		SHLQ(U8(2), lda)
		for i := 1; i < len(bases); i++ {
			LEAQ(Mem{Base: bases[i-1], Index: lda, Scale: 2}, bases[i])
			ADDQ(lda, bases[i])
		}
		aAt = func(s, i int) Mem {
			m := Mem{Base: bases[i/3], Disp: 4 * s}
			if i%3 > 0 {
				m.Index, m.Scale = lda, uint8(i%3)
			}
			return m
		}
		aStep = 4
		advanceA = func(n int) {
			for _, r := range bases {
				ADDQ(U8(aStep*n), r)
			}
		}
	}
	return aAt, aStep
}

// colMaskTable is the AVX2 kernels' table of column masks: 8 lanes set, then 8 clear; the 8
// lanes from float 8-w on are the mask of the first w columns.
var colMaskTable Mem

// kernelAVX2 emits an AVX2+FMA kernel for 6 rows over nz ymm columns (nz 2: 16 columns, 12
// accumulators, two ymm of B and two broadcast registers; nz 1: 8 columns, for the last
// columns of C, with two sets of 6 accumulators). B is a packed panel of 16 floats per step of k (the 6x8 kernel reads the
// first 8). A is a packed 6-row panel or, with rowsA, 6 rows of A read in place
// (Aᵀ is always packed, by packColsPanel6 where A would be read in place). The epilogue stores only the first rows rows and the first cols columns
// (more than 8 when nz is 2: the caller picks the 6x8 kernel for narrower tiles), the last ymm of a row with masked loads and stores (VMASKMOVPS)
// when the tile is narrower than the kernel, so it also serves the edges of C in place.
func kernelAVX2(nz, modeA int) {
	const mr, nr = 6, 16
	name := fmt.Sprintf("sgemmKernel6x%d", 8*nz)
	sig := "func(k int, a, b, c *float32, ldc int, alpha, beta float32, loadC, rows, cols int)"
	from := "a packed 6-row panel of A"
	switch modeA {
	case rowsA:
		name += "Rows"
		sig = "func(k int, a *float32, lda int, b, c *float32, ldc int, alpha, beta float32, loadC, rows, cols int)"
		from = "6 rows of A (lda floats apart)"
	}
	TEXT(name, NOSPLIT, sig)
	cols := "cols ≤ 8"
	if nz == 2 {
		cols = "8 < cols ≤ 16"
	}
	Doc(fmt.Sprintf("%s computes rows×cols of C (rows ≤ 6, %s; ldc floats apart) from %s and a 16-column panel of B (AVX2 and FMA).", name, cols, from))
	restoreMXCSR := flushSubnormals()
	acc := func(i, j int) reg.VecPhysical { return ymm(nz*i + j) }
	bv := [2]reg.VecPhysical{reg.Y12, reg.Y13}
	bc := [2]reg.VecPhysical{reg.Y14, reg.Y15}

	k, a, b := reg.RCX, reg.RSI, reg.RDI
	Load(Param("k"), k)
	Load(Param("a"), a)
	Load(Param("b"), b)
	aAt, aStep := addressA(modeA, mr, a)
	defer func() { advanceA = nil }()
	// The 6x8 kernel's 6 accumulators are too few to hide the FMA's latency: it keeps a
	// second set, Y6-Y11, for the odd steps of k and adds it to the first at the end.
	sets := 1
	if nz == 1 {
		sets = 2
	}
	accOf := func(s, i, j int) reg.VecPhysical { return ymm(mr*nz*(s%sets) + nz*i + j) }
	for n := 0; n < mr*nz*sets; n++ {
		VXORPS(ymm(n), ymm(n), ymm(n))
	}
	step := func(s int) {
		for j := 0; j < nz; j++ {
			VMOVUPS(Mem{Base: b, Disp: 4*nr*s + 32*j}, bv[j])
		}
		for i := 0; i < mr; i++ {
			t := bc[i%2]
			VBROADCASTSS(aAt(s, i), t)
			for j := 0; j < nz; j++ {
				VFMADD231PS(bv[j], t, accOf(s, i, j))
			}
		}
	}
	kLoops(name, k, a, b, aStep, nr, step)
	for i := 0; i < mr && sets == 2; i++ {
		VADDPS(accOf(1, i, 0), acc(i, 0), acc(i, 0))
	}

	c, ldc, rows := reg.RDX, reg.R8, reg.R9
	Load(Param("c"), c)
	Load(Param("ldc"), ldc)
	SHLQ(U8(2), ldc)
	Load(Param("rows"), rows)
	alpha, beta, old, mask := reg.Y12, reg.Y13, reg.Y14, reg.Y15
	VBROADCASTSS(paramAddr("alpha"), alpha)
	VBROADCASTSS(paramAddr("beta"), beta)
	// short is how many of the last ymm's 8 columns are not stored: 8*nz - cols.
	short, table := reg.R11, reg.R10
	MOVQ(U32(8*nz), short)
	Load(Param("cols"), reg.R12)
	SUBQ(reg.R12, short)
	LEAQ(colMaskTable, table)
	VMOVUPS(Mem{Base: table, Index: short, Scale: 4}, mask)
	loadC := reg.RAX
	Load(Param("loadC"), loadC)
	// Four epilogues: with or without beta*C, whole or masked last ymm.
	label := func(withC, masked bool) string { return fmt.Sprintf("%s_c%v_masked%v", name, withC, masked) }
	TESTQ(loadC, loadC)
	JZ(LabelRef(label(false, false)))
	for _, withC := range []bool{true, false} {
		for _, masked := range []bool{false, true} {
			Label(label(withC, masked))
			if !masked {
				TESTQ(short, short)
				JNZ(LabelRef(label(withC, true)))
			}
			for i := 0; i < mr; i++ {
				CMPQ(rows, U8(i))
				JLE(LabelRef("done" + name))
				for j := 0; j < nz; j++ {
					m := Mem{Base: c, Disp: 32 * j}
					VMULPS(alpha, acc(i, j), acc(i, j))
					if masked && j == nz-1 {
						if withC {
							VMASKMOVPS(m, mask, old)
							VFMADD231PS(old, beta, acc(i, j))
						}
						VMASKMOVPS(acc(i, j), mask, m)
						continue
					}
					if withC {
						VFMADD231PS(m, beta, acc(i, j))
					}
					VMOVUPS(acc(i, j), m)
				}
				ADDQ(ldc, c)
			}
			JMP(LabelRef("done" + name))
		}
	}
	Label("done" + name)
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

// packColsPanel6 emits the packing of one 6-row panel of op(A) = Aᵀ for the AVX2 kernels:
// for each of k steps q, the 6 contiguous floats at a + q*lda go to dst + 6q (24 bytes: a
// 16- and an 8-byte move; Go copies a [6]float32 with a call of memmove). When lda is large
// each step is on its own page, where the hardware prefetcher does not follow, so it also
// prefetches (into L2) the cache line after each step's, which the panels after the next
// one read.
func packColsPanel6() {
	TEXT("packColsPanel6", NOSPLIT, "func(dst, a *float32, lda, k int)")
	Doc("packColsPanel6 copies, for each of k steps q, the 6 floats at a + q*lda to dst + 6q.")
	dst, a, lda, k := reg.RDI, reg.RSI, reg.RDX, reg.RCX
	Load(Param("dst"), dst)
	Load(Param("a"), a)
	Load(Param("lda"), lda)
	Load(Param("k"), k)
	SHLQ(U8(2), lda)
	TESTQ(k, k)
	JLE(LabelRef("donePackColsPanel6"))
	Label("loopPackColsPanel6")
	PREFETCHT1(Mem{Base: a, Disp: 64})
	MOVUPS(Mem{Base: a}, reg.X0)
	MOVQ(Mem{Base: a, Disp: 16}, reg.RAX)
	MOVUPS(reg.X0, Mem{Base: dst})
	MOVQ(reg.RAX, Mem{Base: dst, Disp: 16})
	ADDQ(lda, a)
	ADDQ(U8(24), dst)
	DECQ(k)
	JNZ(LabelRef("loopPackColsPanel6"))
	Label("donePackColsPanel6")
	RET()
}
