package nn

// The recipe's models (RECIPE.md, "Models"): configurations, validation and construction.

import (
	"fmt"
	"math"
)

// The model kinds.
const (
	KindLSTM  = "lstm"
	KindCNN   = "cnn"
	KindBiGRU = "bigru"
)

// The bigru's poolings (Config.Pool).
const (
	// PoolLast feeds the classifier the last layer's final states [forward | backward] (the
	// recipe).
	PoolLast = "last"
	// PoolConcat feeds it the final states, the mean and the max over time of the last
	// layer's outputs (ULMFiT's concat pooling, see SeqPool): three times as wide.
	PoolConcat = "concat"
)

// DefaultPadID is the recipe's <pad> id (<unk> is 0).
const DefaultPadID = 1

// DefaultEncoderDim is the hidden size of the recipe's default encoder for the bigru
// (all-MiniLM-L6-v2); set Config.InputDim to the encoder actually used.
const DefaultEncoderDim = 384

// DefaultConfig returns the recipe's configuration of a model kind. vocabSize is the vocabulary
// size of the word models (lstm, cnn) and is ignored for the bigru.
//
//	lstm:  embedding 100, bidirectional LSTM 256 x 2 layers, dropout 0.5, 1 output
//	cnn:   embedding 100, widths 3/4/5 x 100 filters, dropout 0.5, 1 output
//	bigru: input 384 (the encoder's hidden size), bidirectional GRU 256 x 2 layers, dropout 0.25
func DefaultConfig(kind string, vocabSize int) (Config, error) {
	var c Config
	switch kind {
	case KindLSTM:
		c = Config{Kind: kind, VocabSize: vocabSize, PadID: DefaultPadID, EmbedDim: 100,
			Hidden: 256, Layers: 2, Bidirectional: true, Dropout: 0.5, Outputs: 1}
	case KindCNN:
		c = Config{Kind: kind, VocabSize: vocabSize, PadID: DefaultPadID, EmbedDim: 100,
			Filters: 100, Widths: []int{3, 4, 5}, Dropout: 0.5, Outputs: 1}
	case KindBiGRU:
		c = Config{Kind: kind, PadID: -1, InputDim: DefaultEncoderDim,
			Hidden: 256, Layers: 2, Bidirectional: true, Dropout: 0.25, Outputs: 1}
	default:
		return c, fmt.Errorf("nn: unknown model %q (want %s, %s or %s)", kind, KindLSTM, KindCNN, KindBiGRU)
	}
	return c, c.Validate()
}

// Validate checks that the configuration describes a model NewModel can build.
func (c Config) Validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("nn: %s model configuration: %s", c.Kind, fmt.Sprintf(format, a...))
	}
	switch c.Kind {
	case KindLSTM, KindCNN, KindBiGRU:
	default:
		return fmt.Errorf("nn: unknown model %q (want %s, %s or %s)", c.Kind, KindLSTM, KindCNN, KindBiGRU)
	}
	if c.Outputs < 1 {
		return bad("outputs = %d, want at least 1", c.Outputs)
	}
	if !(c.Dropout >= 0 && c.Dropout < 1) {
		return bad("dropout %v is outside [0, 1)", c.Dropout)
	}
	const maxWeights = 1 << 31 // one tensor's weights must fit an int32-indexed buffer
	if c.Kind == KindLSTM || c.Kind == KindCNN {
		switch {
		case c.VocabSize < 1:
			return bad("vocabulary size %d, want at least 1", c.VocabSize)
		case c.EmbedDim < 1:
			return bad("embedding size %d, want at least 1", c.EmbedDim)
		case float64(c.VocabSize)*float64(c.EmbedDim) >= maxWeights:
			return bad("embedding of %d x %d is too large", c.VocabSize, c.EmbedDim)
		case c.PadID < -1 || c.PadID >= c.VocabSize:
			return bad("padding id %d is outside the vocabulary of %d (use -1 for none)", c.PadID, c.VocabSize)
		}
	}
	if c.Kind == KindLSTM || c.Kind == KindBiGRU {
		switch {
		case c.Hidden < 1:
			return bad("hidden size %d, want at least 1", c.Hidden)
		case c.Layers < 1:
			return bad("%d layers, want at least 1", c.Layers)
		case float64(c.Hidden)*4*float64(max(c.Hidden, c.EmbedDim, c.InputDim)*2) >= maxWeights:
			return bad("hidden size %d is too large", c.Hidden)
		}
	}
	switch c.Kind {
	case KindCNN:
		if c.Filters < 1 {
			return bad("%d filters, want at least 1", c.Filters)
		}
		if len(c.Widths) == 0 {
			return bad("no convolution widths")
		}
		for _, w := range c.Widths {
			if w < 1 || w > 1000 {
				return bad("convolution width %d is outside [1, 1000]", w)
			}
		}
	case KindBiGRU:
		if c.InputDim < 1 {
			return bad("input size %d, want at least 1 (the encoder's hidden size)", c.InputDim)
		}
	}
	switch {
	case c.Pool == "" || c.Pool == PoolLast:
	case c.Pool == PoolConcat && c.Kind == KindBiGRU:
	case c.Pool == PoolConcat:
		return bad("pooling %q is for the bigru", c.Pool)
	default:
		return bad("unknown pooling %q (want %s or %s)", c.Pool, PoolLast, PoolConcat)
	}
	if math.IsNaN(c.Dropout) {
		return bad("dropout is NaN")
	}
	if n := c.weights(); n >= maxModelWeights {
		return bad("about %.3g weights, over the %d a model may have (a damaged configuration?)", n, maxModelWeights)
	}
	return nil
}

