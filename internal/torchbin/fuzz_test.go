package torchbin

import (
	"archive/zip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The fuzz targets feed arbitrary bytes to the reader of files users hand us: a damaged or hostile
// pytorch_model.bin must give an error, never a panic, a hang or an allocation its size does not
// justify. `go test` runs their seeds; `go test -fuzz FuzzUnpickle ./internal/torchbin` searches.

// FuzzUnpickle runs the pickle interpreter on arbitrary code.
func FuzzUnpickle(f *testing.F) {
	zr, err := zip.OpenReader("testdata/torch_views.bin")
	if err != nil {
		f.Fatal(err)
	}
	for _, zf := range zr.File {
		if strings.HasSuffix(zf.Name, "data.pkl") {
			b, err := readAll(zf, 1<<20)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
	zr.Close()
	f.Add([]byte("\x80\x02}q\x00."))
	f.Add([]byte("\x80\x02(K\x01K\x02t."))
	f.Fuzz(func(t *testing.T, code []byte) {
		u := &unpickler{code: code}
		_, _ = u.run()
	})
}

// FuzzOpen opens arbitrary bytes as a checkpoint and reads every tensor it reports.
func FuzzOpen(f *testing.F) {
	b, err := os.ReadFile("testdata/torch_views.bin")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add(b[:len(b)/2])
	f.Add([]byte("PK\x05\x06" + strings.Repeat("\x00", 18)))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(dir, "pytorch_model.bin")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		ck, err := Open(p)
		if err != nil {
			if !strings.Contains(err.Error(), p) && !strings.Contains(err.Error(), "torchbin:") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		defer ck.Close()
		for _, info := range ck.List() {
			if info.Elems() < 0 {
				t.Fatalf("tensor %q: negative size %v", info.Name, info.Shape)
			}
			if _, err := ck.Float32(info.Name); err != nil {
				_, _ = ck.Int64(info.Name)
			}
		}
	})
}
