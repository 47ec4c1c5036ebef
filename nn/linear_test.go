package nn

import (
	"math/rand/v2"
	"testing"

	G "gorgonia.org/gorgonia"
)

func TestLinearGradient(t *testing.T) {
	dev := testCPU(t)
	r := rand.New(rand.NewPCG(1, 2))
	l := NewLinear(dev, "fc.", 7, 3)
	gradCase{build: func(g *G.ExprGraph) (*G.Node, G.Nodes, error) {
		x := input64(g, "x", randn(r, 5*7, 1), 5, 7)
		w := input64(g, "w", randn(r, 3*7, 1), 3, 7)
		b := input64(g, "b", randn(r, 3, 1), 3)
		y, err := l.Apply(x, w, b)
		return y, G.Nodes{x, w, b}, err
	}}.check(t)
}

func TestReLUGradient(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 3))
	gradCase{build: func(g *G.ExprGraph) (*G.Node, G.Nodes, error) {
		x := input64(g, "x", randn(r, 4*5, 1), 4, 5)
		y, err := ReLU(x)
		return y, G.Nodes{x}, err
	}}.check(t)
}
