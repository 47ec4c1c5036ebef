package nn

import (
	"fmt"
	"testing"
)

// BenchmarkGRU times the recipe's bigru head GRU (input 384 = all-MiniLM-L6-v2's hidden size,
// H=256, 2 layers, bidirectional, no input gradient: the features are frozen) inside its op,
// at B=64, T=200: training step (forward + backward) and evaluation (forward only), all
// sequences full length or lengths varied in [T/2, T], 2 workers (see BenchmarkLSTM).
func BenchmarkGRU(b *testing.B) {
	for _, train := range []bool{true, false} {
		for _, varied := range []bool{false, true} {
			name := fmt.Sprintf("%s/%s/workers2", map[bool]string{true: "train", false: "eval"}[train],
				map[bool]string{true: "varied", false: "full"}[varied])
			b.Run(name, func(b *testing.B) {
				benchRNN(b, cellGRU, 384, 256, 2, 64, 200, train, varied, false, 2, 2)
			})
		}
	}
}
