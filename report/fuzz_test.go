package report

import (
	"bytes"
	"encoding/json"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzReport reports on an arbitrary run log, with charts: an error naming the file and line, or
// a report and its charts, whatever numbers the log holds (NaN, infinities, negatives, huge).
// Never a panic or a hang. `go test` runs the seeds; `go test -fuzz FuzzReport ./profile`
// searches.
func FuzzReport(f *testing.F) {
	b, err := os.ReadFile("testdata/torch_cnn.jsonl")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte(`{"epoch":1,"train_loss":1e308,"train_acc":0.5,"valid_loss":-1e308,"valid_acc":2,"epoch_seconds":1e300,"peak_rss_mib":-5,"tokens_per_second":0}` + "\n" +
		`{"epoch":2,"train_loss":0,"train_acc":0,"valid_loss":0,"valid_acc":0,"epoch_seconds":0,"peak_rss_mib":1e-300}`))
	f.Add([]byte(`{"epoch":1,"epoch_seconds":5,"train_loss":0.5,"valid_loss":0.4}` + "\n" + `{"final":true,"test_acc":0.9}`))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, log []byte) {
		p := filepath.Join(dir, "run.jsonl")
		if err := os.WriteFile(p, log, 0o644); err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		_, err := Write(&out, []string{p}, Options{Format: FormatMarkdown, ChartsDir: filepath.Join(dir, "charts")})
		if err != nil && !strings.Contains(err.Error(), p) {
			t.Fatalf("error does not name the log: %v", err)
		}
		_, _ = io.Copy(io.Discard, &out)
	})
}

// FuzzReportNumbers writes a two-epoch run log from arbitrary numbers (any finite float64, as a
// diverged or damaged run may log) and reports on it with charts.
func FuzzReportNumbers(f *testing.F) {
	f.Add(0.69, 0.5, 12.5, 1024.0, 0.35, 0.85, 11.0, 1100.0)
	f.Add(-1e308, 2.0, 1e300, -5.0, 1e308, -1.0, 0.0, 1e-300)
	f.Add(1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0)
	f.Add(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, loss1, acc1, sec1, rss1, loss2, acc2, sec2, rss2 float64) {
		var log bytes.Buffer
		for i, e := range [][4]float64{{loss1, acc1, sec1, rss1}, {loss2, acc2, sec2, rss2}} {
			for _, v := range e {
				if math.IsNaN(v) || math.IsInf(v, 0) {
					return // JSON cannot hold them
				}
			}
			rec := map[string]any{"epoch": i + 1, "train_loss": e[0], "valid_loss": e[0] / 2, "train_acc": e[1], "valid_acc": e[1],
				"epoch_seconds": e[2], "train_seconds": e[2], "peak_rss_mib": e[3], "tokens_per_second": e[3] * e[2]}
			if err := json.NewEncoder(&log).Encode(rec); err != nil {
				return // the product overflowed to Inf
			}
		}
		p := filepath.Join(dir, "run.jsonl")
		if err := os.WriteFile(p, log.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		if _, err := Write(&out, []string{p}, Options{Format: FormatMarkdown, ChartsDir: filepath.Join(dir, "charts")}); err != nil && !strings.Contains(err.Error(), p) {
			t.Fatalf("error does not name the log: %v", err)
		}
	})
}
