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
			y, err := c.Apply(x, params, lengths, T, InputGrad(needDX))
			return y, check, err
		}}.check(t)
	}
}

// The backward pass shares its work among the workers; the gradients must not depend on how
// many there are.
func TestTextCNNWorkersAgree(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 5))
	const B, T, E, F = 6, 12, 7, 20
	widths := []int{3, 4, 5}
	lengths := []int{12, 10, 9, 6, 3, 1}
	x := make([]float32, B*T*E)
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	dy := make([]float32, B*len(widths)*F)
	for i := range dy {
		dy[i] = float32(r.NormFloat64())
	}
	run := func(workers int) [][]float32 {
		dev := testCPU(t)
		dev.Workers = workers
		c := NewTextCNN(dev, "convs.", E, F, widths)
		c.Init(NewRNG(3))
		g := G.NewGraph()
		xn := input32(g, "x", x, B*T, E)
		y, err := c.Forward(xn, lengths, T, true)
		if err != nil {
			t.Fatal(err)
		}
		return runGrads(t, g, y, dy, append(G.Nodes{xn}, g.ByName("convs.0.weight")[0], g.ByName("convs.2.bias")[0])...)
	}
	one, two := run(1), run(2)
	for i := range one {
		for j := range one[i] {
			if one[i][j] != two[i][j] {
				t.Fatalf("gradient %d element %d: %v with 1 worker, %v with 2", i, j, one[i][j], two[i][j])
			}
		}
	}
}
