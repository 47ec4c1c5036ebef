package train

import (
	"math"
	"strings"
	"testing"
)

func TestTallyBinary(t *testing.T) {
	tl := NewTally(2)
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
