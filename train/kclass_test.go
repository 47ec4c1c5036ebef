package train

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/sentibench/sentibench/data"
)

// The K-class tests train tiny cnns on written data whose classes each have a word of their
// own, so that a model that learns at all classifies nearly every text right.

// writeClassData writes perClass texts of each class into dir/name (.csv or .jsonl), the
// classes interleaved in the given order (so that first seen is not sorted). A text is its
// class's word among words every class shares. JSONL labels that are numbers are written as
// JSON numbers.
func writeClassData(t *testing.T, dir, name string, classes []string, perClass int) string {
	t.Helper()
	var b strings.Builder
	jsonl := strings.HasSuffix(name, ".jsonl")
	if !jsonl {
		b.WriteString("text,label\n")
	}
	shared := []string{"film", "plot", "actor", "scene", "music", "story", "ending", "camera"}
	for i := 0; i < perClass; i++ {
		for k, c := range classes {
			words := []string{}
			for j := 0; j < 6; j++ {
				words = append(words, shared[(i*7+j*3+k)%len(shared)])
			}
			words[(i+k)%len(words)] = "word" + strings.ReplaceAll(c, "-", "")
			text := strings.Join(words, " ")
			if !jsonl {
				fmt.Fprintf(&b, "%s,%s\n", text, c)
				continue
			}
			label, _ := json.Marshal(c)
			if _, err := strconv.Atoi(c); err == nil {
				label = []byte(c)
			}
			fmt.Fprintf(&b, `{"text": %q, "label": %s}`+"\n", text, label)
		}
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// tinyClassConfig is a cnn run of a second or two on path.
func tinyClassConfig(path, runDir string) Config {
	cfg := DefaultConfig("cnn")
	cfg.Data = path
	cfg.RunDir = runDir
	cfg.Epochs = 20
	cfg.BatchSize = 16
	cfg.VocabSize = 100
	cfg.EmbedDim = 16
	cfg.Filters = 8
	cfg.Dropout = 0
	cfg.LR = 0.01
	cfg.Threads = 2
	return cfg
}

// TestKClassTrainEval trains on 3-class CSV and 5-class JSONL data, and evaluates: K logits,
// the label names in config.json, the class figures in the run log and the epoch and test
// lines, and eval's figures equal to the run's test.
func TestKClassTrainEval(t *testing.T) {
	for _, c := range []struct {
		name    string
		file    string
		written []string // in the order of the rows
		classes []string // in id order
		ordinal bool
	}{
		{"3-class csv", "three.csv", []string{"pos", "neg", "neutral"}, []string{"neg", "neutral", "pos"}, false},
		{"5-class jsonl", "five.jsonl", []string{"4", "2", "5", "1", "3"}, []string{"1", "2", "3", "4", "5"}, true},
		{"3-class jsonl", "three.jsonl", []string{"sports", "arts", "news"}, []string{"arts", "news", "sports"}, false},
		{"5-class csv", "five.csv", []string{"10", "2", "7", "1", "4"}, []string{"1", "2", "4", "7", "10"}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			path := writeClassData(t, dir, c.file, c.written, 40)
			var log bytes.Buffer
			cfg := tinyClassConfig(path, filepath.Join(dir, "run"))
			res, err := Run(context.Background(), cfg, Hooks{Log: &log, Progress: &bytes.Buffer{}})
			if err != nil {
				t.Fatal(err)
			}
			info, err := ReadRunInfo(cfg.RunDir)
			if err != nil {
				t.Fatal(err)
			}
			k := len(c.classes)
			if !slices.Equal(info.Labels, c.classes) || info.Model.Outputs != k {
				t.Fatalf("config.json: labels %q, %d outputs; want %q, %d", info.Labels, info.Model.Outputs, c.classes, k)
			}
			t.Logf("test accuracy %.4f", res.Final.TestAcc)
			if res.Final.TestAcc < 0.9 {
				t.Errorf("test accuracy %.3f: the model did not learn the classes' words", res.Final.TestAcc)
			}
			rl, err := ReadRunLog(cfg.RunDir)
			if err != nil {
				t.Fatal(err)
			}
			if last := rl.Epochs[len(rl.Epochs)-1]; last.TrainAcc < 0.9 {
				t.Errorf("train accuracy %v in the last epoch", last.TrainAcc)
			}
			for _, e := range rl.Epochs {
				m := e.ValidMetrics
				if m == nil || len(m.Confusion) != k || len(m.F1) != k || sum(m.Confusion) != info.Sizes["valid"] {
					t.Fatalf("epoch %d: valid figures %+v, want a %dx%d confusion of the %d valid examples", e.Epoch, m, k, k, info.Sizes["valid"])
				}
				if (m.MAE != nil) != c.ordinal {
					t.Errorf("epoch %d: MAE %v, want one only for ordinal classes", e.Epoch, m.MAE)
				}
			}
			tm := rl.Final.TestMetrics
			if tm == nil || sum(tm.Confusion) != info.Sizes["test"] || tm.MacroF1 < 0.85 {
				t.Fatalf("test figures %+v", tm)
			}
			// TensorBoard: the macro-F1 of every epoch, and the test's.
			scalars, _ := readTensorBoard(t, filepath.Join(cfg.RunDir, "tb"))
			byTag := map[string][]float64{}
			for _, sc := range scalars {
				byTag[sc.tag] = append(byTag[sc.tag], sc.value)
			}
			if f1 := byTag["epoch/valid_metrics/macro_f1"]; len(f1) != len(rl.Epochs) || f1[len(f1)-1] != float64(float32(rl.Epochs[len(rl.Epochs)-1].ValidMetrics.MacroF1)) {
				t.Errorf("TensorBoard epoch/valid_metrics/macro_f1 %v", f1)
			}
			if f1 := byTag["final/test_metrics/macro_f1"]; len(f1) != 1 || f1[0] != float64(float32(tm.MacroF1)) {
				t.Errorf("TensorBoard final/test_metrics/macro_f1 %v, want %v", f1, tm.MacroF1)
			}
			for _, want := range []string{"Val. Macro-F1: ", "Test Macro-F1: "} {
				if !strings.Contains(log.String(), want) {
					t.Errorf("the log lacks %q:\n%s", want, log.String())
				}
			}
			if strings.Contains(log.String(), "Val. MAE:") != c.ordinal || strings.Contains(log.String(), "Test MAE:") != c.ordinal {
				t.Errorf("MAE in the lines: want it only for ordinal classes:\n%s", log.String())
			}

			// eval: the run's test split gives the run's test figures, with the run's classes.
			m, classes, err := Evaluate(context.Background(), cfg.RunDir, EvalOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(classes, c.classes) || m.Acc != res.Final.TestAcc || m.Loss != res.Final.TestLoss || !slices.EqualFunc(m.Confusion, tm.Confusion, slices.Equal) {
				t.Errorf("eval: classes %q acc %v loss %v confusion %v; the run's test: acc %v loss %v confusion %v",
					classes, m.Acc, m.Loss, m.Confusion, res.Final.TestAcc, res.Final.TestLoss, tm.Confusion)
			}
			// eval --data: the whole file, labels mapped by name.
			m, _, err = Evaluate(context.Background(), cfg.RunDir, EvalOptions{Data: path})
			if err != nil {
				t.Fatal(err)
			}
			if m.N != 40*k || m.Acc < 0.9 {
				t.Errorf("eval of the whole file: %d examples, acc %v", m.N, m.Acc)
			}
		})
	}
}

func sum(confusion [][]int) int {
	n := 0
	for _, row := range confusion {
		for _, v := range row {
			n += v
		}
	}
	return n
}

// TestLabelsOrderRespected: --labels sets the class ids, and the model's outputs follow it.
func TestLabelsOrderRespected(t *testing.T) {
	dir := t.TempDir()
	path := writeClassData(t, dir, "three.csv", []string{"a", "b", "c"}, 40)
	cfg := tinyClassConfig(path, filepath.Join(dir, "run"))
	cfg.Labels = []string{"c", "a", "b"}
	if _, err := Run(context.Background(), cfg, quietHooks()); err != nil {
		t.Fatal(err)
	}
	p, err := Load(cfg.RunDir, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(p.Classes(), cfg.Labels) || !slices.Equal(p.Info.Config.Labels, cfg.Labels) {
		t.Fatalf("classes %q, config labels %q; want %q", p.Classes(), p.Info.Config.Labels, cfg.Labels)
	}
	// Of different lengths, shortest first: the batch runs longest first, and the rows must come
	// back in the texts' order.
	probs, err := p.Probabilities([]string{"film worda plot story", "film wordb plot story scene actor", "film wordc plot story scene actor music ending"})
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{"a", "b", "c"} {
		best := slices.Index(probs[i], slices.Max(probs[i]))
		if p.Classes()[best] != want || math.Abs(sumOf(probs[i])-1) > 1e-9 {
			t.Errorf("text of class %s: probabilities %v (classes %q)", want, probs[i], p.Classes())
		}
	}
	if _, err := p.Predict([]string{"film"}); err == nil || !strings.Contains(err.Error(), "3 classes") {
		t.Errorf("Predict of a 3-class run: %v", err)
	}
}

func sumOf(v []float64) float64 {
	s := 0.0
	for _, x := range v {
		s += x
	}
	return s
}

// TestGoodPoorNeedsLabels: binary data without a positive class name is refused, saying to
// name the order; named, it trains a binary run whose log is the recipe's.
func TestGoodPoorNeedsLabels(t *testing.T) {
	dir := t.TempDir()
	path := writeClassData(t, dir, "gp.csv", []string{"good", "poor"}, 40)
	cfg := tinyClassConfig(path, filepath.Join(dir, "run"))
	_, err := Run(context.Background(), cfg, quietHooks())
	for _, want := range []string{`"good"`, `"poor"`, "--labels"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("good/poor without labels: %v; want it to say %s", err, want)
		}
	}
	if _, err := os.Stat(cfg.RunDir); !os.IsNotExist(err) {
		t.Errorf("the refused run left %s (%v)", cfg.RunDir, err)
	}
	cfg.Labels = []string{"poor", "good"}
	var log bytes.Buffer
	if _, err := Run(context.Background(), cfg, Hooks{Log: &log, Progress: &bytes.Buffer{}}); err != nil {
		t.Fatal(err)
	}
	info, err := ReadRunInfo(cfg.RunDir)
	if err != nil || !slices.Equal(info.Labels, []string{"poor", "good"}) || info.Model.Outputs != 1 {
		t.Fatalf("binary run: %v, labels %q, %d outputs", err, info.Labels, info.Model.Outputs)
	}
	b, _ := os.ReadFile(filepath.Join(cfg.RunDir, RunLogFile))
	if bytes.Contains(b, []byte("_metrics")) || strings.Contains(log.String(), "Macro-F1") {
		t.Errorf("a binary run's log has class figures:\n%s\n%s", b, log.String())
	}
}

// TestEvalMapsLabelsByName: other data's labels are the run's classes by name: a file with a
// subset of the classes, written in another order, scores as the run does; labels the run
// does not know are an error naming them.
func TestEvalMapsLabelsByName(t *testing.T) {
	dir := t.TempDir()
	path := writeClassData(t, dir, "three.csv", []string{"a", "b", "c"}, 40)
	cfg := tinyClassConfig(path, filepath.Join(dir, "run"))
	if _, err := Run(context.Background(), cfg, quietHooks()); err != nil {
		t.Fatal(err)
	}
	// c and b only: sorted they would be ids 0 and 1, the run's a and b.
	sub := writeClassData(t, dir, "cb.csv", []string{"c", "b"}, 20)
	m, classes, err := Evaluate(context.Background(), cfg.RunDir, EvalOptions{Data: sub})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(classes, []string{"a", "b", "c"}) || m.N != 40 || m.Acc < 0.9 || sum(m.Confusion[:1]) != 0 {
		t.Fatalf("subset: classes %q, %d examples, acc %v, confusion %v", classes, m.N, m.Acc, m.Confusion)
	}
	other := writeClassData(t, dir, "other.csv", []string{"a", "x", "b", "d"}, 5)
	_, _, err = Evaluate(context.Background(), cfg.RunDir, EvalOptions{Data: other})
	for _, want := range []string{other, `labels the run does not know: "d", "x"`, `the run's classes: "a", "b", "c"`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("unknown labels: %v; want it to say %s", err, want)
		}
	}
}

// TestKClassResume: a 3-class run interrupted and resumed ends with the figures of the run
// left alone, bit for bit, class figures included.
func TestKClassResume(t *testing.T) {
	dir := t.TempDir()
	path := writeClassData(t, dir, "three.csv", []string{"pos", "neg", "neutral"}, 40)
	cfg := tinyClassConfig(path, filepath.Join(dir, "reference"))
	cfg.Dropout = 0.3 // the dropout generator must resume too
	want, err := Run(context.Background(), cfg, quietHooks())
	if err != nil {
		t.Fatal(err)
	}
	got := interruptAndResume(t, cfg, filepath.Join(dir, "resumed"), 6)
	sameFigures(t, want, got)
	a, _ := ReadRunLog(want.RunDir)
	b, _ := ReadRunLog(got.RunDir)
	for i := range a.Epochs {
		wa, _ := json.Marshal(a.Epochs[i].ValidMetrics)
		wb, _ := json.Marshal(b.Epochs[i].ValidMetrics)
		if !bytes.Equal(wa, wb) {
			t.Errorf("epoch %d: valid figures %s, want %s", i+1, wb, wa)
		}
	}
}

// TestLabelsAndTargetErrors: what Run refuses of --labels and --target, as *ConfigErrors
// naming the setting.
func TestLabelsAndTargetErrors(t *testing.T) {
	dir := t.TempDir()
	path := writeClassData(t, dir, "three.csv", []string{"a", "b", "c"}, 10)
	for _, c := range []struct {
		labels []string
		target string
		field  string
		want   []string
	}{
		{labels: []string{"a", "b", "a"}, field: "labels", want: []string{`"a" is named twice`}},
		{labels: []string{"a", ""}, field: "labels", want: []string{"is empty"}},
		{labels: []string{"a", "b"}, field: "labels", want: []string{"has labels the list lacks", `"c"`}},
		{labels: []string{"a", "b", "c", "zz"}, field: "labels", want: []string{"no example of", `"zz"`}},
		{target: "stars", field: "target", want: []string{"unknown target", "sentiment, rating or rating4"}},
		{target: data.TargetRating, field: "target", want: []string{"for IMDB data"}},
	} {
		cfg := tinyClassConfig(path, filepath.Join(dir, "run"))
		cfg.Labels, cfg.Target = c.labels, c.target
		_, err := Run(context.Background(), cfg, quietHooks())
		var ce *ConfigError
		if !errors.As(err, &ce) || ce.Field != c.field {
			t.Errorf("labels %q target %q: %v, want a *ConfigError of %s", c.labels, c.target, err, c.field)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("labels %q target %q: %v; want it to say %s", c.labels, c.target, err, w)
			}
		}
	}
}

