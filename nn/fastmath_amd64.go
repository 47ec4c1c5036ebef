package nn

// The AVX2 + FMA versions of the float32 activations (fastmath_amd64.s).

//go:noescape
func tanhAVX2(dst, src []float32)

//go:noescape
func sigmoidAVX2(dst, src []float32)

func cpuid(eaxArg, ecxArg uint32) (eax, ebx, ecx, edx uint32)
func xgetbv() (eax, edx uint32)

// hasAVX2FMA reports whether the CPU and the OS support AVX2 and FMA. It is computed once, at
// start-up, and never changes.
var hasAVX2FMA = detectAVX2FMA()

func detectAVX2FMA() bool {
	maxID, _, _, _ := cpuid(0, 0)
	if maxID < 7 {
		return false
	}
	_, _, ecx1, _ := cpuid(1, 0)
	const fma, osxsave, avx = 1 << 12, 1 << 27, 1 << 28
	if ecx1&(fma|osxsave|avx) != fma|osxsave|avx {
		return false
	}
	if xcr0, _ := xgetbv(); xcr0&6 != 6 { // the OS saves the SSE and AVX registers
		return false
	}
	_, ebx7, _, _ := cpuid(7, 0)
	return ebx7&(1<<5) != 0
}

// tanhVec32 sets dst[i] = tanh(src[i]) for a prefix of src and returns its length.
func tanhVec32(dst, src []float32) int {
	if !hasAVX2FMA || len(src) < 8 {
		return 0
	}
	tanhAVX2(dst[:len(src)], src)
	return len(src) &^ 7
}

// sigmoidVec32 sets dst[i] = sigmoid(src[i]) for a prefix of src and returns its length.
func sigmoidVec32(dst, src []float32) int {
	if !hasAVX2FMA || len(src) < 8 {
		return 0
	}
	sigmoidAVX2(dst[:len(src)], src)
	return len(src) &^ 7
}

// hasVectorActivations reports whether the assembly activations are in use.
func hasVectorActivations() bool { return hasAVX2FMA }
