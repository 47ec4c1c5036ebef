package safetensors

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzOpen opens arbitrary bytes as a safetensors file and reads every tensor it reports: a damaged
// or hostile model.safetensors must give an error naming the file, never a panic or an allocation
// its size does not justify. `go test` runs the seeds; `go test -fuzz FuzzOpen
// ./internal/safetensors` searches.
func FuzzOpen(f *testing.F) {
	b, err := os.ReadFile("testdata/py.safetensors")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add(b[:len(b)-3])
	hdr := `{"x":{"dtype":"F32","shape":[4611686018427387905,4],"data_offsets":[0,16]}}`
	f.Add(append([]byte{byte(len(hdr)), 0, 0, 0, 0, 0, 0, 0}, append([]byte(hdr), make([]byte, 16)...)...))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(dir, "model.safetensors")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		sf, err := Open(p)
		if err != nil {
			if !strings.Contains(err.Error(), "safetensors: ") {
				t.Fatalf("error without context: %v", err)
			}
			return
		}
		defer sf.Close()
		for _, info := range sf.List() {
			elems := 1.0 // in float64, so that an overflow cannot hide
			for _, d := range info.Shape {
				elems *= float64(d)
			}
			if elems*float64(info.DType.Size()) != float64(info.End-info.Begin) {
				t.Fatalf("tensor %q: shape %v of %s does not fill its %d bytes", info.Name, info.Shape, info.DType, info.End-info.Begin)
			}
			if _, err := sf.Float32(info.Name); err != nil {
				_, _ = sf.Int64(info.Name)
			}
		}
	})
}
