package nn

// TrainFLOPs estimates the matrix-product work of one training step, for GFLOP/s figures.

// ForwardFLOPs estimates the floating-point operations of the matrix products of one forward
// pass of the model cfg describes over the batch in (2 per multiply-add), counting the work the
// recipe needs: recurrent layers over each sequence's true length (packed), convolutions over
// the windows inside max(length, widest filter), and the classifier's Outputs logits (one for
// binary, K for K classes). Element-wise work is left out.
func ForwardFLOPs(cfg Config, in *Input) float64 {
	B := float64(in.B())
	tokens := float64(in.Tokens())
	dirs := 1.0
	if cfg.Bidirectional {
		dirs = 2
	}
	H := float64(cfg.Hidden)
	var f float64
	switch cfg.Kind {
	case KindLSTM, KindBiGRU:
		gates, inDim := 4.0, float64(cfg.EmbedDim)
		if cfg.Kind == KindBiGRU {
			gates, inDim = 3, float64(cfg.InputDim)
		}
		for l := 0; l < cfg.Layers; l++ {
			if l > 0 {
				inDim = dirs * H
			}
			f += 2 * tokens * dirs * (inDim + H) * gates * H
		}
		f += 2 * B * cfg.classifierInputs() * float64(cfg.Outputs)
	case KindCNN:
		minLen := 0
		for _, w := range cfg.Widths {
			minLen = max(minLen, w)
		}
		for _, l := range in.Lengths {
			eff := max(l, minLen)
			for _, w := range cfg.Widths {
				f += 2 * float64((eff-w+1)*cfg.Filters*cfg.EmbedDim*w)
			}
		}
		f += 2 * B * cfg.classifierInputs() * float64(cfg.Outputs)
	}
	return f
}

// TrainFLOPs estimates one training step's matrix-product work as 3x the forward pass (the
// backward pass computing both input and weight gradients), the usual convention. The text
// CNN's own backward pass does far less (only the max-pooled windows get gradients), so its
// GFLOP/s figure compares with a dense implementation doing the same step.
func TrainFLOPs(cfg Config, in *Input) float64 { return 3 * ForwardFLOPs(cfg, in) }
