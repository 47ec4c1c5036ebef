package gpu

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

func TestLayout(t *testing.T) {
	var l layout
	if err := l.set([]int{4, 2, 2, 1}, 5); err != nil {
		t.Fatal(err)
	}
	// Steps 0..4 have 4, 3, 1, 1, 0 active sequences.
	if !slices.Equal(l.nb, []int32{4, 3, 1, 1, 0, 0}) || !slices.Equal(l.off, []int32{0, 4, 7, 8, 9, 9}) || l.N != 9 {
		t.Fatalf("nb %v off %v N %d", l.nb, l.off, l.N)
	}
	if !slices.Equal(l.rowT, []int32{0, 0, 0, 0, 1, 1, 1, 2, 3}) || !slices.Equal(l.last, []int32{8, 5, 6, 3}) {
		t.Fatalf("rowT %v last %v", l.rowT, l.last)
	}
	for _, bad := range [][]int{{}, {2, 3}, {0}, {6}} {
		if err := l.set(bad, 5); err == nil {
			t.Errorf("lengths %v accepted", bad)
		}
	}
}

// TestLayoutRandom checks the layout against its definition, and the recurrence bookkeeping the
// kernels rely on: the rows a step's recurrent product reaches (prev) are exactly the rows the
// next step of the backward pass reads it for (cont).
func TestLayoutRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var l layout
	for trial := 0; trial < 50; trial++ {
		B, T := 1+r.IntN(9), 1+r.IntN(12)
		lengths := make([]int, B)
		for i := range lengths {
			lengths[i] = 1 + r.IntN(T)
		}
		slices.SortFunc(lengths, func(a, b int) int { return b - a })
		T = lengths[0] + r.IntN(3)
		if err := l.set(lengths, T); err != nil {
			t.Fatal(err)
		}
		row := 0
		for tt := 0; tt < T; tt++ {
			active := 0
			for _, x := range lengths {
				if x > tt {
					active++
				}
			}
			if int(l.nb[tt]) != active || int(l.off[tt]) != row {
				t.Fatalf("lengths %v: step %d: nb %d off %d, want %d %d", lengths, tt, l.nb[tt], l.off[tt], active, row)
			}
			for b := 0; b < active; b++ {
				if l.rowT[row+b] != int32(tt) {
					t.Fatalf("rowT[%d] = %d, want %d", row+b, l.rowT[row+b], tt)
				}
			}
			row += active
		}
		for b, x := range lengths {
			if int(l.last[b]) != int(l.off[x-1])+b {
				t.Fatalf("last[%d] = %d", b, l.last[b])
			}
		}
		for tt := 0; tt < T; tt++ {
			if tt+1 < T { // forward: step tt+1 reaches step tt, processed next
				if _, m := l.prev(tt+1, 0); m != l.cont(tt, 0) {
					t.Fatalf("forward step %d: prev reaches %d rows, cont %d", tt, m, l.cont(tt, 0))
				}
			} else if l.cont(tt, 0) != 0 {
				t.Fatalf("forward: the last step continues %d rows", l.cont(tt, 0))
			}
			if tt > 0 { // reverse: step tt-1 reaches step tt, processed next
				if _, m := l.prev(tt-1, 1); m != l.cont(tt, 1) {
					t.Fatalf("reverse step %d: prev reaches %d rows, cont %d", tt, m, l.cont(tt, 1))
				}
			} else if l.cont(0, 1) != 0 {
				t.Fatal("reverse: step 0 continues rows")
			}
		}
	}
}

func TestCSR(t *testing.T) {
	var c csr
	ids := []int32{5, 1, 3, 5, 0, 3, 5, 1}
	rows := []int32{10, 11, 12, 13, 14, 15, 16, 17}
	if err := c.build(ids, rows, 6, 1); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.uniq, []int32{0, 3, 5}) || !slices.Equal(c.start, []int32{0, 1, 3, 6}) ||
		!slices.Equal(c.rows, []int32{14, 12, 15, 10, 13, 16}) {
		t.Fatalf("uniq %v start %v rows %v", c.uniq, c.start, c.rows)
	}
	if err := c.build([]int32{2, 2}, nil, 6, -1); err != nil || !slices.Equal(c.rows, []int32{0, 1}) {
		t.Fatalf("rows by position: %v %v", c.rows, err)
	}
	if err := c.build([]int32{7}, nil, 6, -1); err == nil {
		t.Fatal("an id outside the vocabulary was accepted")
	}
}