// TestRatingTargetRun: IMDB's rating4 target trains 4 logits on the reviews and parts of the
// sentiment run, with the rating MAE.
func TestRatingTargetRun(t *testing.T) {
	cfg := smallConfig("cnn")
	cfg.Limit, cfg.Epochs = 40, 1
	cfg.Target = data.TargetRating4
	cfg.RunDir = filepath.Join(t.TempDir(), "run")
	res, err := Run(context.Background(), cfg, quietHooks())
	if err != nil {
		t.Fatal(err)
	}
	info, err := ReadRunInfo(cfg.RunDir)
	if err != nil {
		t.Fatal(err)
	}
	c, err := data.Load(context.Background(), data.Options{Path: "sample", Limit: 40, Seed: cfg.Seed})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(info.Labels, []string{"1-2", "3-4", "7-8", "9-10"}) || info.Model.Outputs != 4 || info.Config.Target != data.TargetRating4 {
		t.Fatalf("labels %q, %d outputs, target %q", info.Labels, info.Model.Outputs, info.Config.Target)
	}
	if info.Sizes["train"] != len(c.Train) || info.Sizes["valid"] != len(c.Valid) || info.Sizes["test"] != len(c.Test) {
		t.Errorf("sizes %v, the sentiment split's %d/%d/%d", info.Sizes, len(c.Train), len(c.Valid), len(c.Test))
	}
	if m := res.Final.TestMetrics; m == nil || m.MAE == nil || !(*m.MAE >= 0 && *m.MAE <= 8) {
		t.Errorf("test figures %+v: want a rating MAE in [0, 8]", m)
	}
}

