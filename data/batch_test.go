package data

import (
	"encoding/json"
	"os"
	"slices"
	"testing"
)

// TestBatchesMatchTorchRef compares BucketBatches (two epochs from one generator) and
// EvalBatches with the output of torch_ref.py's own functions (scripts/gen_batch_vectors.py).
func TestBatchesMatchTorchRef(t *testing.T) {
	b, err := os.ReadFile("testdata/batches.json")
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Indices       []int     `json:"indices"`
		Lengths       []int     `json:"lengths"`
		Seed          uint64    `json:"seed"`
		Skip          int       `json:"skip"`
		BatchSize     int       `json:"batch_size"`
		Epochs        [][][]int `json:"epochs"`
		StateAfter    uint64    `json:"state_after"`
		EvalBatchSize int       `json:"eval_batch_size"`
		Eval          [][]int   `json:"eval"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	rng := NewSplitMix64(v.Seed)
	for range v.Skip {
		rng.Next()
	}
	indices := slices.Clone(v.Indices)
	for e, want := range v.Epochs {
		got := BucketBatches(v.Indices, v.Lengths, v.BatchSize, rng)
		if !equalBatches(got, want) {
			t.Fatalf("epoch %d: batches differ from torch_ref.py's (first: %v vs %v)", e+1, got[0], want[0])
		}
	}
	if rng.State != v.StateAfter {
		t.Fatalf("generator state %d after two epochs, torch_ref.py's %d", rng.State, v.StateAfter)
	}
	if !slices.Equal(indices, v.Indices) {
		t.Fatal("BucketBatches modified its input")
	}
	if got := EvalBatches(v.Indices, v.Lengths, v.EvalBatchSize); !equalBatches(got, v.Eval) {
		t.Fatal("eval batches differ from torch_ref.py's")
	}
}

func equalBatches(a, b [][]int) bool {
	return slices.EqualFunc(a, b, func(x, y []int) bool { return slices.Equal(x, y) })
}

func TestBucketBatchesProperties(t *testing.T) {
	n := 1000
	idx := make([]int, n)
	lengths := make([]int, n)
	for i := range idx {
		idx[i] = i
		lengths[i] = (i * 31) % 97
	}
	rng := NewSplitMix64(7)
	batches := BucketBatches(idx, lengths, 6, rng)
	var all []int
	for k, b := range batches {
		if len(b) == 0 || len(b) > 6 {
			t.Fatalf("batch %d has %d examples", k, len(b))
		}
		for j := 1; j < len(b); j++ {
			if lengths[b[j]] > lengths[b[j-1]] {
				t.Fatalf("batch %d not sorted by length, longest first", k)
			}
		}
		all = append(all, b...)
	}
	slices.Sort(all)
	if !slices.Equal(all, idx) {
		t.Fatal("batches are not a partition of the indices")
	}
	// Appending to a batch must not overwrite the next one.
	b0 := batches[0]
	_ = append(b0, -1)
	for _, b := range batches[1:] {
		if slices.Contains(b, -1) {
			t.Fatal("batches share capacity")
		}
	}
}

func TestPad(t *testing.T) {
	seqs := [][]int32{{5, 6, 7}, {8}, {9, 10, 11, 12, 13, 14}}
	labels := []int{1, 0, 1}
	got := Pad(nil, seqs, labels, []int{2, 0, 1}, PadOptions{PadID: PAD, MinLen: 5})
	wantIDs := []int32{
		9, 10, 11, 12, 13, 14,
		5, 6, 7, 1, 1, 1,
		8, 1, 1, 1, 1, 1,
	}
	if got.B != 3 || got.T != 6 || !slices.Equal(got.IDs, wantIDs) || !slices.Equal(got.Lengths, []int{6, 3, 1}) ||
		!slices.Equal(got.Labels, []float32{1, 1, 0}) || !slices.Equal(got.Index, []int{2, 0, 1}) {
		t.Fatalf("Pad = %+v", got)
	}
	// MinLen widens a batch of short sequences (the CNN's 5); lengths stay true.
	short := Pad(nil, seqs, labels, []int{0, 1}, PadOptions{PadID: PAD, MinLen: 5})
	if short.T != 5 || !slices.Equal(short.IDs, []int32{5, 6, 7, 1, 1, 8, 1, 1, 1, 1}) || !slices.Equal(short.Lengths, []int{3, 1}) {
		t.Fatalf("Pad with MinLen = %+v", short)
	}
	// MaxLen truncates, keeping the head; dst is reused.
	trunc := Pad(got, seqs, labels, []int{2, 0}, PadOptions{PadID: PAD, MaxLen: 4})
	if trunc != got || trunc.T != 4 || !slices.Equal(trunc.IDs, []int32{9, 10, 11, 12, 5, 6, 7, 1}) || !slices.Equal(trunc.Lengths, []int{4, 3}) {
		t.Fatalf("Pad with MaxLen = %+v", trunc)
	}
	if seqs[2][4] != 13 {
		t.Fatal("Pad modified its input")
	}
}

func TestEvalBatchesStable(t *testing.T) {
	lengths := []int{3, 5, 3, 5, 1}
	got := EvalBatches([]int{4, 0, 1, 2, 3}, lengths, 2)
	if want := [][]int{{1, 3}, {0, 2}, {4}}; !equalBatches(got, want) {
		t.Fatalf("EvalBatches = %v, want %v", got, want)
	}
}
