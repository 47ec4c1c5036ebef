//go:build !amd64

package nn

// Other architectures use the pure-Go activations only.

func tanhVec32(dst, src []float32) int    { return 0 }
func sigmoidVec32(dst, src []float32) int { return 0 }

func hasVectorActivations() bool { return false }
