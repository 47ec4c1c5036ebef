package nn

import (
	"math"
	"unsafe"
)

// Subnormal ("denormal") numbers are the floats closer to zero than the smallest normal one
// (about 1.2e-38 in float32). x86 cores compute with them through a microcode assist that costs
// on the order of a hundred cycles per instruction, so a matrix product whose operands hold a few
// percent of them runs many times slower. The recurrent cells' backward passes make them: the
// gradient of the cell state (LSTM) or hidden state (GRU) carried from step to step is
// multiplied by a gate at every step and decays towards zero over a long review. The cells
// flush that carried gradient to zero when it is subnormal, as a CPU's flush-to-zero mode would
// (PyTorch users get the same from torch.set_flush_denormal), so the scalar loops never carry
// them; the gate gradients a step derives from it can still underflow, and the matrix products
// that read them run in flush-to-zero mode (package sgemm's kernels, and OpenBLAS through
// package blas). A flushed value is below 1.2e-38, so no result a test or a user can see changes.

// smallestNormal returns the smallest positive normal number of F.
func smallestNormal[F float]() F {
	var x F
	if unsafe.Sizeof(x) == 4 {
		return F(0x1p-126)
	}
	return F(0x1p-1022)
}

// flushSubnormal returns x, or 0 when |x| < tiny (tiny: smallestNormal).
func flushSubnormal[F float](x, tiny F) F {
	if x < tiny && x > -tiny {
		return 0
	}
	return x
}

// isSubnormal reports whether x is a nonzero float32 below the smallest normal one.
func isSubnormal(x float32) bool {
	b := math.Float32bits(x) &^ (1 << 31)
	return b != 0 && b < 1<<23
}
