package nn

import (
	"math/rand/v2"
	"testing"

	G "gorgonia.org/gorgonia"
)

func TestTextCNNGradient(t *testing.T) {
	dev := testCPU(t)
	r := rand.New(rand.NewPCG(3, 4))
	const B, T, E, F = 4, 9, 5, 3
	widths := []int{2, 3, 4}
	lengths := []int{9, 6, 3, 1} // 3 and 1 are shorter than the widest filter
	for _, needDX := range []bool{true, false} {
		c := NewTextCNN(dev, "convs.", E, F, widths)
		c.BlockRows = 7 // several blocks, one ending mid-sequence
		gradCase{build: func(g *G.ExprGraph) (*G.Node, G.Nodes, error) {
			x := input64(g, "x", randn(r, B*T*E, 1), B*T, E)
			var params, check G.Nodes
			if needDX {
				check = append(check, x)
			}
			for i, w := range widths {
				wn := input64(g, "w"+string(rune('0'+i)), randn(r, F*E*w, 0.5), F, E, w)
				bn := input64(g, "b"+string(rune('0'+i)), randn(r, F, 0.5), F)
				params = append(params, wn, bn)
				check = append(check, wn, bn)
			}
			y, err := c.Apply(x, params, lengths, T, needDX)
			return y, check, err
		}}.check(t)
	}
}
