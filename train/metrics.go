package train

import (
	"fmt"
	"math"
	"strings"
)

// Metrics are the figures of one pass over a split: the mean per-example loss, accuracy, and
// per-class precision, recall and F1 with the confusion matrix.
type Metrics struct {
	N    int     `json:"n"`
	Loss float64 `json:"loss"`
	Acc  float64 `json:"acc"`
	// Confusion[i][j] counts the examples of true class i predicted as class j.
	Confusion [][]int `json:"confusion"`
	// Precision, Recall and F1 are per class; for binary data the figures of class 1 (the
	// positive class) are the usual single numbers.
	Precision []float64 `json:"precision"`
	Recall    []float64 `json:"recall"`
	F1        []float64 `json:"f1"`
}

// Tally accumulates examples into Metrics.
type Tally struct {
	classes   int
	lossSum   float64
	n         int
	correct   int
	confusion [][]int
}

// NewTally starts counting for a problem with the given number of classes (2 for binary).
func NewTally(classes int) *Tally {
	c := make([][]int, classes)
	for i := range c {
		c[i] = make([]int, classes)
	}
	return &Tally{classes: classes, confusion: c}
}

// Add counts one example: its loss, true class and predicted class.
func (t *Tally) Add(loss float64, truth, pred int) {
	t.lossSum += loss
	t.n++
	if truth == pred {
		t.correct++
	}
	if truth >= 0 && truth < t.classes && pred >= 0 && pred < t.classes {
		t.confusion[truth][pred]++
	}
}

// AddBatch counts a batch of binary examples from their logits, labels (0 or 1) and per-example
// losses: the prediction is 1 when the logit is above 0.
func (t *Tally) AddBatch(logits, labels []float32, losses []float64) {
	for i, z := range logits {
		pred := 0
		if z > 0 {
			pred = 1
		}
		t.Add(losses[i], int(labels[i]), pred)
	}
}

// N is the number of examples counted.
func (t *Tally) N() int { return t.n }

// Metrics returns the figures so far.
func (t *Tally) Metrics() Metrics {
	m := Metrics{N: t.n, Confusion: t.confusion}
	if t.n > 0 {
		m.Loss = t.lossSum / float64(t.n)
		m.Acc = float64(t.correct) / float64(t.n)
	}
	m.Precision = make([]float64, t.classes)
	m.Recall = make([]float64, t.classes)
	m.F1 = make([]float64, t.classes)
	for c := 0; c < t.classes; c++ {
		tp := t.confusion[c][c]
		var predicted, actual int
		for k := 0; k < t.classes; k++ {
			predicted += t.confusion[k][c]
			actual += t.confusion[c][k]
		}
		m.Precision[c] = ratio(tp, predicted)
		m.Recall[c] = ratio(tp, actual)
		if p, r := m.Precision[c], m.Recall[c]; p+r > 0 {
			m.F1[c] = 2 * p * r / (p + r)
		}
	}
	return m
}

func ratio(a, b int) float64 {
	if b == 0 {
		return math.NaN()
	}
	return float64(a) / float64(b)
}

// Format writes the metrics as a small report, naming the classes.
func (m Metrics) Format(classNames []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Examples: %d | Loss: %.4f | Acc: %.2f%%\n", m.N, m.Loss, 100*m.Acc)
	name := func(i int) string {
		if i < len(classNames) {
			return classNames[i]
		}
		return fmt.Sprint(i)
	}
	w := 9
	for i := range m.Confusion {
		w = max(w, len(name(i))+2)
	}
	fmt.Fprintf(&b, "%-*s %9s %9s %9s\n", w, "class", "precision", "recall", "f1")
	for i := range m.Confusion {
		fmt.Fprintf(&b, "%-*s %9.4f %9.4f %9.4f\n", w, name(i), m.Precision[i], m.Recall[i], m.F1[i])
	}
	fmt.Fprintf(&b, "Confusion matrix (rows: true class, columns: predicted)\n%-*s", w, "")
	for j := range m.Confusion {
		fmt.Fprintf(&b, " %9s", name(j))
	}
	b.WriteString("\n")
	for i, row := range m.Confusion {
		fmt.Fprintf(&b, "%-*s", w, name(i))
		for _, c := range row {
			fmt.Fprintf(&b, " %9d", c)
		}
		b.WriteString("\n")
	}
	return b.String()
}

// SentimentLabel names a positive-class probability with the seed application's six labels.
func SentimentLabel(p float64) string {
	switch {
	case p > 0.9:
		return "Extremely Positive"
	case p > 0.6:
		return "Positive"
	case p > 0.5:
		return "Somewhat Positive"
	case p > 0.4:
		return "Somewhat Negative"
	case p > 0.1:
		return "Negative"
	}
	return "Extremely Negative"
}
