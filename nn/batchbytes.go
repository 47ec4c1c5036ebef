package nn

import "math"

// BatchBytes estimates, from above, the memory that one forward pass (Eval) or one training step
// (Train) of the model cfg allocates for a padded batch of B sequences of T steps: the buffers
// that grow with B×T. They are the token ids; the embedding's output (or the bigru's input
// features) and, in training, its gradient and a dropout copy; for the recurrent models each
// layer's output and, in training, its gradient, dropout copy and that copy's gradient, plus the
// gate activations up to the default activation budget (DefaultMaxActivationBytes: beyond it
// the layers recompute instead of keeping). The weights, the optimiser's state and the
// fixed-size scratch (the CNN's im2col blocks) are not counted. Values are float32. The
// estimate saturates at math.MaxInt64, so that a huge B×T compares as too large rather than
// overflowing.
func BatchBytes(cfg Config, B, T int, mode Mode) int64 {
	const f = 4 // bytes per float32
	tokens := float64(B) * float64(T)
	train := mode == Train
	in := float64(cfg.EmbedDim)
	if cfg.Kind == KindBiGRU {
		in = float64(cfg.InputDim)
	}
	perToken := 4 + f*in // the int32 id and the embedding's output row
	if train {
		perToken += 2 * f * in
	}
	var gates float64
	if cfg.Kind == KindLSTM || cfg.Kind == KindBiGRU {
		dirs, nGates := 1.0, 4.0
		if cfg.Bidirectional {
			dirs = 2
		}
		if cfg.Kind == KindBiGRU {
			nGates = 3
		}
		out, layers := dirs*float64(cfg.Hidden), float64(cfg.Layers)
		perToken += layers * f * out
		if train {
			perToken += layers * 3 * f * out
			gates = min(tokens*layers*dirs*nGates*float64(cfg.Hidden)*f, DefaultMaxActivationBytes)
		}
	}
	total := tokens*perToken + gates
	if total >= math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(total)
}
