package train

import (
	"math"
	"slices"
	"strings"
	"testing"
)

func TestTallyBinary(t *testing.T) {
	tl := NewTally(2, nil)
	// truth, logit: 2 TP, 1 FN, 1 FP, 3 TN
	logits := []float32{2, 1, -1, 0.5, -2, -3, -0.1}
	labels := []float32{1, 1, 1, 0, 0, 0, 0}
	losses := []float64{0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7}
	tl.AddBatch(logits, labels, losses)
	m := tl.Metrics()
	if m.N != 7 || math.Abs(m.Loss-0.4) > 1e-12 || math.Abs(m.Acc-5.0/7) > 1e-12 {
		t.Fatalf("N %d loss %v acc %v", m.N, m.Loss, m.Acc)
	}
	if m.Confusion[1][1] != 2 || m.Confusion[1][0] != 1 || m.Confusion[0][1] != 1 || m.Confusion[0][0] != 3 {
		t.Fatalf("confusion %v", m.Confusion)
	}
	if math.Abs(m.Precision[1]-2.0/3) > 1e-12 || math.Abs(m.Recall[1]-2.0/3) > 1e-12 || math.Abs(m.F1[1]-2.0/3) > 1e-12 {
		t.Fatalf("p %v r %v f1 %v", m.Precision, m.Recall, m.F1)
	}
	if math.Abs(m.Precision[0]-0.75) > 1e-12 || math.Abs(m.Recall[0]-0.75) > 1e-12 {
		t.Fatalf("class 0: p %v r %v", m.Precision[0], m.Recall[0])
	}
	out := m.Format([]string{"neg", "pos"})
	for _, want := range []string{"Acc: 71.43%", "neg", "pos", "Confusion matrix"} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
}

func TestSentimentLabel(t *testing.T) {
	cases := map[float64]string{0.95: "Extremely Positive", 0.9: "Positive", 0.61: "Positive", 0.6: "Somewhat Positive",
		0.5: "Somewhat Negative", 0.41: "Somewhat Negative", 0.4: "Negative", 0.11: "Negative", 0.1: "Extremely Negative", 0: "Extremely Negative"}
	for p, want := range cases {
		if got := SentimentLabel(p); got != want {
			t.Errorf("SentimentLabel(%v) = %q, want %q", p, got, want)
		}
	}
}

// TestTallyKClass: K logits per example (the largest wins), the macro figures over the classes
// that occur (scikit-learn's average="macro", zero_division=0: a class neither present nor
// predicted does not count), and the MAE of ordinal classes.
func TestTallyKClass(t *testing.T) {
	// (truth, predicted): (0,0) (0,1) (1,1) (1,1) (2,0) (2,2); class 3 neither.
	truth := []float32{0, 0, 1, 1, 2, 2}
	pred := []int{0, 1, 1, 1, 0, 2}
	logits := make([]float32, 0, 4*len(pred))
	for _, p := range pred {
		row := []float32{-1, 0.5, 0.2, -3}
		row[p] = 2
		logits = append(logits, row...)
	}
	losses := []float64{1, 1, 1, 1, 1, 1}
	for _, ordinal := range []bool{false, true} {
		var values []float64
		if ordinal {
			values = []float64{1, 2, 3, 4}
		}
		tl := NewTally(4, values)
		tl.AddBatch(logits, truth, losses)
		m := tl.Metrics()
		want := [][]int{{1, 1, 0, 0}, {0, 2, 0, 0}, {1, 0, 1, 0}, {0, 0, 0, 0}}
		for i := range want {
			if !slices.Equal(m.Confusion[i], want[i]) {
				t.Fatalf("confusion %v, want %v", m.Confusion, want)
			}
		}
		near := func(a, b float64) bool { return math.Abs(a-b) < 1e-12 }
		if !near(m.Acc, 4.0/6) || !near(m.Precision[1], 2.0/3) || !near(m.Recall[2], 0.5) || !near(m.F1[1], 0.8) || !math.IsNaN(m.Precision[3]) || m.F1[3] != 0 {
			t.Fatalf("acc %v p %v r %v f1 %v", m.Acc, m.Precision, m.Recall, m.F1)
		}
		if !near(m.MacroPrecision, (0.5+2.0/3+1)/3) || !near(m.MacroRecall, 2.0/3) || !near(m.MacroF1, (0.5+0.8+2.0/3)/3) {
			t.Fatalf("macro p %v r %v f1 %v", m.MacroPrecision, m.MacroRecall, m.MacroF1)
		}
		if ordinal != (m.MAE != nil) || ordinal && !near(*m.MAE, 0.5) { // |1-2| + |3-1| over 6
			t.Fatalf("ordinal %v: MAE %v", ordinal, m.MAE)
		}
		out := m.Format([]string{"1", "2", "3", "4"})
		for _, w := range []string{"Macro-F1: 0.6556", "macro avg"} {
			if !strings.Contains(out, w) {
				t.Errorf("report lacks %q:\n%s", w, out)
			}
		}
		if strings.Contains(out, "MAE: 0.5000") != ordinal {
			t.Errorf("ordinal %v, report:\n%s", ordinal, out)
		}
	}
}
