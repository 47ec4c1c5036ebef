package train

import (
	"errors"
	"math"
	"strings"
	"testing"
)

// TestCheckNamesTheField: Check answers a *ConfigError that names the field refused, so that a
// caller (the CLI) can say which of its settings is wrong.
func TestCheckNamesTheField(t *testing.T) {
	ok := DefaultConfig("cnn")
	ok.Data = "sample"
	if err := ok.Check(); err != nil {
		t.Fatalf("the recipe's configuration: %v", err)
	}
	for _, c := range []struct {
		field string
		edit  func(*Config)
	}{
		{"model", func(c *Config) { c.Kind = "transformer" }},
		{"data", func(c *Config) { c.Data = "" }},
		{"dropout", func(c *Config) { c.Dropout = 1.5 }},
		{"dropout", func(c *Config) { c.Dropout = math.NaN() }},
		{"lr", func(c *Config) { c.LR = math.Inf(1) }},
		{"vocab_size", func(c *Config) { c.VocabSize = -1 }},
		{"patience", func(c *Config) { c.Patience = -1 }},
		{"limit", func(c *Config) { c.Limit = -1 }},
		{"max_len", func(c *Config) { c.MaxLen = -1 }},
		{"max_batches", func(c *Config) { c.MaxBatches = -1 }},
		{"hidden", func(c *Config) { c.Hidden = -1 }},
		{"threads", func(c *Config) { c.Threads = -2 }},
		{"clip_norm", func(c *Config) { c.ClipNorm = -1 }},
		{"clip_norm", func(c *Config) { c.ClipNorm = math.Inf(1) }},
		{"device", func(c *Config) { c.Device = "tpu" }},
		{"encoder", func(c *Config) { c.Encoder = "x" }},
		{"pool", func(c *Config) { c.Pool = "mean" }},
		{"freeze_embedding", func(c *Config) { c.FreezeEmbedding = true }},
	} {
		cfg := ok
		c.edit(&cfg)
		var ce *ConfigError
		if err := cfg.Check(); !errors.As(err, &ce) || ce.Field != c.field {
			t.Errorf("%s: got %v, want a *ConfigError naming %s", c.field, err, c.field)
		}
	}
}

// TestDefaultDropout: the recipe's dropout comes with the model kind (no negative "default"
// sentinel); a negative dropout is refused like any value outside [0, 1).
func TestDefaultDropout(t *testing.T) {
	for model, want := range map[string]float64{"lstm": 0.5, "cnn": 0.5, "bigru": 0.25} {
		if got := DefaultConfig(model).Dropout; got != want {
			t.Errorf("DefaultConfig(%q).Dropout = %v, want %v", model, got, want)
		}
	}
	cfg := DefaultConfig("cnn")
	cfg.Data = "sample"
	cfg.Dropout = -1
	if err := cfg.Check(); err == nil || !strings.Contains(err.Error(), "dropout -1") {
		t.Errorf("dropout -1: got %v, want a refusal", err)
	}
}
