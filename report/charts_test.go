package report

import (
	"bytes"
	"flag"
	"fmt"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sentibench/sentibench/internal/atomicfile"
)

var chartsDir = flag.String("charts", "", "TestWriteCharts: keep the charts in this directory (to look at them)")

func TestWriteCharts(t *testing.T) {
	runs := benchRuns(t)
	torch, err := LoadRun(filepath.Join("testdata", "torch_cnn.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	runs = append(runs, torch)
	dir := *chartsDir
	if dir == "" {
		dir = t.TempDir()
	}
	paths, err := WriteCharts(dir, runs)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{EpochTimeChart, MemoryChart, AccuracyChart, ValidCurveChart}
	for _, r := range runs {
		want = append(want, CurvesFile(r.Name))
	}
	if len(paths) != len(want) {
		t.Fatalf("%d charts, want %d: %v", len(paths), len(want), paths)
	}
	for i, p := range paths {
		if filepath.Base(p) != want[i] {
			t.Errorf("chart %d is %s, want %s", i, filepath.Base(p), want[i])
		}
		checkPNG(t, p)
	}
	if CurvesFile("h100/cnn d=0.5") != "curves_h100_cnn_d_0.5.png" {
		t.Errorf("CurvesFile = %q", CurvesFile("h100/cnn d=0.5"))
	}
}

// checkPNG decodes a chart and checks that it has a chart's size and is drawn (many colours:
// bars, lines, anti-aliased text), not blank.
func checkPNG(t *testing.T, path string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	b := img.Bounds()
	if b.Dx() < 6*chartDPI || b.Dy() < 4*chartDPI {
		t.Errorf("%s: %dx%d pixels, want at least %dx%d", path, b.Dx(), b.Dy(), 6*chartDPI, 4*chartDPI)
	}
	colours := map[color.RGBA]bool{}
	nonWhite := 0
	for y := b.Min.Y; y < b.Max.Y; y += 2 {
		for x := b.Min.X; x < b.Max.X; x += 2 {
			r, g, bl, a := img.At(x, y).RGBA()
			c := color.RGBA{uint8(r >> 8), uint8(g >> 8), uint8(bl >> 8), uint8(a >> 8)}
			colours[c] = true
			if c != (color.RGBA{255, 255, 255, 255}) {
				nonWhite++
			}
		}
	}
	if len(colours) < 20 || nonWhite < b.Dx()*b.Dy()/4/100 {
		t.Errorf("%s: %d colours, %d non-white samples: blank?", path, len(colours), nonWhite)
	}
}

// Runs with nothing to draw yet (no epochs, no figures) still get charts, not an error.
func TestWriteChartsEmptyRun(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "fresh")
	writeRun(t, dir, runSpec{model: "cnn", planned: 5})
	r, err := LoadRun(dir)
	if err != nil {
		t.Fatal(err)
	}
	paths, err := WriteCharts(filepath.Join(t.TempDir(), "charts"), []*Run{r})
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) != 5 {
		t.Errorf("%d charts: %v", len(paths), paths)
	}
	if _, err := WriteCharts(t.TempDir(), nil); err == nil {
		t.Error("no runs: no error")
	}
}

func TestReport(t *testing.T) {
	runs := benchRuns(t)
	var dirs []string
	for _, r := range runs {
		dirs = append(dirs, r.Dir)
	}
	var b bytes.Buffer
	charts := filepath.Join(t.TempDir(), "charts")
	paths, err := Write(&b, dirs, Options{Format: FormatMarkdown, ChartsDir: charts})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(b.String(), "| run | framework | model |") || len(paths) != 4+len(runs) {
		t.Errorf("report:\n%s\ncharts %v", b.String(), paths)
	}
	b.Reset()
	if paths, err := Write(&b, dirs[:1], Options{}); err != nil || paths != nil || !strings.HasPrefix(b.String(), "run ") {
		t.Errorf("text report without charts: %v, %v\n%s", paths, err, b.String())
	}
	if _, err := Write(&b, nil, Options{}); err == nil {
		t.Error("no runs: no error")
	}
	if _, err := Write(&b, dirs, Options{Format: "html"}); err == nil || !strings.Contains(err.Error(), "html") {
		t.Errorf("format html: %v", err)
	}
	// A charts path that is a file: the error names it.
	file := filepath.Join(t.TempDir(), "file")
	if err := atomicfile.WriteFile(file, []byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := Write(&b, dirs, Options{ChartsDir: file}); err == nil || !strings.Contains(err.Error(), "file") {
		t.Errorf("charts into a file: %v", err)
	}
}

// The matrix of a bench (3 models x 2 dropouts x 2 devices) with long run names: the charts
// stay within their size limits and readable (the names slant).
func TestWriteChartsBenchMatrix(t *testing.T) {
	base := t.TempDir()
	var dirs []string
	for _, m := range []string{"lstm", "cnn", "bigru"} {
		for _, d := range []float64{0.5, 0.2} {
			for _, dev := range []string{"cpu", "cuda"} {
				dir := filepath.Join(base, fmt.Sprintf("bench-%s-dropout%g-%s", m, d, dev))
				spec := runSpec{model: m, dropout: d, device: dev, planned: 5, done: 5, finished: true,
					seconds: 40, rssMiB: 1500, rssMethod: "vmhwm"}
				if dev == "cuda" {
					spec.seconds, spec.gpuMiB = 6, 2000
				}
				writeRun(t, dir, spec)
				dirs = append(dirs, dir)
			}
		}
	}
	runs, err := LoadRuns(dirs)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if *chartsDir != "" {
		dir = filepath.Join(*chartsDir, "matrix")
	}
	paths, err := WriteCharts(dir, runs)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range paths[:3] {
		checkPNG(t, p)
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := png.DecodeConfig(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Width > 12*chartDPI+1 || cfg.Height < 5*chartDPI {
			t.Errorf("%s: %dx%d pixels, want at most %d wide and at least %d high (slanted names)", p, cfg.Width, cfg.Height, 12*chartDPI, 5*chartDPI)
		}
	}
}
