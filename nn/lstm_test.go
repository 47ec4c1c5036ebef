package nn

import (
	"fmt"
	"testing"
)

// BenchmarkLSTM times the recipe's LSTM (E=100, H=256, 2 layers, bidirectional, B=64, T=200)
// inside its op: training step (forward + backward) and evaluation (forward only), with all
// sequences full length or lengths varied in [T/2, T], and OpenBLAS at 1 or 2 threads.
func BenchmarkLSTM(b *testing.B) {
	for _, train := range []bool{true, false} {
		for _, varied := range []bool{false, true} {
			for _, tw := range [][2]int{{1, 2}, {2, 2}, {2, 1}} {
				name := fmt.Sprintf("%s/%s/blas%d_workers%d", map[bool]string{true: "train", false: "eval"}[train],
					map[bool]string{true: "varied", false: "full"}[varied], tw[0], tw[1])
				b.Run(name, func(b *testing.B) {
					benchRNN(b, cellLSTM, 100, 256, 2, 64, 200, train, varied, true, tw[0], tw[1])
				})
			}
		}
	}
}
