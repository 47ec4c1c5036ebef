package nn

import "math"

// BatchBytes estimates, from above, the memory that one forward pass (Eval) or one training step
// (Train) of the model cfg keeps for a padded batch of B sequences of T steps: the buffers that
// grow with B×T. They are the token ids; the embedding's output (or the bigru's input
// features) and, in training, its gradient and dropout copies; for the recurrent models in
// evaluation each layer's output, and in training the last layer's output and its gradient plus
// what the activation budget bounds (the gate activations, the layer outputs that feed the next
// layer and their gradients, at most DefaultMaxActivationBytes; beyond it the layers recompute
// instead of keeping). The weights, their gradients, the optimiser's state and the fixed-size
// scratch (the CNN's im2col blocks) are not counted, nor the garbage a step leaves for the
// collector. The coefficients are checked against measured allocations by
// TestBatchBytesBoundsAStep. Values are float32. The estimate saturates at math.MaxInt64, so
// that a huge B×T compares as too large rather than overflowing.
func BatchBytes(cfg Config, B, T int, mode Mode) int64 {
	const f = 4 // bytes per float32
	tokens := float64(B) * float64(T)
	train := mode == Train
	in := float64(cfg.EmbedDim)
	if cfg.Kind == KindBiGRU {
		in = float64(cfg.InputDim)
	}
	perToken := 4 + 5*in // the int32 id, the embedding's output row and a little more
	if train {
		perToken = 4 + 3*f*in
	}
	var kept float64
	if cfg.Kind == KindLSTM || cfg.Kind == KindBiGRU {
		dirs := 1.0
		if cfg.Bidirectional {
			dirs = 2
		}
		units := dirs * float64(cfg.Hidden) // one layer's output width
		if train {
			perToken += 2 * f * units
			kept = min(tokens*float64(cfg.Layers)*units*11*f, DefaultMaxActivationBytes)
		} else {
			perToken += float64(cfg.Layers) * f * units
		}
	}
	total := tokens*perToken + kept
	if total >= math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(total)
}