func TestPacking(t *testing.T) {
	var l layout
	lengths := []int{3, 1}
	if err := l.set(lengths, 3); err != nil {
		t.Fatal(err)
	}
	ids := []int32{7, 8, 9, 4, 1, 1} // B x T, batch-major
	packed, order, rowOf := packIDs(&l, ids, nil, nil, nil)
	// Packed: step 0 -> (0,0)=7, (1,0)=4; step 1 -> 8; step 2 -> 9.
	if !slices.Equal(packed, []int32{7, 4, 8, 9}) || !slices.Equal(order, []int32{7, 8, 9, 4}) || !slices.Equal(rowOf, []int32{0, 2, 3, 1}) {
		t.Fatalf("packed %v order %v rows %v", packed, order, rowOf)
	}
	feats := []float32{ // (T*B, 2), time-major
		1, 1, 2, 2, // t=0: b=0, b=1
		3, 3, 0, 0, // t=1
		4, 4, 0, 0, // t=2
	}
	if got := packFeats(&l, feats, nil, 2); !slices.Equal(got, []float32{1, 1, 2, 2, 3, 3, 4, 4}) {
		t.Fatalf("packed features %v", got)
	}
	p, T := padIDs([]int32{2, 3, 4, 5}, 2, 2, 4, 1, nil)
	if T != 4 || !slices.Equal(p, []int32{2, 3, 1, 1, 4, 5, 1, 1}) {
		t.Fatalf("padded %v T %d", p, T)
	}
	if q, T := padIDs(ids, 2, 3, 2, 1, nil); T != 3 || &q[0] != &ids[0] {
		t.Fatal("a batch long enough was copied")
	}
	var u upload
	if o := u.addInts([]int32{1, 2}); o != 0 {
		t.Fatal(o)
	}
	if o := u.addInts([]int32{3}); o != 2 {
		t.Fatal(o)
	}
	if o := u.addFloats([]float32{0.5}); o != 3 || u.words() != 4 {
		t.Fatalf("float offset %d, words %d", o, u.words())
	}
}

func TestGridFor(t *testing.T) {
	for _, c := range []struct {
		n    int64
		want int
	}{{0, 1}, {1, 1}, {256, 1}, {257, 2}, {1 << 40, maxBlocks}} {
		if got := gridFor(c.n); got != c.want {
			t.Errorf("gridFor(%d) = %d, want %d", c.n, got, c.want)
		}
	}
}

func TestDropoutMask(t *testing.T) {
	if dropThreshold(0) != 0 || dropThreshold(0.5) != 1<<31 || dropThreshold(0.9999999999999) != math.MaxUint32 {
		t.Fatal("thresholds")
	}
	for _, p := range []float64{0.1, 0.25, 0.5} {
		thr := dropThreshold(p)
		seed := siteSeed(12345, 2)
		kept := 0
		const n = 200000
		for i := int64(0); i < n; i++ {
			if keep(seed, i, thr) {
				kept++
			}
		}
		if f := float64(kept) / n; math.Abs(f-(1-p)) > 0.005 {
			t.Errorf("p = %v: kept %.4f", p, f)
		}
	}
	// Different sites and steps give different masks.
	same := 0
	for i := int64(0); i < 1000; i++ {
		if keep(siteSeed(1, 0), i, 1<<31) == keep(siteSeed(1, 1), i, 1<<31) {
			same++
		}
	}
	if same < 400 || same > 600 {
		t.Fatalf("two sites agree on %d of 1000 elements", same)
	}
	if !keep(7, 3, 0) {
		t.Fatal("threshold 0 dropped an element")
	}
}
