package tensorboard

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"hash/crc32"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// scalarAt is one scalar as written, for comparing with what is read back.
type scalarAt struct {
	tag   string
	step  int64
	value float64
	wall  time.Time
}

// writeScalars writes the scalars and fails the test on an error.
func writeScalars(t *testing.T, w *Writer, scalars []scalarAt) {
	t.Helper()
	for _, s := range scalars {
		if err := w.Scalar(s.tag, s.step, s.value, s.wall); err != nil {
			t.Fatal(err)
		}
	}
}

// someScalars is a run's per-step and per-epoch scalars from step first to last.
func someScalars(first, last int64) []scalarAt {
	var out []scalarAt
	base := time.Unix(1_700_000_000, 123_456_000)
	for step := first; step <= last; step++ {
		at := base.Add(time.Duration(step) * 1500 * time.Millisecond)
		out = append(out,
			scalarAt{"train/loss", step, 0.7 * math.Exp(-float64(step)/7), at},
			scalarAt{"train/lr", step, 1e-3 * float64(step) / 13, at},
			scalarAt{"train/grad_norm", step, -3.25e-9 * float64(step), at})
		if step%4 == 0 {
			out = append(out, scalarAt{"valid/accuracy", step, 0.5 + float64(step)/100, at})
		}
	}
	return out
}

var someHParams = map[string]any{"lr": 1e-3, "model": "lstm", "epochs": 3, "bidirectional": true, "dropout": float32(0.25)}

// readDir reads every event of every event file in dir, in order, with this package's reader.
func readDir(t *testing.T, dir string) []Event {
	t.Helper()
	files, err := EventFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	var all []Event
	for _, f := range files {
		evs, err := ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) == 0 || evs[0].FileVersion != FileVersion {
			t.Fatalf("%s: first event %+v, want the file version %q", f, evs, FileVersion)
		}
		all = append(all, evs...)
	}
	return all
}

// checkScalars compares the scalars of events with want, in order.
func checkScalars(t *testing.T, events []Event, want []scalarAt) {
	t.Helper()
	var got []scalarAt
	walls := map[int]float64{}
	for _, ev := range events {
		for _, s := range ev.Scalars {
			walls[len(got)] = ev.WallTime
			got = append(got, scalarAt{tag: s.Tag, step: ev.Step, value: float64(s.Value)})
		}
	}
	if len(got) != len(want) {
		t.Fatalf("read %d scalars, wrote %d", len(got), len(want))
	}
	for i, w := range want {
		g := got[i]
		if g.tag != w.tag || g.step != w.step || g.value != float64(float32(w.value)) {
			t.Errorf("scalar %d: read %s@%d=%v, wrote %s@%d=%v", i, g.tag, g.step, g.value, w.tag, w.step, float32(w.value))
		}
		if math.Abs(walls[i]-wallTime(w.wall)) > 1e-6 {
			t.Errorf("scalar %d: wall time %v, wrote %v", i, walls[i], wallTime(w.wall))
		}
	}
}

