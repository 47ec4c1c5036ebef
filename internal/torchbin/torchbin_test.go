package torchbin

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// torch_views.bin was written by torch.save (scripts/gen_bert_fixtures.py): tensors sharing one
// storage at offsets and with non-contiguous strides, F16/BF16/F64/I64 storages, a scalar, an
// empty tensor and an nn.Parameter; torch_views.json holds their values.
func TestReadTorchSave(t *testing.T) {
	f, err := Open("testdata/torch_views.bin")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b, err := os.ReadFile("testdata/torch_views.json")
	if err != nil {
		t.Fatal(err)
	}
	var want map[string]struct {
		Shape  []int     `json:"shape"`
		Values []float64 `json:"values"`
	}
	if err := json.Unmarshal(b, &want); err != nil {
		t.Fatal(err)
	}
	if len(f.Tensors) != len(want) {
		t.Errorf("%d tensors, want %d", len(f.Tensors), len(want))
	}
	for name, w := range want {
		info, ok := f.Tensors[name]
		if !ok {
			t.Errorf("tensor %q missing", name)
			continue
		}
		if !slices.Equal(info.Shape, w.Shape) {
			t.Errorf("%s: shape %v, want %v", name, info.Shape, w.Shape)
		}
		if name == "long" {
			got, err := f.Int64(name)
			if err != nil {
				t.Fatal(err)
			}
			for i, v := range w.Values {
				if float64(got[i]) != v {
					t.Errorf("%s[%d] = %d, want %v", name, i, got[i], v)
				}
			}
			continue
		}
		got, err := f.Float32(name, w.Shape...)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(w.Values) {
			t.Fatalf("%s: %d values, want %d", name, len(got), len(w.Values))
		}
		for i, v := range w.Values {
			if float64(got[i]) != float64(float32(v)) {
				t.Errorf("%s[%d] = %v, want %v", name, i, got[i], v)
			}
		}
	}
	if f.Tensors["transposed"].Storage != f.Tensors["base"].Storage || f.Tensors["row_slice"].Offset != 6 {
		t.Errorf("views do not share the base storage: %+v %+v", f.Tensors["transposed"], f.Tensors["row_slice"])
	}
	if _, err := f.Float32("nope"); err == nil || !strings.Contains(err.Error(), `"nope"`) {
		t.Errorf("missing tensor: %v", err)
	}
	if _, err := f.Float32("base", 6, 4); err == nil || !strings.Contains(err.Error(), "shape [4 6], want [6 4]") {
		t.Errorf("wrong shape: %v", err)
	}
	if _, err := f.Float32("long"); err == nil || !strings.Contains(err.Error(), "I64") {
		t.Errorf("float of an integer tensor: %v", err)
	}
}

// rewrite copies the zip at src to a new file, passing each record through edit (nil drops it).
func rewrite(t *testing.T, src string, edit func(name string, data []byte) []byte) string {
	t.Helper()
	zr, err := zip.OpenReader(src)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, zf := range zr.File {
		r, err := zf.Open()
		if err != nil {
			t.Fatal(err)
		}
		var data bytes.Buffer
		data.ReadFrom(r)
		r.Close()
		out := edit(zf.Name, data.Bytes())
		if out == nil {
			continue
		}
		w, err := zw.CreateHeader(&zip.FileHeader{Name: zf.Name, Method: zip.Store})
		if err != nil {
			t.Fatal(err)
		}
		w.Write(out)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "edited.bin")
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRefusesCodeAndBadFiles(t *testing.T) {
	src := "testdata/torch_views.bin"
	cases := []struct {
		name string
		edit func(name string, data []byte) []byte
		want string
	}{
		{"global os.system", func(name string, data []byte) []byte {
			if strings.HasSuffix(name, "data.pkl") {
				// \x80\x02 c os\nsystem\n (X "echo hi" t R .
				return []byte("\x80\x02cos\nsystem\n(X\x07\x00\x00\x00echo hit R.")
			}
			return data
		}, "refusing to load the global os.system"},
		{"builtins eval via STACK_GLOBAL", func(name string, data []byte) []byte {
			if strings.HasSuffix(name, "data.pkl") {
				return []byte("\x80\x04\x8c\x08builtins\x8c\x04eval\x93.")
			}
			return data
		}, "refusing to load the global builtins.eval"},
		{"not a dict", func(name string, data []byte) []byte {
			if strings.HasSuffix(name, "data.pkl") {
				return []byte("\x80\x02]q\x00.")
			}
			return data
		}, "is a list, not a state dict"},
		{"truncated pickle", func(name string, data []byte) []byte {
			if strings.HasSuffix(name, "data.pkl") {
				return data[:len(data)/2]
			}
			return data
		}, "data.pkl:"},
		{"missing storage", func(name string, data []byte) []byte {
			if strings.HasSuffix(name, "/data/0") {
				return nil
			}
			return data
		}, `storage "0" has no record`},
		{"short storage", func(name string, data []byte) []byte {
			if strings.HasSuffix(name, "/data/0") {
				return data[:8]
			}
			return data
		}, `storage "0" holds 8 bytes`},
		{"big endian", func(name string, data []byte) []byte {
			if strings.HasSuffix(name, "/byteorder") {
				return []byte("big")
			}
			return data
		}, `byte order "big"`},
	}
	for _, c := range cases {
		p := rewrite(t, src, c.edit)
		_, err := Open(p)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), p) {
			t.Errorf("%s: error %v, want one naming the file and %q", c.name, err, c.want)
		}
	}
	// A view of 3e9 elements over a one-element storage (torch.zeros(1).expand(3e9)): refused
	// when opened, before anything is allocated (reading it took 12 GB and 49 s before).
	big := "testdata/torch_broadcast.bin"
	if _, err := Open(big); err == nil || !strings.Contains(err.Error(), "a view of 3000000000 elements over a storage of 1") || !strings.Contains(err.Error(), big) {
		t.Errorf("broadcast view: %v", err)
	}
	legacy := filepath.Join(t.TempDir(), "legacy.bin")
	os.WriteFile(legacy, []byte("\x80\x02\x8a\x0alz\xfc\x9cF\xf9 j\xa8P\x19."), 0o644)
	if _, err := Open(legacy); err == nil || !strings.Contains(err.Error(), "not a zip archive") {
		t.Errorf("legacy format: %v", err)
	}
}
