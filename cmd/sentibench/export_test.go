package main

import (
	"archive/tar"
	"compress/gzip"
	"encoding/binary"
	"encoding/csv"
	"encoding/json"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/sentibench/sentibench/internal/blas"
	"github.com/sentibench/sentibench/internal/testutil"
	"github.com/sentibench/sentibench/nn"
	"github.com/sentibench/sentibench/nn/bert"
	"github.com/sentibench/sentibench/train"
)

// ONNXPythonPathEnv names a directory holding the onnx and onnxruntime packages (a pip --target
// directory), with which python3 runs scripts/onnx_parity.py. .ci/run sets it; without it the
// ONNX Runtime parity test is skipped.
const ONNXPythonPathEnv = "SENTIBENCH_ONNX_PYTHONPATH"

// imdbTestReviews returns the first n/2 positive and n/2 negative reviews of the real IMDB test
// set (../shared), interleaved, each on one line.
func imdbTestReviews(t *testing.T, n int) []string {
	t.Helper()
	f, err := os.Open(testutil.Shared(t, "data/imdb/aclImdb_v1_labelled.tar.gz"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var pos, neg []string
	tr := tar.NewReader(gz)
	for len(pos) < n/2 || len(neg) < n/2 {
		h, err := tr.Next()
		if err != nil {
			t.Fatalf("reading the IMDB archive: %v", err)
		}
		dst := &pos
		switch {
		case h.Typeflag != tar.TypeReg || !strings.HasSuffix(h.Name, ".txt"):
			continue
		case strings.Contains(h.Name, "/test/pos/") && len(pos) < n/2:
		case strings.Contains(h.Name, "/test/neg/") && len(neg) < n/2:
			dst = &neg
		default:
			continue
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		*dst = append(*dst, strings.Join(strings.Fields(string(b)), " "))
	}
	var out []string
	for i := range pos {
		out = append(out, pos[i], neg[i])
	}
	return out
}

// TestExportONNXParity trains a small cnn, lstm and bigru (concat pooling, over the tiny random
// BERT of ../shared), and a cnn and an lstm of 3 classes, exports each to ONNX, and has
// scripts/onnx_parity.py check each file with the ONNX checker (full_check) and run it with ONNX
// Runtime on 200 real IMDB test reviews: every probability (a 3-class model's, of each class by
// its name in the sidecar) within 1e-5 of `sentibench predict --json`, padded or not.
func TestExportONNXParity(t *testing.T) {
	pyPath := os.Getenv(ONNXPythonPathEnv)
	if pyPath == "" {
		t.Skipf("set %s to a directory with the onnx and onnxruntime packages (pip install --target DIR onnx onnxruntime)", ONNXPythonPathEnv)
	}
	root, err := testutil.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	encoder := testutil.Shared(t, "models/bert-uncased-random-L2-H32")
	reviews := imdbTestReviews(t, 200)
	dir := t.TempDir()
	t.Setenv("SENTIBENCH_CACHE", filepath.Join(dir, "cache"))
	textsFile := filepath.Join(dir, "reviews.txt")
	if err := os.WriteFile(textsFile, []byte(strings.Join(reviews, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	three := threeClassReviews(t, filepath.Join(dir, "three.csv"))
	sample := []string{"--data", "sample", "--limit", "300"}
	common := []string{"--epochs", "1", "--lr", "0.01", "--threads", "2", "-q"}
	for _, c := range []struct {
		name string
		args []string
		data []string
	}{
		{"cnn", []string{"--model", "cnn", "--embedding-dim", "16", "--filters", "8", "--vocab-size", "3000", "--max-len", "150"}, sample},
		{"lstm", []string{"--model", "lstm", "--embedding-dim", "16", "--hidden", "12", "--vocab-size", "3000"}, sample},
		{"bigru", []string{"--model", "bigru", "--encoder", encoder, "--hidden", "12", "--pool", "concat", "--limit", "100"}, sample},
		{"cnn-3-classes", []string{"--model", "cnn", "--embedding-dim", "16", "--filters", "8", "--vocab-size", "3000"}, []string{"--data", three}},
		{"lstm-3-classes", []string{"--model", "lstm", "--embedding-dim", "16", "--hidden", "12", "--vocab-size", "3000"}, []string{"--data", three}},
	} {
		t.Run(c.name, func(t *testing.T) {
			start := time.Now()
			defer func() { t.Logf("%s: %.1f s", c.name, time.Since(start).Seconds()) }()
			runDir := filepath.Join(dir, c.name)
			if _, errOut, err := run(t, slices.Concat([]string{"train", "--run", runDir}, c.args, c.data, common)...); err != nil {
				t.Fatalf("train: %v\n%s", err, errOut)
			}
			model := filepath.Join(dir, c.name+".onnx")
			if _, errOut, err := run(t, "export", "--run", runDir, "--format", "onnx", "--out", model); err != nil {
				t.Fatalf("export: %v\n%s", err, errOut)
			}
			t.Logf("trained and exported: %.1f s", time.Since(start).Seconds())
			preds, errOut, err := run(t, append([]string{"predict", "--run", runDir, "--json"}, reviews...)...)
			if err != nil {
				t.Fatalf("predict: %v\n%s", err, errOut)
			}
			predFile := filepath.Join(dir, c.name+".predict.jsonl")
			if err := os.WriteFile(predFile, []byte(preds), 0o644); err != nil {
				t.Fatal(err)
			}
			args := []string{filepath.Join(root, "scripts", "onnx_parity.py"), "--model", model, "--texts", textsFile,
				"--predictions", predFile, "--tol", "1e-5"}
			if c.name == "bigru" {
				feats, lengths := encoderFeatures(t, runDir, reviews, filepath.Join(dir, "bigru"))
				args = append(args, "--features", feats, "--lengths", lengths)
			}
			t.Logf("predicted: %.1f s", time.Since(start).Seconds())
			cmd := exec.Command("python3", args...)
			cmd.Env = append(os.Environ(), "PYTHONPATH="+pyPath)
			out, err := cmd.CombinedOutput()
			t.Logf("%s", out)
			if err != nil {
				t.Fatalf("onnx_parity.py: %v", err)
			}
		})
	}
}

// threeClassReviews writes a CSV of 600 real IMDB test reviews labelled low, mid and high in
// turn (what the labels mean does not matter: a 3-class model trained on real words) and returns
// its path.
func threeClassReviews(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := csv.NewWriter(f)
	w.Write([]string{"text", "label"})
	for i, r := range imdbTestReviews(t, 600) {
		w.Write([]string{r, []string{"low", "mid", "high"}[i%3]})
	}
	w.Flush()
	if err := w.Error(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// encoderFeatures computes the bigru run's encoder features of texts as `sentibench predict`
// does (chunks of 64, each sorted longest first and encoded as one batch, the run's truncation
// and layers), and writes them, in the order of texts, as float32 little-endian, with the lengths
// as a JSON list; it returns the two files' paths.
func encoderFeatures(t *testing.T, runDir string, texts []string, prefix string) (featsFile, lengthsFile string) {
	t.Helper()
	info, err := train.ReadRunInfo(runDir)
	if err != nil {
		t.Fatal(err)
	}
	enc, err := bert.Load(info.Config.Encoder, nn.NewCPU(blas.Gonum{}, 2))
	if err != nil {
		t.Fatal(err)
	}
	enc.TruncateHead, enc.Layers = info.Config.TruncateHead, info.Config.EncoderLayers
	feats := make([][]float32, len(texts))
	lengths := make([]int, len(texts))
	for start := 0; start < len(texts); start += 64 {
		chunk := texts[start:min(len(texts), start+64)]
		seqs := make([][]int32, len(chunk))
		for i, text := range chunk {
			seqs[i] = enc.Encode(text)
		}
		order := make([]int, len(chunk))
		for i := range order {
			order[i] = i
		}
		sort.SliceStable(order, func(a, b int) bool { return len(seqs[order[a]]) > len(seqs[order[b]]) })
		sorted := make([][]int32, len(order))
		for r, i := range order {
			sorted[r] = seqs[i]
		}
		out := make([][]float32, len(sorted))
		if err := enc.ForwardInto(sorted, out); err != nil {
			t.Fatal(err)
		}
		for r, i := range order {
			feats[start+i] = out[r][:len(sorted[r])*enc.Hidden()]
			lengths[start+i] = len(sorted[r])
		}
	}
	var buf []byte
	for _, f := range feats {
		for _, v := range f {
			buf = binary.LittleEndian.AppendUint32(buf, math.Float32bits(v))
		}
	}
	featsFile, lengthsFile = prefix+".features.f32", prefix+".lengths.json"
	lb, _ := json.Marshal(lengths)
	if err := os.WriteFile(featsFile, buf, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(lengthsFile, lb, 0o644); err != nil {
		t.Fatal(err)
	}
	return featsFile, lengthsFile
}

// TestExportBadInput: an unknown format, a missing flag, a run that is not there or is damaged,
// an output path that cannot be written: each a clear error naming the thing (a usage error,
// exit 2, for the command line), and nothing written, an existing file left as it was.
func TestExportBadInput(t *testing.T) {
	dir := t.TempDir()
	runDir := filepath.Join(dir, "cnn")
	if _, errOut, err := run(t, "train", "--model", "cnn", "--data", "sample", "--limit", "40", "--epochs", "1",
		"--batch-size", "16", "--embedding-dim", "8", "--filters", "4", "--vocab-size", "500", "--threads", "2",
		"--run", runDir, "-q"); err != nil {
		t.Fatalf("train: %v\n%s", err, errOut)
	}
	// A copy of the run whose weights are cut in half.
	damaged := filepath.Join(dir, "damaged")
	if err := os.CopyFS(damaged, os.DirFS(runDir)); err != nil {
		t.Fatal(err)
	}
	weights := filepath.Join(damaged, train.BestDir, train.WeightsFile)
	st, err := os.Stat(weights)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(weights, st.Size()/2); err != nil {
		t.Fatal(err)
	}
	outDir := filepath.Join(dir, "out")
	if err := os.Mkdir(outDir, 0o755); err != nil {
		t.Fatal(err)
	}
	existing := filepath.Join(outDir, "existing.onnx")
	if err := os.WriteFile(existing, []byte("the old model"), 0o644); err != nil {
		t.Fatal(err)
	}
	fresh := filepath.Join(outDir, "model.onnx")
	for _, c := range []struct {
		name  string
		args  []string
		usage bool
		want  string // in the error
	}{
		{"unknown format", []string{"--run", runDir, "--format", "tflite", "--out", fresh}, true, "--format tflite: want onnx"},
		{"no --out", []string{"--run", runDir}, true, "--out"},
		{"no --run", []string{"--out", fresh}, true, "--run"},
		{"unknown checkpoint", []string{"--run", runDir, "--checkpoint", "first", "--out", fresh}, true, "--checkpoint first: want best or last"},
		{"no such run", []string{"--run", filepath.Join(dir, "nope"), "--out", fresh}, false, filepath.Join(dir, "nope")},
		{"damaged weights", []string{"--run", damaged, "--out", existing}, false, weights},
		{"directory missing", []string{"--run", runDir, "--out", filepath.Join(outDir, "no", "model.onnx")}, false, filepath.Join(outDir, "no", "model.onnx")},
		{"out is a directory", []string{"--run", runDir, "--out", outDir}, false, outDir + " is a directory"},
	} {
		_, _, err := run(t, append([]string{"export"}, c.args...)...)
		switch {
		case err == nil:
			t.Errorf("%s: export succeeded", c.name)
		case isUsage(err) != c.usage:
			t.Errorf("%s: usage error %v, want %v: %v", c.name, isUsage(err), c.usage, err)
		case !strings.Contains(err.Error(), c.want):
			t.Errorf("%s: error %q does not name %q", c.name, err, c.want)
		}
	}
	entries, err := os.ReadDir(outDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != "existing.onnx" {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("the output folder holds %v after failed exports, want only existing.onnx", names)
	}
	if _, err := os.Stat(outDir + ".json"); err == nil {
		t.Errorf("the export to the directory %s left a sidecar %s.json", outDir, outDir)
	}
	if b, _ := os.ReadFile(existing); string(b) != "the old model" {
		t.Errorf("a failed export changed the existing file: %q", b)
	}
	// And the run itself exports.
	if _, errOut, err := run(t, "export", "--run", runDir, "--out", fresh); err != nil {
		t.Fatalf("export: %v\n%s", err, errOut)
	}
	for _, p := range []string{fresh, fresh + ".json"} {
		if st, err := os.Stat(p); err != nil || st.Size() == 0 {
			t.Errorf("%s: %v", p, err)
		}
	}
}
