package bert

import (
	"encoding/json"
	"fmt"
	"os"
)

// Config is the architecture of an encoder, read from a Hugging Face config.json.
type Config struct {
	// ModelType is "bert" (BertModel and models of its layout, such as MiniLM) or "distilbert".
	ModelType    string `json:"model_type"`
	VocabSize    int    `json:"vocab_size"`
	Hidden       int    `json:"hidden_size"`
	Layers       int    `json:"num_hidden_layers"`
	Heads        int    `json:"num_attention_heads"`
	Intermediate int    `json:"intermediate_size"`
	MaxPositions int    `json:"max_position_embeddings"`
	// TypeVocabSize is the number of token types (BERT: 2; DistilBERT has none: 0).
	TypeVocabSize int `json:"type_vocab_size"`
	// Activation of the feed-forward layer: "gelu" (exact, with erf), "gelu_new" or
	// "gelu_pytorch_tanh" (tanh approximation), or "relu".
	Activation   string  `json:"hidden_act"`
	LayerNormEps float64 `json:"layer_norm_eps"`
	// Sinusoidal says the position embeddings are the fixed sines and cosines (DistilBERT's
	// sinusoidal_pos_embds); they are computed when the checkpoint does not hold them.
	Sinusoidal bool `json:"sinusoidal_pos_embds"`
}

// MaxLen is the longest input in word pieces, [CLS] and [SEP] included: min(512,
// max_position_embeddings), the recipe's truncation.
func (c Config) MaxLen() int { return min(512, c.MaxPositions) }

// HeadDim is the width of one attention head.
func (c Config) HeadDim() int { return c.Hidden / c.Heads }

// ReadConfig reads config.json and checks that it describes a supported encoder.
func ReadConfig(path string) (Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("bert: %w", err)
	}
	bad := func(format string, a ...any) error {
		return fmt.Errorf("bert: %s: %s", path, fmt.Sprintf(format, a...))
	}
	var raw map[string]any
	if err := json.Unmarshal(b, &raw); err != nil {
		return Config{}, bad("not valid JSON: %v", err)
	}
	mt, _ := raw["model_type"].(string)
	var c Config
	switch mt {
	case "bert":
		c = Config{LayerNormEps: 1e-12, Activation: "gelu", TypeVocabSize: 2}
		if err := json.Unmarshal(b, &c); err != nil {
			return Config{}, bad("%v", err)
		}
		if pt, ok := raw["position_embedding_type"].(string); ok && pt != "absolute" {
			return Config{}, bad("position_embedding_type %q is not supported (absolute only)", pt)
		}
		if dec, _ := raw["is_decoder"].(bool); dec {
			return Config{}, bad("is_decoder is true: decoders are not supported, only encoders")
		}
	case "distilbert":
		var d struct {
			VocabSize    int    `json:"vocab_size"`
			Dim          int    `json:"dim"`
			Layers       int    `json:"n_layers"`
			Heads        int    `json:"n_heads"`
			HiddenDim    int    `json:"hidden_dim"`
			MaxPositions int    `json:"max_position_embeddings"`
			Activation   string `json:"activation"`
			Sinusoidal   bool   `json:"sinusoidal_pos_embds"`
		}
		d.Activation = "gelu"
		if err := json.Unmarshal(b, &d); err != nil {
			return Config{}, bad("%v", err)
		}
		// DistilBERT's layer norms use eps 1e-12, fixed in its code.
		c = Config{ModelType: mt, VocabSize: d.VocabSize, Hidden: d.Dim, Layers: d.Layers, Heads: d.Heads,
			Intermediate: d.HiddenDim, MaxPositions: d.MaxPositions, Activation: d.Activation,
			LayerNormEps: 1e-12, Sinusoidal: d.Sinusoidal}
	case "":
		return Config{}, bad("no model_type (want \"bert\" or \"distilbert\")")
	default:
		return Config{}, bad("model_type %q is not supported (supported: \"bert\", which covers MiniLM, and \"distilbert\")", mt)
	}
	if err := c.check(); err != nil {
		return Config{}, bad("%v", err)
	}
	return c, nil
}

func (c Config) check() error {
	for _, f := range []struct {
		name string
		v    int
	}{{"vocab size", c.VocabSize}, {"hidden size", c.Hidden}, {"layers", c.Layers}, {"attention heads", c.Heads},
		{"intermediate size", c.Intermediate}, {"max positions", c.MaxPositions}} {
		if f.v <= 0 {
			return fmt.Errorf("%s is %d", f.name, f.v)
		}
	}
	if c.Hidden%c.Heads != 0 {
		return fmt.Errorf("hidden size %d is not a multiple of the %d heads", c.Hidden, c.Heads)
	}
	if c.TypeVocabSize < 0 {
		return fmt.Errorf("type vocab size is %d", c.TypeVocabSize)
	}
	if c.LayerNormEps <= 0 {
		return fmt.Errorf("layer_norm_eps is %g", c.LayerNormEps)
	}
	if _, err := activation(c.Activation); err != nil {
		return err
	}
	return nil
}
