package train

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/sentibench/sentibench/nn"
)

// Metrics are the figures of one pass over a split: the mean per-example loss, accuracy, and
// the class figures (per-class and macro precision, recall and F1, the confusion matrix, the
// mean absolute error of ordinal classes).
type Metrics struct {
	N    int     `json:"n"`
	Loss float64 `json:"loss"`
	Acc  float64 `json:"acc"`
	ClassMetrics
}

// ClassMetrics are a pass's figures by class. The run log records them for runs of more than
// two classes (EpochRecord.ValidMetrics, FinalRecord.TestMetrics).
type ClassMetrics struct {
	// Confusion[i][j] counts the examples of true class i predicted as class j.
	Confusion [][]int `json:"confusion"`
	// Precision, Recall and F1 are per class; for binary data the figures of class 1 (the
	// positive class) are the usual single numbers. A precision of a class never predicted, or
	// a recall of a class absent from the split, is NaN (null in JSON); its F1 is 0.
	Precision Ratios    `json:"precision"`
	Recall    Ratios    `json:"recall"`
	F1        []float64 `json:"f1"`
	// MacroPrecision, MacroRecall and MacroF1 are the means over the classes that occur in the
	// split or in the predictions, an undefined figure counting 0 (scikit-learn's
	// average="macro" with zero_division=0).
	MacroPrecision float64 `json:"macro_precision"`
	MacroRecall    float64 `json:"macro_recall"`
	MacroF1        float64 `json:"macro_f1"`
	// MAE, for ordinal classes (data.ClassValues: numbers, rating levels), is the mean
	// absolute difference between the predicted class's value and the true class's; nil for
	// other classes.
	MAE *float64 `json:"mae,omitempty"`
}

// Ratios are figures that may be undefined (NaN), written as null in JSON and read back as NaN.
type Ratios []float64

// MarshalJSON implements json.Marshaler: NaN as null.
func (r Ratios) MarshalJSON() ([]byte, error) {
	if r == nil {
		return []byte("null"), nil
	}
	b := []byte{'['}
	for i, v := range r {
		if i > 0 {
			b = append(b, ',')
		}
		if math.IsNaN(v) || math.IsInf(v, 0) {
			b = append(b, "null"...)
			continue
		}
		b = strconv.AppendFloat(b, v, 'g', -1, 64)
	}
	return append(b, ']'), nil
}

// UnmarshalJSON implements json.Unmarshaler: null as NaN.
func (r *Ratios) UnmarshalJSON(b []byte) error {
	var vs []*float64
	if err := json.Unmarshal(b, &vs); err != nil {
		return err
	}
	if vs == nil {
		*r = nil
		return nil
	}
	*r = make(Ratios, len(vs))
	for i, v := range vs {
		(*r)[i] = math.NaN()
		if v != nil {
			(*r)[i] = *v
		}
	}
	return nil
}

// Tally accumulates examples into Metrics.
type Tally struct {
	classes   int
	values    []float64 // the classes' values for the MAE; nil when they are not ordinal
	lossSum   float64
	n         int
	correct   int
	confusion [][]int
}

// NewTally starts counting for a problem with the given number of classes (2 for binary).
// values, when not nil, are the classes' values (data.ClassValues), for the mean absolute error.
func NewTally(classes int, values []float64) *Tally {
	c := make([][]int, classes)
	for i := range c {
		c[i] = make([]int, classes)
	}
	if len(values) != classes {
		values = nil
	}
	return &Tally{classes: classes, values: values, confusion: c}
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

// AddBatch counts a batch from its logits, labels (class ids) and per-example losses. The
// logits are one per example for a binary model (class 1 when above 0), else a row of K per
// example (the class of the largest); see nn.Predicted.
func (t *Tally) AddBatch(logits, labels []float32, losses []float64) {
	k := 1
	if len(labels) > 0 {
		k = len(logits) / len(labels)
	}
	for i := range labels {
		t.Add(losses[i], int(labels[i]), nn.Predicted(logits[i*k:(i+1)*k]))
	}
}

// N is the number of examples counted.
func (t *Tally) N() int { return t.n }

// Metrics returns the figures so far.
func (t *Tally) Metrics() Metrics {
	m := Metrics{N: t.n}
	if t.n > 0 {
		m.Loss = t.lossSum / float64(t.n)
		m.Acc = float64(t.correct) / float64(t.n)
	}
	m.ClassMetrics = classMetrics(t.confusion, t.values)
	return m
}

// classMetrics computes the class figures of a confusion matrix.
func classMetrics(confusion [][]int, values []float64) ClassMetrics {
	k := len(confusion)
	m := ClassMetrics{Confusion: confusion, Precision: make(Ratios, k), Recall: make(Ratios, k), F1: make([]float64, k)}
	var occurring int
	var absErr float64
	var total int
	for c := 0; c < k; c++ {
		tp := confusion[c][c]
		var predicted, actual int
		for j := 0; j < k; j++ {
			predicted += confusion[j][c]
			actual += confusion[c][j]
			if values != nil {
				absErr += float64(confusion[c][j]) * math.Abs(values[c]-values[j])
			}
		}
		total += actual
		m.Precision[c] = ratio(tp, predicted)
		m.Recall[c] = ratio(tp, actual)
		if p, r := m.Precision[c], m.Recall[c]; p+r > 0 {
			m.F1[c] = 2 * p * r / (p + r)
		}
		if predicted+actual > 0 {
			occurring++
			m.MacroPrecision += zeroIfNaN(m.Precision[c])
			m.MacroRecall += zeroIfNaN(m.Recall[c])
			m.MacroF1 += m.F1[c]
		}
	}
	if occurring > 0 {
		m.MacroPrecision /= float64(occurring)
		m.MacroRecall /= float64(occurring)
		m.MacroF1 /= float64(occurring)
	}
	if values != nil && total > 0 {
		mae := absErr / float64(total)
		m.MAE = &mae
	}
	return m
}

func zeroIfNaN(v float64) float64 {
	if math.IsNaN(v) {
		return 0
	}
	return v
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
	fmt.Fprintf(&b, "Examples: %d | Loss: %.4f | Acc: %.2f%% | Macro-F1: %.4f", m.N, m.Loss, 100*m.Acc, m.MacroF1)
	if m.MAE != nil {
		fmt.Fprintf(&b, " | MAE: %.4f", *m.MAE)
	}
	b.WriteString("\n")
	name := func(i int) string {
		if i < len(classNames) {
			return classNames[i]
		}
		return fmt.Sprint(i)
	}
	w := len("macro avg") + 2
	for i := range m.Confusion {
		w = max(w, len(name(i))+2)
	}
	fmt.Fprintf(&b, "%-*s %9s %9s %9s\n", w, "class", "precision", "recall", "f1")
	for i := range m.Confusion {
		fmt.Fprintf(&b, "%-*s %9.4f %9.4f %9.4f\n", w, name(i), m.Precision[i], m.Recall[i], m.F1[i])
	}
	fmt.Fprintf(&b, "%-*s %9.4f %9.4f %9.4f\n", w, "macro avg", m.MacroPrecision, m.MacroRecall, m.MacroF1)
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
