package nn

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	G "gorgonia.org/gorgonia"
)

// poolCase is a packed batch with garbage (large values) on the padding rows, which the pool
// must not read.
func poolCase(r *rand.Rand, lengths []int, T, W int) []float64 {
	B := len(lengths)
	x := randn(r, T*B*W, 1)
	for b, l := range lengths {
		for t := l; t < T; t++ {
			for j := 0; j < W; j++ {
				x[(t*B+b)*W+j] = 100
			}
		}
	}
	return x
}

func TestSeqPoolGradient(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, lengths := range [][]int{{5, 3, 3, 1}, {4}, {2, 2}} {
		T, W := 6, 4
		p := NewSeqPool("pool")
		gradCase{build: func(g *G.ExprGraph) (*G.Node, G.Nodes, error) {
			x := input64(g, "x", poolCase(r, lengths, T, W), T*len(lengths), W)
			y, err := p.Forward(x, lengths, T)
			return y, G.Nodes{x}, err
		}}.check(t)
	}
}

// TestSeqPoolValues compares the op with the definition: per sequence, the mean and the max of
// its rows over its true length, in float32.
func TestSeqPoolValues(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	lengths, T, W := []int{7, 4, 4, 2, 1}, 7, 3
	B := len(lengths)
	x64 := poolCase(r, lengths, T, W)
	x := make([]float32, len(x64))
	for i, v := range x64 {
		x[i] = float32(v)
	}
	g := G.NewGraph()
	y, err := NewSeqPool("pool").Forward(input32(g, "x", x, T*B, W), lengths, T)
	if err != nil {
		t.Fatal(err)
	}
	vm := G.NewTapeMachine(g)
	defer vm.Close()
	if err := vm.RunAll(); err != nil {
		t.Fatal(err)
	}
	got := y.Value().Data().([]float32)
	if s := y.Shape(); s[0] != B || s[1] != 2*W {
		t.Fatalf("shape %v, want (%d, %d)", s, B, 2*W)
	}
	for b, l := range lengths {
		for j := 0; j < W; j++ {
			sum, mx := 0.0, math.Inf(-1)
			for tt := 0; tt < l; tt++ {
				v := float64(x[(tt*B+b)*W+j])
				sum += v
				mx = math.Max(mx, v)
			}
			if mean := got[b*2*W+j]; math.Abs(float64(mean)-sum/float64(l)) > 1e-6 {
				t.Errorf("sequence %d column %d: mean %v, want %v", b, j, mean, sum/float64(l))
			}
			if m := got[b*2*W+W+j]; float64(m) != mx {
				t.Errorf("sequence %d column %d: max %v, want %v", b, j, m, mx)
			}
		}
	}
}

func TestSeqPoolBadInput(t *testing.T) {
	g := G.NewGraph()
	x := input32(g, "x", make([]float32, 12), 6, 2)
	p := NewSeqPool("pool")
	for _, c := range []struct {
		lengths []int
		T       int
		want    string
	}{
		{nil, 3, "empty"},
		{[]int{3, 3}, 4, "want (T*B"},
		{[]int{3, 0}, 3, "length 0"},
		{[]int{4, 2}, 3, "length 4"},
	} {
		if _, err := p.Forward(x, c.lengths, c.T); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("lengths %v, T %d: %v, want an error with %q", c.lengths, c.T, err, c.want)
		}
	}
}
