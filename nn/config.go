package nn

// A model's configuration (RECIPE.md, "Models"): the Config that describes a model, the
// recipe's configurations, and their validation.

import (
	"fmt"
	"math"
)

// Config describes a model completely: with it, NewModel builds the same architecture (with
// fresh weights). It is saved as JSON next to every checkpoint.
type Config struct {
	// Kind is "lstm", "cnn" or "bigru".
	Kind string `json:"model"`
	// VocabSize and PadID describe the vocabulary of word models (lstm, cnn).
	VocabSize int `json:"vocab_size,omitempty"`
	PadID     int `json:"pad_id"`
	// EmbedDim is the width of the word embedding (word models).
	EmbedDim int `json:"embedding_dim,omitempty"`
	// InputDim is the width of the input features (bigru: the encoder's hidden size).
	InputDim int `json:"input_dim,omitempty"`
	// Hidden, Layers and Bidirectional shape the recurrent layers (lstm, bigru).
	Hidden        int  `json:"hidden_dim,omitempty"`
	Layers        int  `json:"layers,omitempty"`
	Bidirectional bool `json:"bidirectional,omitempty"`
	// Filters and Widths shape the convolutions (cnn).
	Filters int   `json:"filters,omitempty"`
	Widths  []int `json:"widths,omitempty"`
	// Pool is what the bigru's classifier reads of the recurrent output: PoolLast (or ""), the
	// recipe, or PoolConcat.
	Pool string `json:"pool,omitempty"`
	// Dropout is the probability of every dropout of the model.
	Dropout float64 `json:"dropout"`
	// Outputs is the number of logits: 1 for binary classification.
	Outputs int `json:"outputs"`
}

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
// layers, convolutions, and the classifier, which K classes make K times one logit's), in
// float64 so that no size can overflow.
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
	return n + c.classifierInputs()*float64(c.Outputs)
}

// classifierInputs is the width of the features the classifier (the last linear layer) reads.
func (c Config) classifierInputs() float64 {
	dirs := 1.0
	if c.Bidirectional {
		dirs = 2
	}
	switch {
	case c.Kind == KindCNN:
		return float64(c.Filters) * float64(len(c.Widths))
	case c.Pool == PoolConcat:
		return 3 * dirs * float64(c.Hidden)
	}
	return dirs * float64(c.Hidden)
}
