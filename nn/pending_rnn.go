package nn

import "fmt"

// Placeholders until the fused LSTM/GRU ops (branch rnn) are merged: the lstm and bigru models
// are built on them.

func newLSTMClassifier(dev *CPU, cfg Config, rng *RNG) (Model, error) {
	return nil, fmt.Errorf("nn: the %s model needs the fused LSTM op, not merged yet", cfg.Kind)
}

func newGRUClassifier(dev *CPU, cfg Config, rng *RNG) (Model, error) {
	return nil, fmt.Errorf("nn: the %s model needs the fused GRU op, not merged yet", cfg.Kind)
}
