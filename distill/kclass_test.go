package distill

// Distillation with K classes: the teacher's K logits per text through the cache and the loss
// hook, the classes the teacher and the student must share, and (once train trains K classes)
// a whole K-class distillation.

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sentibench/sentibench/data"
	"github.com/sentibench/sentibench/internal/blas"
	"github.com/sentibench/sentibench/internal/safetensors"
	"github.com/sentibench/sentibench/nn"
	"github.com/sentibench/sentibench/train"
)

// hashTeacher gives each text K logits that follow from the text alone, and counts its calls.
type hashTeacher struct {
	K     int
	calls *int
}

func (h hashTeacher) Logits(texts []string) ([]float32, error) {
	*h.calls++
	out := make([]float32, 0, len(texts)*h.K)
	for _, text := range texts {
		out = append(out, hashLogits(text, h.K)...)
	}
	return out, nil
}

// hashLogits is a text's K logits from hashTeacher: in [-4, 4), different per class.
func hashLogits(text string, K int) []float32 {
	out := make([]float32, K)
	for k := range out {
		f := fnv.New32a()
		fmt.Fprintf(f, "%d:%s", k, text)
		out[k] = float32(f.Sum32()%8000)/1000 - 4
	}
	return out
}

// TestTeacherLogitsKClasses: a K-class teacher's logits are cached K per text, row-major in the
// transfer set's order, with the cache's tensor of shape (n, K); the next pass reads them
// back without the teacher; a cache of another width is computed again; a teacher that gives
// the wrong count of logits, or a non-finite one, is an error naming it.
func TestTeacherLogitsKClasses(t *testing.T) {
	ts := &transferSet{n: 5, index: []int{0, 2, 3, 4, 5}, texts: []string{"a good film", "bad", "a fine, long film", "dull", "the best"}}
	cfg := Config{Teacher: teacherDir, Augment: DefaultAugment(), TeacherBatch: 2}
	dir := t.TempDir()
	hooks := quietHooks().Hooks
	calls := 0
	open := func(K int) func() (Teacher, error) {
		return func() (Teacher, error) { return hashTeacher{K: K, calls: &calls}, nil }
	}
	const K = 3
	got, err := teacherLogits(context.Background(), dir, cfg, ts, K, open(K), hooks)
	if err != nil {
		t.Fatal(err)
	}
	if calls != 3 {
		t.Errorf("%d teacher batches for 5 texts in batches of 2, want 3", calls)
	}
	var want []float32
	for _, text := range ts.texts {
		want = append(want, hashLogits(text, K)...)
	}
	if !slices.Equal(got, want) {
		t.Errorf("logits %v, want %v", got, want)
	}
	f, err := safetensors.Open(filepath.Join(dir, LogitsFile))
	if err != nil {
		t.Fatal(err)
	}
	if shape := f.Tensors["logits"].Shape; !slices.Equal(shape, []int{5, K}) {
		t.Errorf("cached logits of shape %v, want [5 %d]", shape, K)
	}
	f.Close()

	calls = 0
	again, err := teacherLogits(context.Background(), dir, cfg, ts, K, open(K), hooks)
	if err != nil || calls != 0 || !slices.Equal(again, want) {
		t.Errorf("from the cache: %d teacher calls, logits equal %v, err %v", calls, slices.Equal(again, want), err)
	}
	// The same key with another width (a teacher of other outputs would also change the key):
	// computed again, and cached at its width.
	bin, err := teacherLogits(context.Background(), dir, cfg, ts, 1, open(1), hooks)
	if err != nil || calls != 3 || len(bin) != 5 {
		t.Errorf("a binary teacher over a 3-class cache: %d teacher calls, %d logits, err %v", calls, len(bin), err)
	}
	if c, err := readCache(filepath.Join(dir, LogitsFile)); err != nil || c.k != 1 {
		t.Errorf("the binary cache reads back with %+v, %v", c, err)
	}

	short := func() (Teacher, error) { return hashTeacher{K: 2, calls: &calls}, nil }
	if _, err := teacherLogits(context.Background(), t.TempDir(), cfg, ts, K, short, hooks); err == nil || !strings.Contains(err.Error(), "gave 4 logits for 2 texts of 3 per text") {
		t.Errorf("a teacher of 2 logits per text for 3: %v", err)
	}
	nan := func() (Teacher, error) { return nanTeacher{K}, nil }
	if _, err := teacherLogits(context.Background(), t.TempDir(), cfg, ts, K, nan, hooks); err == nil || !strings.Contains(err.Error(), "logit 2 of transfer example") {
		t.Errorf("a NaN logit: %v", err)
	}
}

