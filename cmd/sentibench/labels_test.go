package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/sentibench/sentibench/train"
)

// writeClasses writes perClass texts of each class into dir/name (.csv or .jsonl), the
// classes interleaved as given; a text is its class's own word among words the classes share.
// JSONL labels that are integers are JSON numbers.
func writeClasses(t *testing.T, dir, name string, classes []string, perClass int) string {
	t.Helper()
	var b strings.Builder
	jsonl := strings.HasSuffix(name, ".jsonl")
	if !jsonl {
		b.WriteString("text,label\n")
	}
	shared := []string{"film", "plot", "actor", "scene", "music", "story", "ending", "camera"}
	for i := 0; i < perClass; i++ {
		for k, c := range classes {
			var words []string
			for j := 0; j < 6; j++ {
				words = append(words, shared[(i*7+j*3+k)%len(shared)])
			}
			words[(i+k)%len(words)] = "word" + c
			text := strings.Join(words, " ")
			switch _, err := strconv.Atoi(c); {
			case !jsonl:
				fmt.Fprintf(&b, "%s,%s\n", text, c)
			case err == nil:
				fmt.Fprintf(&b, `{"text": %q, "label": %s}`+"\n", text, c)
			default:
				fmt.Fprintf(&b, `{"text": %q, "label": %q}`+"\n", text, c)
			}
		}
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// classTrainArgs train a tiny cnn of a second on path.
func classTrainArgs(path, runDir string, extra ...string) []string {
	return append([]string{"train", "--model", "cnn", "--data", path, "--epochs", "15", "--batch-size", "16",
		"--embedding-dim", "16", "--filters", "8", "--dropout", "0", "--lr", "0.01", "--vocab-size", "100",
		"--threads", "2", "--run", runDir, "--progress", "quiet"}, extra...)
}

// evalJSON is eval --json's output.
type evalJSON struct {
	Classes   []string `json:"classes"`
	N         int      `json:"n"`
	Acc       float64  `json:"acc"`
	Confusion [][]int  `json:"confusion"`
	MacroF1   float64  `json:"macro_f1"`
	MAE       *float64 `json:"mae"`
}

// TestTrainEvalClassesCLI: 3-class CSV and 5-class JSONL data through train and eval; the
// --labels order in config.json; eval --data with labels the run does not know fails naming
// them.
func TestTrainEvalClassesCLI(t *testing.T) {
	for _, c := range []struct {
		file    string
		written []string
		flags   []string
		classes []string
		ordinal bool
	}{
		{"three.csv", []string{"pos", "neg", "neutral"}, []string{"--labels", "neg, neutral,pos"}, []string{"neg", "neutral", "pos"}, false},
		{"three-ordered.csv", []string{"pos", "neg", "neutral"}, []string{"--labels", "pos,neutral,neg"}, []string{"pos", "neutral", "neg"}, false},
		{"five.jsonl", []string{"4", "2", "5", "1", "3"}, nil, []string{"1", "2", "3", "4", "5"}, true},
	} {
		t.Run(c.file, func(t *testing.T) {
			dir := t.TempDir()
			path := writeClasses(t, dir, c.file, c.written, 40)
			runDir := filepath.Join(dir, "run")
			out, errOut, err := run(t, classTrainArgs(path, runDir, c.flags...)...)
			if err != nil {
				t.Fatalf("train: %v\n%s", err, errOut)
			}
			if !strings.Contains(out, "Val. Macro-F1: ") || strings.Contains(out, "Val. MAE: ") != c.ordinal {
				t.Errorf("epoch lines:\n%s", out)
			}
			info, err := train.ReadRunInfo(runDir)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(info.Labels, c.classes) || info.Model.Outputs != len(c.classes) {
				t.Fatalf("config.json: labels %q, %d outputs; want %q", info.Labels, info.Model.Outputs, c.classes)
			}
			if c.flags != nil && !slices.Equal(info.Config.Labels, c.classes) {
				t.Errorf("config.json's settings: labels %q, want %q", info.Config.Labels, c.classes)
			}

			out, errOut, err = run(t, "eval", "--run", runDir, "--json")
			if err != nil {
				t.Fatalf("eval: %v\n%s", err, errOut)
			}
			var e evalJSON
			if err := json.Unmarshal([]byte(out), &e); err != nil {
				t.Fatalf("eval --json: %v\n%s", err, out)
			}
			k := len(c.classes)
			if !slices.Equal(e.Classes, c.classes) || len(e.Confusion) != k || len(e.Confusion[0]) != k || e.Acc < 0.9 || e.MacroF1 < 0.85 || (e.MAE != nil) != c.ordinal {
				t.Errorf("eval --json: %s", out)
			}
			out, _, err = run(t, "eval", "--run", runDir, "--data", path)
			if err != nil {
				t.Fatal(err)
			}
			for _, want := range []string{fmt.Sprintf("Examples: %d |", 40*k), "Macro-F1: ", "macro avg", c.classes[k-1]} {
				if !strings.Contains(out, want) {
					t.Errorf("eval --data output lacks %q:\n%s", want, out)
				}
			}
			if strings.Contains(out, "| MAE: ") != c.ordinal {
				t.Errorf("eval --data: MAE only for ordinal classes:\n%s", out)
			}

			// Labels the run does not know: an error naming them, no figures.
			other := writeClasses(t, dir, "other.csv", append([]string{"zz", "yy"}, c.classes[1:]...), 3)
			out, _, err = run(t, "eval", "--run", runDir, "--data", other)
			if err == nil || !strings.Contains(err.Error(), `labels the run does not know: "yy", "zz"`) || strings.Contains(out, "Acc") {
				t.Errorf("eval of unknown labels: %v\n%s", err, out)
			}
		})
	}
}

// TestLabelsErrorsCLI: bad --labels and --target values exit 2 naming the flag, before any run
// directory is left; good/poor data without --labels and a label column of 10,000 labels exit 1
// saying what to do.
func TestLabelsErrorsCLI(t *testing.T) {
	dir := t.TempDir()
	three := writeClasses(t, dir, "three.csv", []string{"pos", "neg", "neutral"}, 10)
	goodPoor := writeClasses(t, dir, "gp.csv", []string{"good", "poor"}, 10)
	var many strings.Builder
	many.WriteString("text,label\n")
	for i := 0; i < 10000; i++ {
		fmt.Fprintf(&many, "text number %d,id%d\n", i, i)
	}
	manyPath := filepath.Join(dir, "many.csv")
	if err := os.WriteFile(manyPath, []byte(many.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	oneClass := filepath.Join(dir, "one.csv")
	emptyLabel := filepath.Join(dir, "empty.jsonl")
	if err := os.WriteFile(oneClass, []byte("text,label\na film,x\nanother,x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(emptyLabel, []byte(`{"text": "a film", "label": "x"}`+"\n"+`{"text": "another", "label": ""}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	runs := t.TempDir()
	for _, c := range []struct {
		args []string
		code int
		want string // the message's beginning, after "sentibench: ", or a part of it for exit 1
	}{
		{[]string{"--data", three, "--labels", "neg,,pos"}, 2, "--labels : want class names"},
		{[]string{"--data", three, "--labels", ""}, 2, "--labels: want the class names"},
		{[]string{"--data", three, "--labels", "neg,pos,neg"}, 2, `--labels neg,pos,neg: the class "neg" is named twice`},
		{[]string{"--data", three, "--labels", "neg"}, 2, "--labels neg: 1 class name(s)"},
		{[]string{"--data", three, "--labels", "neg,pos"}, 2, "--labels neg,pos: " + three + ` has labels the list lacks: "neutral"`},
		{[]string{"--data", three, "--labels", "neg,neutral,pos,mixed"}, 2, "--labels neg,neutral,pos,mixed: " + three + ` has no example of "mixed"`},
		{[]string{"--data", three, "--target", "stars"}, 2, "--target stars: want sentiment, rating or rating4"},
		{[]string{"--data", three, "--target", "rating"}, 2, "--target rating: " + three + ": a rating target is for IMDB data"},
		{[]string{"--data", goodPoor}, 1, `two labels, "good" and "poor", and neither is a positive class name`},
		{[]string{"--data", goodPoor}, 1, "--labels good,poor"},
		{[]string{"--data", manyPath}, 1, "10,000 distinct labels, more than the 1,000 classes"},
		{[]string{"--data", oneClass}, 1, oneClass + `: found 1 label(s) "x"; a classifier needs at least two`},
		{[]string{"--data", emptyLabel}, 1, emptyLabel + `:2: empty label ("label")`},
	} {
		runDir := filepath.Join(runs, "run")
		args := append([]string{"train", "--model", "cnn", "--epochs", "1", "--run", runDir, "--progress", "quiet"}, c.args...)
		stderr, code := runMain(t, args...)
		ok := strings.HasPrefix(stderr, "sentibench: "+c.want)
		if c.code == 1 {
			ok = strings.Contains(stderr, c.want)
		}
		if code != c.code || !ok {
			t.Errorf("%v: exit code %d, stderr %q; want %d and %q", c.args, code, stderr, c.code, c.want)
		}
		if _, err := os.Stat(runDir); !os.IsNotExist(err) {
			t.Errorf("%v: left the run directory (%v)", c.args, err)
		}
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"data", "info", "--data", three, "--labels", "neg,pos"}, "--labels neg,pos: "},
		{[]string{"data", "info", "--data", three, "--labels", "a,a"}, `--labels a,a: the class "a" is named twice`},
		{[]string{"data", "info", "--data", "sample", "--target", "stars"}, "--target stars: want sentiment, rating or rating4"},
		{[]string{"data", "info", "--data", three, "--target", "rating4"}, "--target rating4: "},
	} {
		stderr, code := runMain(t, append(c.args, "--progress", "quiet")...)
		if code != 2 || !strings.HasPrefix(stderr, "sentibench: "+c.want) {
			t.Errorf("%v: exit code %d, stderr %q; want 2 and %q", c.args, code, stderr, c.want)
		}
	}
	// data info takes the order, and IMDB's targets.
	out, _, err := run(t, "data", "info", "--data", goodPoor, "--labels", "poor,good", "--progress", "quiet")
	if err != nil || !strings.Contains(out, "labels (in id order): poor, good") {
		t.Errorf("data info --labels: %v\n%s", err, out)
	}
	out, _, err = run(t, "data", "info", "--data", "sample", "--target", "rating4", "--progress", "quiet")
	if err != nil || !strings.Contains(out, "labels (in id order): 1-2, 3-4, 7-8, 9-10") {
		t.Errorf("data info --target rating4: %v\n%s", err, out)
	}
}

// TestLabelsConfigFile: --labels and --target from a config file (a name with a comma in it
// too), and a run's config.json repeats its order.
func TestLabelsConfigFile(t *testing.T) {
	dir := t.TempDir()
	path := writeClasses(t, dir, "three.csv", []string{"a", "b", "c"}, 40)
	csvText, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// Class c becomes "c, the third".
	renamed := filepath.Join(dir, "renamed.csv")
	if err := os.WriteFile(renamed, []byte(strings.ReplaceAll(string(csvText), ",c\n", ",\"c, the third\"\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	yamlFile := filepath.Join(dir, "run.yaml")
	if err := os.WriteFile(yamlFile, []byte("labels: [\"c, the third\", a, b]\ntarget: sentiment\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	first := filepath.Join(dir, "first")
	if _, errOut, err := run(t, classTrainArgs(renamed, first, "--config", yamlFile, "--epochs", "1", "-q")...); err != nil {
		t.Fatalf("train --config: %v\n%s", err, errOut)
	}
	want := []string{"c, the third", "a", "b"}
	a, err := train.ReadRunInfo(first)
	if err != nil || !slices.Equal(a.Labels, want) || a.Config.Target != "sentiment" {
		t.Fatalf("labels %q target %q (%v), want %q", a.Labels, a.Config.Target, err, want)
	}
	second := filepath.Join(dir, "second")
	if _, errOut, err := run(t, "train", "--config", filepath.Join(first, train.ConfigFile), "--run", second, "-q"); err != nil {
		t.Fatalf("train --config RUN/config.json: %v\n%s", err, errOut)
	}
	b, err := train.ReadRunInfo(second)
	if err != nil || !slices.Equal(b.Labels, want) || !slices.Equal(b.Config.Labels, want) {
		t.Fatalf("repeated run: labels %q, settings %q (%v)", b.Labels, b.Config.Labels, err)
	}
	// The completion offers the targets.
	out, _, err := run(t, "__complete", "train", "--target", "")
	if err != nil || !strings.HasPrefix(out, "sentiment\nrating\nrating4\n") {
		t.Errorf("completion of --target: %q, %v", out, err)
	}
}

// TestEvalBinaryRunOnOtherNames is the case: a run trained on neg/pos evaluated on a
// file labelled good/poor is an error naming them (it reported 14.33% accuracy, against a
// mapping by sorted index), where the same file labelled pos/neg evaluates.
func TestEvalBinaryRunOnOtherNames(t *testing.T) {
	runDir := trainSmallRun(t)
	dir := t.TempDir()
	goodPoor := writeClasses(t, dir, "gp.csv", []string{"good", "poor"}, 5)
	out, _, err := run(t, "eval", "--run", runDir, "--data", goodPoor)
	if err == nil || !strings.Contains(err.Error(), `labels the run does not know: "good", "poor" (the run's classes: "neg", "pos")`) || strings.Contains(out, "Acc") {
		t.Errorf("good/poor against neg/pos: %v\n%s", err, out)
	}
	posNeg := writeClasses(t, dir, "pn.csv", []string{"pos", "neg"}, 5)
	out, _, err = run(t, "eval", "--run", runDir, "--data", posNeg)
	if err != nil || !strings.Contains(out, "Examples: 10 |") {
		t.Errorf("pos/neg: %v\n%s", err, out)
	}
}

// TestEvalLevelsCLI: eval --levels scores a binary run's probability as the levels of an
// ordinal target, in text and JSON (no loss: null); with --data or another split it is a usage
// error (exit 2), with a target that is not ordinal an error naming --levels.
func TestEvalLevelsCLI(t *testing.T) {
	runDir := trainSmallRun(t)
	out, _, err := run(t, "eval", "--run", runDir, "--levels", "rating4")
	if err != nil || !strings.Contains(out, "as the levels of target rating4") || !strings.Contains(out, "Loss: - |") || !strings.Contains(out, "MAE:") || !strings.Contains(out, "9-10") {
		t.Errorf("eval --levels rating4: %v\n%s", err, out)
	}
	out, _, err = run(t, "eval", "--run", runDir, "--levels", "rating", "--json")
	var res struct {
		Classes []string  `json:"classes"`
		Cuts    []float64 `json:"cuts"`
		Loss    *float64  `json:"loss"`
		N       int       `json:"n"`
	}
	if err != nil || json.Unmarshal([]byte(out), &res) != nil || len(res.Classes) != 8 || len(res.Cuts) != 7 || res.Loss != nil {
		t.Errorf("eval --levels rating --json: %v\n%s", err, out)
	}
	for _, args := range [][]string{
		{"--levels", "rating", "--data", runDir},
		{"--levels", "rating", "--split", "valid"},
	} {
		if stderr, code := runMain(t, append([]string{"eval", "--run", runDir}, args...)...); code != 2 || !strings.Contains(stderr, "--levels") {
			t.Errorf("eval %v: exit %d, %s", args, code, stderr)
		}
	}
	for _, target := range []string{"sentiment", "bogus"} {
		if stderr, code := runMain(t, "eval", "--run", runDir, "--levels", target); code != 2 || !strings.Contains(stderr, "--levels") {
			t.Errorf("eval --levels %s: exit %d, %s", target, code, stderr)
		}
	}
}