// TestRunLogClassMetricsJSON: the class figures go through the run log with an undefined
// precision as null, read back as NaN; a binary log (no class figures) reads as before.
func TestRunLogClassMetricsJSON(t *testing.T) {
	dir := t.TempDir()
	mae := 0.5
	cm := ClassMetrics{Confusion: [][]int{{2, 0, 0}, {1, 0, 0}, {0, 0, 3}}, Precision: Ratios{2.0 / 3, math.NaN(), 1},
		Recall: Ratios{1, 0, 1}, F1: []float64{0.8, 0, 1}, MacroF1: 0.6, MAE: &mae}
	if err := writeRunLog(dir, []EpochRecord{{Epoch: 1, ValidMetrics: &cm}, {Epoch: 2}}, nil); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(dir, RunLogFile))
	if !bytes.Contains(b, []byte(`"precision":[0.6666666666666666,null,1]`)) {
		t.Fatalf("run log %s", b)
	}
	rl, err := ReadRunLog(dir)
	if err != nil {
		t.Fatal(err)
	}
	got := rl.Epochs[0].ValidMetrics
	if got == nil || !math.IsNaN(got.Precision[1]) || got.Precision[0] != 2.0/3 || *got.MAE != 0.5 || got.Confusion[2][2] != 3 || rl.Epochs[1].ValidMetrics != nil {
		t.Fatalf("read back %+v, %+v", got, rl.Epochs[1])
	}
}