// TestStoreLogits: a row of finite logits lands in its example's place; an infinite or NaN one is
// refused, naming the logit and the example, and leaves the cache as it was. Both ways of
// computing the teacher's logits (texts and encoder features) store through it.
func TestStoreLogits(t *testing.T) {
	all := make([]float32, 6)
	if err := storeLogits(all, 1, []float32{1, 2, 3}); err != nil || all[3] != 1 || all[5] != 3 || all[0] != 0 {
		t.Errorf("a finite row: %v, cache %v", err, all)
	}
	for _, bad := range []float32{float32(math.Inf(1)), float32(math.Inf(-1)), nan} {
		err := storeLogits(all, 0, []float32{0, bad, 0})
		if err == nil || !strings.Contains(err.Error(), "logit 1 of transfer example 0") {
			t.Errorf("a logit of %v: %v", bad, err)
		}
		if all[1] != 0 {
			t.Errorf("a refused row was stored: %v", all)
		}
	}
}

// nanTeacher gives its last logit of every text as NaN.
type nanTeacher struct{ K int }

func (n nanTeacher) Logits(texts []string) ([]float32, error) {
	out := make([]float32, len(texts)*n.K)
	for i := range texts {
		out[i*n.K+n.K-1] = nan
	}
	return out, nil
}

// TestLossHookKClasses: each batch's loss gets the K cached logits of each of its examples, by
// dataset index, whatever the batch's order; an index outside the transfer set is an error.
func TestLossHookKClasses(t *testing.T) {
	const K = 3
	ts := &transferSet{n: 4, index: []int{3, 0, 1}, extra: []string{"x"}}
	ts.index = append(ts.index, 4)                                   // the extra text
	logits := []float32{30, 31, 32, 0, 1, 2, 10, 11, 12, 40, 41, 42} // dataset indices 3, 0, 1, 4
	for _, loss := range []string{LossKD, LossMSE} {
		hook := lossHook(Config{Loss: loss, Temperature: 2, Alpha: 0.5}, ts, K, logits)
		l, err := hook([]int{4, 1, 0, 3}, []float32{nan, 1, 2, 0})
		if err != nil {
			t.Fatal(err)
		}
		want := []float32{40, 41, 42, 10, 11, 12, 0, 1, 2, 30, 31, 32}
		var got []float32
		switch l := l.(type) {
		case *KD:
			got = l.Teacher
		case *MSE:
			got = l.Teacher
		default:
			t.Fatalf("%s: a loss of type %T", loss, l)
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s: teacher logits %v, want %v", loss, got, want)
		}
		if _, err := hook([]int{0, 2}, []float32{1, 1}); err == nil || !strings.Contains(err.Error(), "dataset index 2) is not in the transfer set") {
			t.Errorf("%s: an index outside the transfer set: %v", loss, err)
		}
	}
}

// writeCSV writes rows (text, label) as a CSV file with a header and returns its path.
func writeCSV(t *testing.T, rows [][2]string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "data.csv")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := csv.NewWriter(f)
	w.Write([]string{"text", "label"})
	for _, r := range rows {
		w.Write([]string{r[0], r[1]})
	}
	w.Flush()
	if err := errors.Join(w.Error(), f.Close()); err != nil {
		t.Fatal(err)
	}
	return path
}

// labelledRows returns n made-up reviews labelled in turn with labels, each with a word of its
// class.
func labelledRows(n int, labels ...string) [][2]string {
	words := []string{"awful", "fine", "wonderful", "dull", "moving", "boring"}
	rows := make([][2]string, n)
	for i := range rows {
		c := i % len(labels)
		rows[i] = [2]string{fmt.Sprintf("review %d : a %s film , %s indeed .", i, words[c%len(words)], words[c%len(words)]), labels[c]}
	}
	return rows
}