// maxModelWeights bounds a whole model (4 GiB of float32), so that a damaged configuration is an
// error before anything is allocated, not a process killed for memory.
const maxModelWeights = 1 << 30

// weights is about how many weights the model has (the large tensors: embedding, recurrent
// layers, convolutions), in float64 so that no size can overflow.
func (c Config) weights() float64 {
	n := 0.0
	if c.Kind == KindLSTM || c.Kind == KindCNN {
		n += float64(c.VocabSize) * float64(c.EmbedDim)
	}
	switch c.Kind {
	case KindLSTM, KindBiGRU:
		gates, in := 4.0, float64(c.EmbedDim)
		if c.Kind == KindBiGRU {
			gates, in = 3, float64(c.InputDim)
		}
		dirs := 1.0
		if c.Bidirectional {
			dirs = 2
		}
		h := float64(c.Hidden)
		perLayer := func(in float64) float64 { return dirs * gates * h * (in + h + 2) }
		n += perLayer(in) + float64(c.Layers-1)*perLayer(dirs*h)
	case KindCNN:
		for _, w := range c.Widths {
			n += float64(c.Filters) * float64(w) * float64(c.EmbedDim)
		}
	}
	return n
}

// NewModel builds the model cfg describes, its weights initialised as PyTorch initialises each
// layer, from rng.
func NewModel(dev *CPU, cfg Config, rng *RNG) (Model, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if dev == nil || dev.BLAS == nil {
		return nil, fmt.Errorf("nn: NewModel needs a device")
	}
	if rng == nil {
		return nil, fmt.Errorf("nn: NewModel needs a random generator for the initial weights")
	}
	switch cfg.Kind {
	case KindCNN:
		return newCNNClassifier(dev, cfg, rng), nil
	case KindLSTM:
		m, err := newLSTMClassifier(dev, cfg, rng)
		if err != nil {
			return nil, err
		}
		return m, nil
	case KindBiGRU:
		m, err := newGRUClassifier(dev, cfg, rng)
		if err != nil {
			return nil, err
		}
		return m, nil
	}
	return nil, fmt.Errorf("nn: unknown model %q", cfg.Kind)
}

// WordModel is a model over token ids with a word embedding (lstm, cnn): pretrained vectors
// and freezing go through its Embedding.
type WordModel interface {
	Model
	WordEmbedding() *Embedding
}

// checkInput checks a batch against a model: lengths in [1, T], descending when sorted is set
// (packed recurrent layers need it), and the ids (word models) or features (feature models)
// of the right size.
func checkInput(cfg Config, in *Input, sorted bool) error {
	if in == nil || len(in.Lengths) == 0 {
		return fmt.Errorf("nn: %s model: empty batch", cfg.Kind)
	}
	B := len(in.Lengths)
	for b, l := range in.Lengths {
		if l < 1 || l > in.T {
			return fmt.Errorf("nn: %s model: sequence %d has length %d, outside [1, T=%d]", cfg.Kind, b, l, in.T)
		}
		if sorted && b > 0 && l > in.Lengths[b-1] {
			return fmt.Errorf("nn: %s model: lengths must be sorted longest first (sequence %d: %d after %d)", cfg.Kind, b, l, in.Lengths[b-1])
		}
	}
	if cfg.Kind == KindBiGRU {
		if in.Dim != cfg.InputDim || len(in.Feats) != in.T*B*in.Dim {
			return fmt.Errorf("nn: %s model: features are %d values of width %d, want %d x %d x %d", cfg.Kind, len(in.Feats), in.Dim, in.T, B, cfg.InputDim)
		}
		return nil
	}
	if len(in.IDs) != B*in.T {
		return fmt.Errorf("nn: %s model: %d ids for a batch of %d x %d", cfg.Kind, len(in.IDs), B, in.T)
	}
	return nil
}
