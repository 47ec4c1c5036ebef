package train

import (
	"strings"
	"testing"
)

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