// TestClassesMustMatch: a student's data whose classes are not the teacher's, in the teacher's
// order, is an error naming both lists; so is a baseline of other classes, and a teacher whose
// model has the wrong number of outputs for its classes.
func TestClassesMustMatch(t *testing.T) {
	for _, labels := range [][]string{{"neg", "positive"}, {"neg", "neutral", "pos"}} {
		cfg := smallDistill(t, filepath.Join(t.TempDir(), "student"))
		cfg.Student.Data = writeCSV(t, labelledRows(60, labels...))
		_, err := Run(context.Background(), cfg, quietHooks())
		want := fmt.Sprintf("has the classes %s, the teacher %s was trained on [\"neg\", \"pos\"]", quoteList(labels), teacherDir)
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), cfg.Student.Data) {
			t.Errorf("student data labelled %q: got %v, want an error naming the data and with %q", labels, err, want)
		}
	}

	// A baseline run of other classes: the teacher's run relabelled.
	other := filepath.Join(t.TempDir(), "other")
	copyRun(t, teacherDir, other)
	info, err := train.ReadRunInfo(other)
	if err != nil {
		t.Fatal(err)
	}
	info.Labels = []string{"bad", "good"}
	writeInfo(t, other, info)
	cfg := smallDistill(t, filepath.Join(t.TempDir(), "student"))
	cfg.Baseline = other
	if _, err := Run(context.Background(), cfg, quietHooks()); err == nil || !strings.Contains(err.Error(), `has the classes ["bad", "good"], the teacher`) {
		t.Errorf("a baseline of other classes: %v", err)
	}

	// A teacher whose model has 3 outputs for 2 classes, or no class names.
	for _, c := range []struct {
		labels  []string
		outputs int
		want    string
	}{
		{[]string{"neg", "pos"}, 3, `2 labels for a model of 3 outputs (want 1)`}, // train.ReadRunInfo's check
		{[]string{"a", "b", "c"}, 1, `3 labels for a model of 1 outputs (want 3)`},
		{nil, 1, `records 0 class names`},
	} {
		info.Labels, info.Model.Outputs = c.labels, c.outputs
		writeInfo(t, other, info)
		cfg := smallDistill(t, filepath.Join(t.TempDir(), "student"))
		cfg.Teacher = other
		if _, err := Run(context.Background(), cfg, quietHooks()); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("teacher with %d outputs for %q: got %v, want %q", c.outputs, c.labels, err, c.want)
		}
	}
}