func TestWriteReadBack(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tb")
	w, err := Create(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(filepath.Base(w.Path()), "events.out.tfevents.") {
		t.Errorf("file name %s", w.Path())
	}
	if err := w.HParams(someHParams, "", time.Unix(1_700_000_000, 0)); err != nil {
		t.Fatal(err)
	}
	scalars := someScalars(1, 20)
	writeScalars(t, w, scalars)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	events := readDir(t, dir)
	checkScalars(t, events, scalars)
	var hp []Event
	for _, ev := range events {
		if ev.HParams != nil {
			hp = append(hp, ev)
		}
	}
	if len(hp) != 1 {
		t.Fatalf("%d hyperparameter events, want 1", len(hp))
	}
	want := map[string]any{"lr": 1e-3, "model": "lstm", "epochs": 3.0, "bidirectional": true, "dropout": float64(float32(0.25))}
	if len(hp[0].HParams) != len(want) {
		t.Errorf("hyperparameters %v, want %v", hp[0].HParams, want)
	}
	for k, v := range want {
		if hp[0].HParams[k] != v {
			t.Errorf("hyperparameter %s = %v (%T), want %v", k, hp[0].HParams[k], hp[0].HParams[k], v)
		}
	}
	if len(hp[0].GroupName) != 64 {
		t.Errorf("group name %q, want a SHA-256 in hex", hp[0].GroupName)
	}
}

func TestHParamsRejectsOtherTypes(t *testing.T) {
	w, err := Create(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for _, v := range []any{[]int{1}, nil, math.NaN(), struct{}{}} {
		if err := w.HParams(map[string]any{"x": v}, "g", time.Time{}); err == nil || !strings.Contains(err.Error(), `"x"`) {
			t.Errorf("HParams(%v): error %v, want one naming the hyperparameter", v, err)
		}
		w.err = nil // the writer keeps its first error; start afresh for the next value
	}
}

// TestMaskedCRC checks the checksum against CRC-32C's published check value (of "123456789")
// and TFRecord's masking.
func TestMaskedCRC(t *testing.T) {
	if c := crc32.Checksum([]byte("123456789"), castagnoli); c != 0xe3069283 {
		t.Fatalf("CRC-32C %08x, want e3069283", c)
	}
	c := uint32(0xe3069283)
	if got, want := maskedCRC([]byte("123456789")), (c>>15|c<<17)+0xa282ead8; got != want {
		t.Errorf("masked CRC %08x, want %08x", got, want)
	}
	rec := frame([]byte("abc"))
	if n := binary.LittleEndian.Uint64(rec); n != 3 || len(rec) != 8+4+3+4 {
		t.Errorf("record %x: length %d, %d bytes", rec, n, len(rec))
	}
}

// TestFlippedByteDetected changes each byte of an event file in turn: the reader must report an
// error for every one (a CRC mismatch, or a length that runs past the end).
func TestFlippedByteDetected(t *testing.T) {
	dir := t.TempDir()
	w, err := Create(dir)
	if err != nil {
		t.Fatal(err)
	}
	writeScalars(t, w, someScalars(1, 2))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	good, err := os.ReadFile(w.Path())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ReadFile(w.Path()); err != nil {
		t.Fatalf("the file as written: %v", err)
	}
	bad := filepath.Join(dir, "flipped.tfevents")
	for i := range good {
		b := append([]byte(nil), good...)
		b[i] ^= 0x10
		if err := os.WriteFile(bad, b, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := ReadFile(bad); err == nil {
			t.Fatalf("byte %d of %d flipped: no error", i, len(good))
		}
	}
}

func TestTruncatedFile(t *testing.T) {
	dir := t.TempDir()
	w, err := Create(dir)
	if err != nil {
		t.Fatal(err)
	}
	writeScalars(t, w, someScalars(1, 3))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(w.Path())
	if err := os.WriteFile(w.Path(), b[:len(b)-5], 0o644); err != nil {
		t.Fatal(err)
	}
	evs, err := ReadFile(w.Path())
	if !errors.Is(err, ErrTruncated) {
		t.Fatalf("error %v, want ErrTruncated", err)
	}
	if n := len(someScalars(1, 3)); len(evs) != n { // the version event and all but the last scalar
		t.Errorf("%d events before the cut, want %d", len(evs), n)
	}
}

// TestResume writes steps 1-9 as an interrupted run would (its checkpoint covering step 6, and a
// record cut short at the end), resumes after step 6 and writes steps 7-12: every step must be
// read back once, in order.
func TestResume(t *testing.T) {
	dir := t.TempDir()
	first, err := Create(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := first.HParams(someHParams, "trial", time.Time{}); err != nil {
		t.Fatal(err)
	}
	writeScalars(t, first, someScalars(1, 9))
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(first.Path(), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(frame(eventScalar(1, 10, "train/loss", 1))[:9]); err != nil {
		t.Fatal(err)
	}
	f.Close()

	second, err := Resume(dir, 6)
	if err != nil {
		t.Fatal(err)
	}
	if second.Path() == first.Path() {
		t.Fatalf("resumed into the same file %s", first.Path())
	}
	writeScalars(t, second, someScalars(7, 12))
	if err := second.Close(); err != nil {
		t.Fatal(err)
	}
	files, _ := EventFiles(dir)
	if len(files) != 2 {
		t.Fatalf("event files %v, want 2", files)
	}
	events := readDir(t, dir)
	checkScalars(t, events, someScalars(1, 12))
	hp := 0
	for _, ev := range events {
		if ev.HParams != nil {
			hp++
		}
	}
	if hp != 1 {
		t.Errorf("%d hyperparameter events after resuming, want 1", hp)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Errorf("%d entries in the directory, want the 2 event files (no temporary left)", len(entries))
	}

	// Resuming again after the last step written changes nothing in the existing files.
	before, _ := os.ReadFile(files[1])
	third, err := Resume(dir, 12)
	if err != nil {
		t.Fatal(err)
	}
	third.Close()
	after, _ := os.ReadFile(files[1])
	if string(before) != string(after) {
		t.Error("Resume after the last step rewrote a file")
	}
}

// TestCreateSameSecond: two writers started in the same second get two files.
func TestCreateSameSecond(t *testing.T) {
	dir := t.TempDir()
	now := time.Unix(1_700_000_000, 0)
	a, err := create(dir, now)
	if err != nil {
		t.Fatal(err)
	}
	b, err := create(dir, now)
	if err != nil {
		t.Fatal(err)
	}
	a.Close()
	b.Close()
	if a.Path() == b.Path() || !strings.HasPrefix(b.Path(), a.Path()) {
		t.Errorf("files %s and %s", a.Path(), b.Path())
	}
}

// tbRead is scripts/tb_read.py's output.
type tbRead struct {
	Scalars   map[string][][3]float64 `json:"scalars"`
	HParams   map[string]any          `json:"hparams"`
	GroupName string                  `json:"group_name"`
}

// TestTensorBoardReadsBack reads a resumed run's directory with TensorBoard's own reader
// (EventAccumulator, through scripts/tb_read.py) and compares every scalar and the
// hyperparameters with what was written. It runs where SENTIBENCH_TB_PYTHONPATH names a directory
// holding the tensorboard package (CI installs it; see .ci/run), and skips elsewhere.
func TestTensorBoardReadsBack(t *testing.T) {
	pythonPath := os.Getenv("SENTIBENCH_TB_PYTHONPATH")
	if pythonPath == "" {
		t.Skip("SENTIBENCH_TB_PYTHONPATH is not set (a directory holding the tensorboard package)")
	}
	dir := t.TempDir()
	w, err := Create(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.HParams(someHParams, "", time.Unix(1_700_000_000, 0)); err != nil {
		t.Fatal(err)
	}
	writeScalars(t, w, someScalars(1, 9))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	w, err = Resume(dir, 5)
	if err != nil {
		t.Fatal(err)
	}
	writeScalars(t, w, someScalars(6, 30))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	_, file, _, _ := runtime.Caller(0)
	script := filepath.Join(filepath.Dir(file), "..", "..", "scripts", "tb_read.py")
	cmd := exec.Command("python3", script, dir)
	cmd.Env = append(os.Environ(), "PYTHONPATH="+pythonPath)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tb_read.py: %v\n%s", err, stderr.String())
	}
	var got tbRead
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("tb_read.py output: %v\n%s", err, out)
	}
	want := map[string][]scalarAt{}
	for _, s := range someScalars(1, 30) {
		want[s.tag] = append(want[s.tag], s)
	}
	if len(got.Scalars) != len(want) {
		t.Errorf("TensorBoard read tags %v, want %d tags", keys(got.Scalars), len(want))
	}
	for tag, ws := range want {
		gs := got.Scalars[tag]
		if len(gs) != len(ws) {
			t.Errorf("%s: TensorBoard read %d scalars, wrote %d", tag, len(gs), len(ws))
			continue
		}
		for i, w := range ws {
			g := gs[i]
			if int64(g[0]) != w.step || g[1] != float64(float32(w.value)) || math.Abs(g[2]-wallTime(w.wall)) > 1e-6 {
				t.Errorf("%s #%d: TensorBoard read step %v value %v wall %v, wrote %d %v %v", tag, i, g[0], g[1], g[2], w.step, float32(w.value), wallTime(w.wall))
			}
		}
	}
	wantHP := map[string]any{"lr": 1e-3, "model": "lstm", "epochs": 3.0, "bidirectional": true, "dropout": float64(float32(0.25))}
	if len(got.HParams) != len(wantHP) {
		t.Errorf("TensorBoard read hyperparameters %v, want %v", got.HParams, wantHP)
	}
	for k, v := range wantHP {
		if got.HParams[k] != v {
			t.Errorf("hyperparameter %s: TensorBoard read %v, wrote %v", k, got.HParams[k], v)
		}
	}
	if len(got.GroupName) != 64 {
		t.Errorf("group name %q", got.GroupName)
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