// TestOldRunWithoutLabelsSetting: a run made before --labels existed recorded its classes'
// order only in config.json's "labels" (byte-wise: good, poor for good/poor data); eval and
// resume take that order, though the data alone would now be refused.
func TestOldRunWithoutLabelsSetting(t *testing.T) {
	dir := t.TempDir()
	path := writeClassData(t, dir, "gp.csv", []string{"good", "poor"}, 40)
	cfg := tinyClassConfig(path, filepath.Join(dir, "run"))
	cfg.Labels = []string{"good", "poor"} // the old order
	ctx, cancel := context.WithCancel(context.Background())
	hooks := quietHooks()
	hooks.Meter = &cancelAfter{n: 5, cancel: cancel}
	if _, err := Run(ctx, cfg, hooks); !errors.Is(err, ErrInterrupted) {
		t.Fatalf("got %v, want ErrInterrupted", err)
	}
	cancel()
	// Make it an old run: no "labels" in its settings.
	p := filepath.Join(cfg.RunDir, ConfigFile)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	delete(doc["config"].(map[string]any), "labels")
	if b, err = json.Marshal(doc); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := Resume(context.Background(), cfg.RunDir, quietHooks())
	if err != nil {
		t.Fatalf("resume of an old run: %v", err)
	}
	m, classes, err := Evaluate(context.Background(), cfg.RunDir, EvalOptions{})
	if err != nil {
		t.Fatalf("eval of an old run: %v", err)
	}
	if !slices.Equal(classes, []string{"good", "poor"}) || m.Acc != res.Final.TestAcc {
		t.Errorf("eval: classes %q acc %v, the run's test acc %v", classes, m.Acc, res.Final.TestAcc)
	}
}

// TestBiGRUClasses: the bigru head over the tiny random BERT trains IMDB's rating4 target: four
// logits, the run's classes, a Predictor's probabilities of every class.
func TestBiGRUClasses(t *testing.T) {
	cfg, _ := tinyBiGRUConfig(t)
	cfg.Epochs, cfg.Limit = 1, 20
	cfg.Target = data.TargetRating4
	cfg.RunDir = filepath.Join(t.TempDir(), "run")
	if _, err := Run(context.Background(), cfg, quietHooks()); err != nil {
		t.Fatal(err)
	}
	p, err := Load(cfg.RunDir, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if p.Info.Model.Outputs != 4 || !slices.Equal(p.Classes(), []string{"1-2", "3-4", "7-8", "9-10"}) {
		t.Fatalf("%d outputs, classes %q", p.Info.Model.Outputs, p.Classes())
	}
	probs, err := p.Probabilities([]string{"A wonderful film.", "Dull."})
	if err != nil || len(probs) != 2 || len(probs[0]) != 4 || math.Abs(sumOf(probs[1])-1) > 1e-9 {
		t.Fatalf("probabilities %v, %v", probs, err)
	}
}
