package train

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"

	"github.com/sentibench/sentibench/data"
	"github.com/sentibench/sentibench/nn"
)

// Classification is a text's class as a trained model gives it: the predicted class and the
// probability of every class.
type Classification struct {
	// Class is the predicted class's id (nn.Predicted: a binary model's class 1 when its logit
	// is above 0, else the class of the largest logit); Label is its name.
	Class int
	Label string
	// Probabilities are every class's, in the order of the run's classes (Predictor.Classes);
	// they sum to 1. A binary model's are [1-p, p], p the probability Predict gives.
	Probabilities []float64
}

// Verdict names a classification in one label and one probability, as predict and serve show
// it (their "label" and "probability"), for a run of the given classes:
//   - a binary sentiment run (SentimentClasses: IMDB's neg, pos): the positive class's
//     probability and its SentimentLabel, one of the six levels;
//   - another binary run: the probability of class 1 and the predicted class's name;
//   - a run of K > 2 classes: the predicted class's probability and name.
func (c Classification) Verdict(classes []string) (label string, probability float64) {
	if len(c.Probabilities) == 2 {
		if SentimentClasses(classes) {
			return SentimentLabel(c.Probabilities[1]), c.Probabilities[1]
		}
		return c.Label, c.Probabilities[1]
	}
	return c.Label, c.Probabilities[c.Class]
}

// SentimentClasses reports whether a run's classes are binary sentiment's: two classes, the
// second a positive class name (data.IsPositiveName: pos, positive, 1 or true in any case), as
// IMDB's neg, pos. Only such runs name a probability with the six sentiment levels
// (SentimentLabel); a run of good/poor, spam/ham or three classes is never called "Extremely
// Positive".
func SentimentClasses(classes []string) bool {
	return len(classes) == 2 && data.IsPositiveName(classes[1]) && !data.IsPositiveName(classes[0])
}

// runClasses are a run's class names in id order: its config.json's labels, or for a run that
// names none, neg and pos for a binary model (the first runs were IMDB's) and "0" to "K-1" for
// a model of K classes.
func runClasses(info RunInfo) []string {
	if len(info.Labels) > 0 {
		return info.Labels
	}
	if info.Model.Outputs <= 1 {
		return []string{"neg", "pos"}
	}
	names := make([]string, info.Model.Outputs)
	for i := range names {
		names[i] = strconv.Itoa(i)
	}
	return names
}

// Classify returns each text's class and the probability of every class, in the order of
// texts; binary and K-class runs alike. A text without a single token is an error naming its
// index, as in Logits.
func (p *Predictor) Classify(texts []string) ([]Classification, error) {
	logits, err := p.Logits(texts)
	if err != nil {
		return nil, err
	}
	classes := p.Classes()
	k := p.Info.Model.Outputs
	out := make([]Classification, len(texts))
	for i := range out {
		z := logits[i*k : (i+1)*k]
		c := nn.Predicted(z)
		out[i] = Classification{Class: c, Label: classes[c], Probabilities: nn.Probabilities(nil, z)}
	}
	return out, nil
}

// ClassProbabilities are a text's probability of every class by name, in the run's class order.
// In JSON they are one object, {"neg": 0.07, "pos": 0.93}, its keys in that order.
type ClassProbabilities []ClassProbability

// ClassProbability is one class's probability.
type ClassProbability struct {
	Class       string
	Probability float64
}

// ByClass pairs a classification's probabilities with the classes' names.
func (c Classification) ByClass(classes []string) ClassProbabilities {
	out := make(ClassProbabilities, len(c.Probabilities))
	for i, p := range c.Probabilities {
		out[i] = ClassProbability{Class: classes[i], Probability: p}
	}
	return out
}

// MarshalJSON implements json.Marshaler: an object of the probabilities by class name, in order.
func (cp ClassProbabilities) MarshalJSON() ([]byte, error) {
	b := []byte{'{'}
	for i, c := range cp {
		if i > 0 {
			b = append(b, ',')
		}
		name, err := json.Marshal(c.Class)
		if err != nil {
			return nil, err
		}
		if math.IsNaN(c.Probability) || math.IsInf(c.Probability, 0) {
			return nil, fmt.Errorf("class %s: probability %v", name, c.Probability)
		}
		b = append(append(b, name...), ':')
		b = strconv.AppendFloat(b, c.Probability, 'g', -1, 64)
	}
	return append(b, '}'), nil
}

// UnmarshalJSON implements json.Unmarshaler: the object MarshalJSON writes, its keys' order kept.
func (cp *ClassProbabilities) UnmarshalJSON(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return fmt.Errorf("class probabilities: want an object of probabilities by class name, got %s", b)
	}
	out := ClassProbabilities{}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return fmt.Errorf("class probabilities: %w", err)
		}
		var p float64
		if err := dec.Decode(&p); err != nil {
			return fmt.Errorf("class probabilities: class %q: %w", t, err)
		}
		out = append(out, ClassProbability{Class: t.(string), Probability: p})
	}
	*cp = out
	return nil
}
