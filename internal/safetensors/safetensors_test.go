package safetensors

import (
	"bytes"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sentibench/sentibench/internal/testutil"
)

// TestReadPythonFixture reads a file written by Hugging Face's safetensors package
// (scripts/gen_safetensors_fixture.py).
func TestReadPythonFixture(t *testing.T) {
	f, err := Open("testdata/py.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Metadata["format"] != "pt" {
		t.Errorf("metadata = %v", f.Metadata)
	}
	a, err := f.Float32("a.f32", 2, 3)
	if err != nil {
		t.Fatal(err)
	}
	if want := []float32{-0.5, -0.25, 0, 0.25, 0.5, 0.75}; !slices.Equal(a, want) {
		t.Errorf("a.f32 = %v, want %v", a, want)
	}
	b, err := f.Float32("b.f16")
	if err != nil {
		t.Fatal(err)
	}
	if want := []float32{1, -2.5, 65504, F16ToF32(F32ToF16(6e-8)), 0}; !slices.Equal(b, want) {
		t.Errorf("b.f16 = %v, want %v", b, want)
	}
	c, err := f.Float32("c.bf16")
	if err != nil {
		t.Fatal(err)
	}
	if c[0] != 1 || c[1] != -3.140625 || math.Abs(float64(c[2])/1e30-1) > 0.01 {
		t.Errorf("c.bf16 = %v", c)
	}
	d, err := f.Int64("d.i64")
	if err != nil {
		t.Fatal(err)
	}
	if want := []int64{1, -2, 3, 1 << 40}; !slices.Equal(d, want) {
		t.Errorf("d.i64 = %v", d)
	}
	s, err := f.Float32("scalar")
	if err != nil || len(s) != 1 || s[0] != 7 {
		t.Errorf("scalar = %v, %v", s, err)
	}
	if _, err := f.Float32("a.f32", 3, 2); err == nil || !strings.Contains(err.Error(), "a.f32") {
		t.Errorf("wrong shape: error %v does not name the tensor", err)
	}
	if _, err := f.Float32("missing"); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("missing tensor: error %v", err)
	}
}

func TestRoundTrip(t *testing.T) {
	p := filepath.Join(t.TempDir(), "w.safetensors")
	ts := []Tensor{
		FromFloat32("z.weight", []int{2, 2}, []float32{1, 2, 3, float32(math.Inf(-1))}),
		FromInt64("a.step", []int{1}, []int64{42}),
	}
	if err := WriteFile(p, ts, map[string]string{"epoch": "3"}); err != nil {
		t.Fatal(err)
	}
	f, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w, err := f.Float32("z.weight", 2, 2)
	if err != nil || w[1] != 2 || !math.IsInf(float64(w[3]), -1) {
		t.Fatalf("z.weight = %v, %v", w, err)
	}
	st, err := f.Int64("a.step")
	if err != nil || st[0] != 42 || f.Metadata["epoch"] != "3" {
		t.Fatalf("a.step = %v, %v, metadata %v", st, err, f.Metadata)
	}
	if names := []string{f.List()[0].Name, f.List()[1].Name}; names[0] != "a.step" {
		t.Errorf("List order = %v", names)
	}
}

// TestBadFiles: each broken file gives an error that names the file, and never a panic.
func TestBadFiles(t *testing.T) {
	good, err := os.ReadFile("testdata/py.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string][]byte{
		"empty":        {},
		"short":        good[:5],
		"huge-header":  append([]byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0}, good[8:]...),
		"truncated":    good[:len(good)-10],
		"not-json":     append(append([]byte{}, good[:8]...), bytes.Repeat([]byte{'x'}, len(good)-8)...),
		"text-file":    []byte("this is not a safetensors file at all, just some text....."),
		"unknown-type": bytes.Replace(good, []byte(`"F32"`), []byte(`"F99"`), 1),
		// (2^62+1)*4 elements of 4 bytes wrap around to 16 bytes in int64 arithmetic.
		"overflowing-shape": withHeader(`{"x":{"dtype":"F32","shape":[4611686018427387905,4],"data_offsets":[0,16]}}`, 16),
	}
	dir := t.TempDir()
	for name, content := range cases {
		p := filepath.Join(dir, name+".safetensors")
		os.WriteFile(p, content, 0o644)
		f, err := Open(p)
		if err == nil {
			f.Close()
			t.Errorf("%s: no error", name)
			continue
		}
		if !strings.Contains(err.Error(), p) {
			t.Errorf("%s: error %q does not name the file", name, err)
		}
	}
	if _, err := Open(filepath.Join(dir, "nope")); err == nil {
		t.Error("missing file: no error")
	}
}

// withHeader is a file of the given JSON header and n zero data bytes.
func withHeader(hdr string, n int) []byte {
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(hdr)))
	return append(append(b, hdr...), make([]byte, n)...)
}

// TestF16 checks every half-precision value survives f16 -> f32 -> f16.
func TestF16(t *testing.T) {
	for h := 0; h < 1<<16; h++ {
		f := F16ToF32(uint16(h))
		back := F32ToF16(f)
		if math.IsNaN(float64(f)) {
			if back&0x7c00 != 0x7c00 || back&0x3ff == 0 {
				t.Fatalf("NaN %#x came back as %#x", h, back)
			}
			continue
		}
		if back != uint16(h) {
			t.Fatalf("%#x -> %v -> %#x", h, f, back)
		}
	}
	if F32ToF16(1e6) != 0x7c00 || F32ToF16(-1e-9) != 0x8000 {
		t.Error("overflow or underflow handled wrongly")
	}
	// rounding: 1 + 2^-11 is halfway between 1 and the next half; ties go to even (1).
	if got := F32ToF16(1 + 1.0/2048); got != 0x3c00 {
		t.Errorf("tie rounding: %#x", got)
	}
	if got := F32ToF16(1 + 3.0/2048); got != 0x3c02 {
		t.Errorf("tie rounding up to even: %#x", got)
	}
}

// TestSharedBERTFixture reads the random BERT of ../shared (39 F32 tensors) when it is present.
func TestSharedBERTFixture(t *testing.T) {
	p := testutil.Shared(t, "models/bert-uncased-random-L2-H32/model.safetensors")
	f, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if len(f.Tensors) != 39 {
		t.Errorf("%d tensors, want 39", len(f.Tensors))
	}
	total := 0
	for _, info := range f.List() {
		total += info.Elems()
	}
	if total != 1011360 {
		t.Errorf("%d parameters, want 1,011,360", total)
	}
	if _, err := f.Float32("embeddings.word_embeddings.weight", 30522, 32); err != nil {
		t.Error(err)
	}
}