// writeInfo rewrites a run's config.json.
func writeInfo(t *testing.T, dir string, info train.RunInfo) {
	t.Helper()
	b, err := json.MarshalIndent(info, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, train.ConfigFile), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestDistillKClassesEndToEnd trains a 3-class cnn teacher on own data and distils it into a
// tiny cnn with Hinton's loss: the cache holds 3 logits per transfer example, the student has 3
// outputs and the teacher's class names, and the report tests all three models.
func TestDistillKClassesEndToEnd(t *testing.T) {
	labels := []string{"neg", "neutral", "pos"}
	data := writeCSV(t, labelledRows(90, labels...))
	tc := smallConfig("cnn")
	tc.Data, tc.Limit, tc.Epochs = data, 0, 2
	tc.RunDir = filepath.Join(t.TempDir(), "teacher")
	if _, err := train.Run(context.Background(), tc, quietHooks().Hooks); err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig(tc.RunDir, "cnn")
	cfg.Student = smallConfig("cnn")
	cfg.Student.Data, cfg.Student.Limit, cfg.Student.Epochs = "", 0, 2
	cfg.TeacherBatch = 16
	cfg.TrainBaseline = true
	cfg.RunDir = filepath.Join(t.TempDir(), "student")
	res, err := Run(context.Background(), cfg, quietHooks())
	if err != nil {
		t.Fatal(err)
	}
	c, err := readCache(filepath.Join(cfg.RunDir, LogitsFile))
	if err != nil || c == nil || c.k != 3 || len(c.logits) != 3*len(c.index) || c.done != len(c.index) {
		t.Fatalf("cache %+v, %v: want 3 logits per example, all done", c, err)
	}
	for _, dir := range []string{cfg.RunDir, filepath.Join(cfg.RunDir, BaselineDir)} {
		info, err := train.ReadRunInfo(dir)
		if err != nil {
			t.Fatal(err)
		}
		if info.Model.Outputs != 3 || !slices.Equal(info.Labels, labels) {
			t.Errorf("%s: %d outputs, classes %q; want 3 and %q", dir, info.Model.Outputs, info.Labels, labels)
		}
	}
	if len(res.Report.Rows) != 3 {
		t.Fatalf("report of %d rows, want 3", len(res.Report.Rows))
	}
	for _, r := range res.Report.Rows {
		if !(r.TestAcc > 0 && r.TestAcc <= 1) {
			t.Errorf("%s: test accuracy %v", r.Role, r.TestAcc)
		}
	}
}

// kClassTeacher makes a 3-class run out of the fixture teacher: config.json with 3 outputs and
// 3 class names, the best checkpoint a fresh 3-output model's weights.
func kClassTeacher(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "teacher3")
	copyRun(t, teacherDir, dir)
	info, err := train.ReadRunInfo(dir)
	if err != nil {
		t.Fatal(err)
	}
	info.Model.Outputs, info.Labels = 3, []string{"neg", "neutral", "pos"}
	writeInfo(t, dir, info)
	impl, err := blas.Load("")
	if err != nil {
		t.Fatal(err)
	}
	m, err := nn.NewModel(nn.NewCPU(impl, 1), info.Model, nn.NewRNG(3))
	if err != nil {
		t.Fatal(err)
	}
	if err := nn.SaveWeights(filepath.Join(dir, train.BestDir, train.WeightsFile), m, nil); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestReportKClasses: the report's accuracy of a K-class model is the share of test texts whose
// largest logit is their label's, and its throughput measure runs a K-class model.
func TestReportKClasses(t *testing.T) {
	rows := labelledRows(30, "neg", "neutral", "pos")
	c := &data.Corpus{Classes: []string{"neg", "neutral", "pos"}}
	for i, r := range rows {
		c.Examples = append(c.Examples, data.Example{Text: r[0], Label: i % 3})
		c.Test = append(c.Test, i)
	}
	correct, predicted := 0, map[int]int{}
	for i, r := range rows {
		row := hashLogits(r[0], 3)
		top := slices.Index(row, slices.Max(row))
		predicted[top]++
		if top == i%3 {
			correct++
		}
	}
	if len(predicted) < 3 || correct == 0 || correct == len(rows) {
		t.Fatalf("the teacher predicts %v, %d of %d right: the test cannot tell a wrong rule from the right one", predicted, correct, len(rows))
	}
	calls := 0
	got, err := accuracy(context.Background(), hashTeacher{K: 3, calls: &calls}, c)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("accuracy %v (%d of %d; predicted classes %v)", got, correct, len(rows), predicted)
	if want := float64(correct) / float64(len(rows)); got != want {
		t.Errorf("accuracy %v, want %v", got, want)
	}

	p, err := train.Load(kClassTeacher(t), train.LoadOptions{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := throughput(p, texts(c, c.Test)); err != nil {
		t.Errorf("throughput of a 3-class model: %v", err)
	}
}

// TestKClassStudentLearnsTeacher trains a 3-class cnn student on the loss hook's batches (the
// teacher's cached logits by dataset index, some examples unlabelled) with nn's step runner, as
// train does: the loss falls, and the student comes to rank the classes as the teacher does.
func TestKClassStudentLearnsTeacher(t *testing.T) {
	const K, B, T = 3, 12, 6
	impl, err := blas.Load("")
	if err != nil {
		t.Fatal(err)
	}
	m, err := nn.NewModel(nn.NewCPU(impl, 1), nn.Config{Kind: nn.KindCNN, VocabSize: 30, PadID: 1, EmbedDim: 8,
		Filters: 6, Widths: []int{2, 3}, Outputs: K}, nn.NewRNG(4))
	if err != nil {
		t.Fatal(err)
	}
	// Example i (dataset index i) has tokens of its teacher's favourite class, i % K.
	rng := nn.NewRNG(5)
	in := &nn.Input{Lengths: make([]int, B), T: T, IDs: make([]int32, B*T)}
	ts := &transferSet{n: B}
	var logits []float32
	labels := make([]float32, B)
	for i := range B {
		in.Lengths[i] = T
		for p := range T {
			in.IDs[i*T+p] = int32(2 + (i%K)*5 + rng.IntN(5))
		}
		ts.index = append(ts.index, i)
		row := []float32{-1, -1, -1}
		row[i%K] = 2
		logits = append(logits, row...)
		labels[i] = float32(i % K)
		if i%4 == 3 {
			labels[i] = nan
		}
	}
	hook := lossHook(Config{Loss: LossKD, Temperature: 2, Alpha: 0.3}, ts, K, logits)
	batch := make([]int, B)
	for i := range batch {
		batch[i] = i
	}
	opt, err := nn.NewAdam(nn.AdamConfig{LR: 2e-2})
	if err != nil {
		t.Fatal(err)
	}
	var r nn.Runner
	var first, last float64
	for step := range 40 {
		loss, err := hook(batch, labels)
		if err != nil {
			t.Fatal(err)
		}
		res, err := r.Step(m, in, loss, nn.Train, nil)
		if err != nil {
			t.Fatal(err)
		}
		if step == 0 {
			first = res.Loss
		}
		last = res.Loss
		if err := opt.Step(m.Params()); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("loss %.4f -> %.4f", first, last)
	if !(last < first/2) {
		t.Errorf("the loss did not fall: %.4f -> %.4f", first, last)
	}
	res, err := r.Step(m, in, nil, nn.Eval, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range B {
		if got := nn.Predicted(res.Logits[i*K : (i+1)*K]); got != i%K {
			t.Errorf("example %d: class %d, the teacher's %d", i, got, i%K)
		}
	}
}

// TestDistillInheritsTeacherLabels: a teacher trained with its own class order (--labels) is
// distilled on its data with no labels given: the student reads the data in the teacher's
// order, as it must to learn the teacher's logits class by class.
func TestDistillInheritsTeacherLabels(t *testing.T) {
	labels := []string{"pos", "neutral", "neg"} // not the natural (byte-wise) order
	data := writeCSV(t, labelledRows(60, labels...))
	tc := smallConfig("cnn")
	tc.Data, tc.Limit, tc.Epochs, tc.Labels = data, 0, 1, labels
	tc.RunDir = filepath.Join(t.TempDir(), "teacher")
	if _, err := train.Run(context.Background(), tc, quietHooks().Hooks); err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig(tc.RunDir, "cnn")
	cfg.Student = smallConfig("cnn")
	cfg.Student.Data, cfg.Student.Limit, cfg.Student.Epochs = "", 0, 1
	cfg.TeacherBatch = 16
	cfg.RunDir = filepath.Join(t.TempDir(), "student")
	if _, err := Run(context.Background(), cfg, quietHooks()); err != nil {
		t.Fatal(err)
	}
	info, err := train.ReadRunInfo(cfg.RunDir)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(info.Labels, labels) {
		t.Errorf("student's classes %q, want the teacher's %q", info.Labels, labels)
	}
}

// TestTeacherLogitsFromAnotherRun: Config.TeacherLogits starts a run from another run's teacher
// logits (its directory or the file) without running the teacher, and copies them into the
// run; logits of another transfer set or batch size, or a missing file, are refused naming the
// file; a run with logits of its own keeps them.
func TestTeacherLogitsFromAnotherRun(t *testing.T) {
	ts := &transferSet{n: 5, index: []int{0, 2, 3, 4, 5}, texts: []string{"a good film", "bad", "a fine, long film", "dull", "the best"}}
	cfg := Config{Teacher: teacherDir, Augment: DefaultAugment(), TeacherBatch: 2}
	hooks := quietHooks().Hooks
	calls := 0
	open := func() (Teacher, error) { return hashTeacher{K: 3, calls: &calls}, nil }
	first := t.TempDir()
	want, err := teacherLogits(context.Background(), first, cfg, ts, 3, open, hooks)
	if err != nil || calls != 3 {
		t.Fatalf("the first run: %d teacher batches, err %v", calls, err)
	}

	for _, from := range []string{first, filepath.Join(first, LogitsFile)} {
		calls = 0
		dir := t.TempDir()
		c := cfg
		c.TeacherLogits = from
		got, err := teacherLogits(context.Background(), dir, c, ts, 3, open, hooks)
		if err != nil || calls != 0 || !slices.Equal(got, want) {
			t.Errorf("from %s: %d teacher batches, logits equal %v, err %v", from, calls, slices.Equal(got, want), err)
		}
		if own, err := readCache(filepath.Join(dir, LogitsFile)); err != nil || own == nil || !slices.Equal(own.logits, want) {
			t.Errorf("from %s: the run's own copy: %v, %v", from, own, err)
		}
		// Resumed, the run keeps its own logits even when the flag now names others.
		c.TeacherLogits = filepath.Join(t.TempDir(), "missing.safetensors")
		if again, err := teacherLogits(context.Background(), dir, c, ts, 3, open, hooks); err != nil || calls != 0 || !slices.Equal(again, want) {
			t.Errorf("resumed with its own logits: %d teacher batches, err %v", calls, err)
		}
	}

	other := cfg
	other.TeacherBatch = 3 // another key
	other.TeacherLogits = first
	if _, err := teacherLogits(context.Background(), t.TempDir(), other, ts, 3, open, hooks); err == nil ||
		!strings.Contains(err.Error(), filepath.Join(first, LogitsFile)) || !strings.Contains(err.Error(), "computed from another teacher") {
		t.Errorf("logits of another batch size: %v", err)
	}
	wider := cfg
	wider.TeacherLogits = first
	if _, err := teacherLogits(context.Background(), t.TempDir(), wider, ts, 4, open, hooks); err == nil || !strings.Contains(err.Error(), "computed from another teacher") {
		t.Errorf("logits of 3 classes for a teacher of 4: %v", err)
	}
	empty := t.TempDir()
	missing := cfg
	missing.TeacherLogits = empty
	if _, err := teacherLogits(context.Background(), t.TempDir(), missing, ts, 3, open, hooks); err == nil || !strings.Contains(err.Error(), "no such file") ||
		!strings.Contains(err.Error(), empty) {
		t.Errorf("a directory without logits: %v", err)
	}
}
