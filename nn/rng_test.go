package nn

import "testing"

func TestRNGStateRoundTrip(t *testing.T) {
	a := NewRNG(1234)
	for i := 0; i < 10; i++ {
		a.Float32()
	}
	state, err := a.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	want := []float32{a.Float32(), a.Float32(), a.Float32()}
	b := NewRNG(99)
	if err := b.UnmarshalBinary(state); err != nil {
		t.Fatal(err)
	}
	for i, w := range want {
		if got := b.Float32(); got != w {
			t.Fatalf("draw %d after restore = %v, want %v", i, got, w)
		}
	}
	if err := b.UnmarshalBinary([]byte("junk")); err == nil {
		t.Fatal("restoring junk state did not fail")
	}
}
