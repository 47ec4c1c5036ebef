package train

import (
	"context"
	"encoding/json"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sentibench/sentibench/nn"
)

// TestClassifyKClasses trains 3- and 5-class runs on written data (each class has a word of its
// own) and classifies a text of each class: the run's label names, the class of the largest
// probability, probabilities that are the softmax of Logits's logits and sum to 1, each text's
// the same in a batch as alone.
func TestClassifyKClasses(t *testing.T) {
	for _, classes := range [][]string{{"neg", "neutral", "pos"}, {"1", "2", "3", "4", "5"}} {
		t.Run(classes[len(classes)-1], func(t *testing.T) {
			dir := t.TempDir()
			cfg := tinyClassConfig(writeClassData(t, dir, "data.csv", classes, 30), filepath.Join(dir, "run"))
			if _, err := Run(context.Background(), cfg, quietHooks()); err != nil {
				t.Fatal(err)
			}
			p, err := Load(cfg.RunDir, LoadOptions{Threads: 1})
			if err != nil {
				t.Fatal(err)
			}
			// Of different lengths, the shortest first (the batch runs longest first).
			var texts []string
			for i, c := range classes {
				texts = append(texts, "film word"+c+" plot"+strings.Repeat(" story", i))
			}
			got, err := p.Classify(texts)
			if err != nil {
				t.Fatal(err)
			}
			logits, err := p.Logits(texts)
			if err != nil {
				t.Fatal(err)
			}
			K := len(classes)
			for i, c := range got {
				want := nn.Probabilities(nil, logits[i*K:(i+1)*K])
				if c.Label != classes[i] || c.Class != i || !slices.Equal(c.Probabilities, want) || math.Abs(sumOf(c.Probabilities)-1) > 1e-9 {
					t.Errorf("text of class %s: %+v; the softmax of its logits %v", classes[i], c, want)
				}
				if label, prob := c.Verdict(p.Classes()); label != classes[i] || prob != c.Probabilities[i] {
					t.Errorf("text of class %s: verdict %q %v", classes[i], label, prob)
				}
				alone, err := p.Classify(texts[i : i+1])
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(alone[0].Probabilities, c.Probabilities) {
					t.Errorf("text %d: %v in the batch, %v alone", i, c.Probabilities, alone[0].Probabilities)
				}
			}
		})
	}
}

// TestClassifyBinary: a binary IMDB run's Classify gives Predict's probability bit for bit as
// the positive class's, neg/pos by the logit's sign, and the verdict of the six sentiment
// levels; a binary run of other names gets its class's name instead.
func TestClassifyBinary(t *testing.T) {
	cfg := smallConfig("cnn")
	cfg.Epochs, cfg.Limit = 1, 20
	cfg.RunDir = filepath.Join(t.TempDir(), "run")
	if _, err := Run(context.Background(), cfg, quietHooks()); err != nil {
		t.Fatal(err)
	}
	p, err := Load(cfg.RunDir, LoadOptions{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	texts := []string{"a fine film .", "the worst film of the year , dull and far too long .", "good", "not bad at all , really"}
	probs, err := p.Predict(texts)
	if err != nil {
		t.Fatal(err)
	}
	logits, err := p.Logits(texts)
	if err != nil {
		t.Fatal(err)
	}
	got, err := p.Classify(texts)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(p.Classes(), []string{"neg", "pos"}) {
		t.Fatalf("classes %q", p.Classes())
	}
	for i, c := range got {
		wantClass := 0
		if logits[i] > 0 {
			wantClass = 1
		}
		if c.Probabilities[1] != probs[i] || c.Probabilities[0] != 1-probs[i] || c.Class != wantClass || c.Label != p.Classes()[wantClass] {
			t.Errorf("text %d: %+v; Predict %v, logit %v", i, c, probs[i], logits[i])
		}
		if label, prob := c.Verdict(p.Classes()); label != SentimentLabel(probs[i]) || prob != probs[i] {
			t.Errorf("text %d: verdict %q %v, want %q %v", i, label, prob, SentimentLabel(probs[i]), probs[i])
		}
		if label, prob := c.Verdict([]string{"poor", "good"}); label != c.Label || prob != probs[i] {
			t.Errorf("text %d of a poor/good run: verdict %q %v, want %q %v", i, label, prob, c.Label, probs[i])
		}
	}
}

// TestRunClasses: a run's classes are its labels; a run that names none is neg/pos, or "0" to
// "K-1" for K classes.
func TestRunClasses(t *testing.T) {
	for _, c := range []struct {
		labels  []string
		outputs int
		want    []string
	}{
		{[]string{"good", "poor"}, 1, []string{"good", "poor"}},
		{nil, 1, []string{"neg", "pos"}},
		{nil, 3, []string{"0", "1", "2"}},
		{[]string{"a", "b", "c"}, 3, []string{"a", "b", "c"}},
	} {
		info := RunInfo{Labels: c.labels, Model: nn.Config{Outputs: c.outputs}}
		if got := runClasses(info); !slices.Equal(got, c.want) {
			t.Errorf("labels %q, %d outputs: classes %q, want %q", c.labels, c.outputs, got, c.want)
		}
	}
}

// TestSentimentClasses: the six sentiment levels are for binary runs whose second class is a
// positive class name, and no other.
func TestSentimentClasses(t *testing.T) {
	for _, c := range []struct {
		classes []string
		want    bool
	}{
		{[]string{"neg", "pos"}, true},
		{[]string{"negative", "Positive"}, true},
		{[]string{"0", "1"}, true},
		{[]string{"false", "TRUE"}, true},
		{[]string{"poor", "good"}, false},
		{[]string{"good", "poor"}, false},
		{[]string{"pos", "neg"}, false},
		{[]string{"ham", "spam"}, false},
		{[]string{"1", "2"}, false},
		{[]string{"pos", "positive"}, false},
		{[]string{"neg", "neutral", "pos"}, false},
		{nil, false},
	} {
		if got := SentimentClasses(c.classes); got != c.want {
			t.Errorf("SentimentClasses(%q) = %v, want %v", c.classes, got, c.want)
		}
	}
}

// TestClassProbabilitiesJSON: an object in the classes' order (not sorted: "10" after "9"),
// read back in that order; NaN is an error, not invalid JSON.
func TestClassProbabilitiesJSON(t *testing.T) {
	c := Classification{Class: 1, Label: "10", Probabilities: []float64{0.25, 0.625, 0.125}}
	b, err := json.Marshal(c.ByClass([]string{"9", "10", "a \"quoted\" name"}))
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"9":0.25,"10":0.625,"a \"quoted\" name":0.125}`; string(b) != want {
		t.Errorf("JSON %s, want %s", b, want)
	}
	var back ClassProbabilities
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if want := c.ByClass([]string{"9", "10", "a \"quoted\" name"}); !slices.Equal(back, want) {
		t.Errorf("read back %v, want %v", back, want)
	}
	for _, bad := range []string{`[0.5, 0.5]`, `{"a": "x"}`, `{"a": 0.5`} {
		if err := json.Unmarshal([]byte(bad), &back); err == nil {
			t.Errorf("%s read as %v", bad, back)
		}
	}
	if b, err := json.Marshal(ClassProbabilities{{"a", math.NaN()}}); err == nil {
		t.Errorf("NaN written as %s", b)
	}
}
