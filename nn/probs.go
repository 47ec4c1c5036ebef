package nn

import "math"

// Probabilities returns the class probabilities of one example's logits, appended to dst[:0]:
// for a binary model's single logit z, [1 - σ(z), σ(z)] (class 1 is the positive class); for
// K > 1 logits, their softmax (computed from the largest logit, so no logit overflows).
func Probabilities(dst []float64, logits []float32) []float64 {
	dst = dst[:0]
	switch len(logits) {
	case 0:
		return dst
	case 1:
		p := 1 / (1 + math.Exp(-float64(logits[0])))
		return append(dst, 1-p, p)
	}
	top := float64(logits[0])
	for _, z := range logits[1:] {
		top = max(top, float64(z))
	}
	var sum float64
	for _, z := range logits {
		e := math.Exp(float64(z) - top)
		dst = append(dst, e)
		sum += e
	}
	for i := range dst {
		dst[i] /= sum
	}
	return dst
}

// Predicted returns the class a binary model's logit or a K-class model's logits choose:
// logit > 0 (probability above one half) for binary, else the first largest logit.
func Predicted(logits []float32) int {
	if len(logits) == 1 {
		if logits[0] > 0 {
			return 1
		}
		return 0
	}
	best := 0
	for i, z := range logits {
		if z > logits[best] {
			best = i
		}
	}
	return best
}
