package data

// Label names as data: the order of a data set's classes (a class's id is its place in the
// order), the bounds on them, and IMDB's targets (what its reviews are labelled with).

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/sentibench/sentibench/internal/progress"
)

// MaxClasses bounds the classes of a data set: more distinct labels than this is taken for a
// wrong label column (an id or a text, say), not for a classification task.
const MaxClasses = 1000

// positiveNames are the names of binary data's positive class, compared case-insensitively:
// it becomes class 1, the other class 0.
var positiveNames = []string{"pos", "positive", "1", "true"}

// IMDB's targets (Options.Target): what the reviews of an IMDB data set are labelled with.
const (
	// TargetSentiment labels a review neg or pos by its folder (the recipe; "" is the same).
	TargetSentiment = "sentiment"
	// TargetRating labels a review with its star rating, from its file name <id>_<rating>.txt:
	// 8 classes, "1" to "4" and "7" to "10" (IMDB has no 5 or 6).
	TargetRating = "rating"
	// TargetRating4 labels a review with one of four levels of its rating: "1-2", "3-4", "7-8"
	// and "9-10".
	TargetRating4 = "rating4"
)

// ErrTargetNeedsIMDB is the error (wrapped) of a rating target for data that are not in the
// IMDB layout.
var ErrTargetNeedsIMDB = errors.New("a rating target is for IMDB data")

// Targets lists the targets, the recipe's first.
func Targets() []string { return []string{TargetSentiment, TargetRating, TargetRating4} }

// rating4Levels are TargetRating4's classes in order, with the mean rating of each level (its
// value for the mean absolute error, in stars).
var rating4Levels = []ratingLevel{{"1-2", 1, 2}, {"3-4", 3, 4}, {"7-8", 7, 8}, {"9-10", 9, 10}}

// ratingLevel is a class of ratings low to top.
type ratingLevel struct {
	name     string
	low, top int
}

// targetLabel is the label of a review with the given rating under target (ok false when the
// target has no class for the rating).
func targetLabel(target string, rating int) (string, bool) {
	switch target {
	case TargetRating:
		if (rating >= 1 && rating <= 4) || (rating >= 7 && rating <= 10) {
			return strconv.Itoa(rating), true
		}
	case TargetRating4:
		for _, l := range rating4Levels {
			if rating >= l.low && rating <= l.top {
				return l.name, true
			}
		}
	}
	return "", false
}

// applyTarget returns the source with the reviews of an IMDB source relabelled by their
// ratings (TargetRating, TargetRating4); src is left as it is. The folders, and with them the
// examples' order and the split, stay those of the sentiment labels, so that a run on any
// target sees the same reviews in each part. Data that are not in the IMDB layout carry their
// own labels: a rating target is an error for them, unless asGiven (evaluation maps their
// labels to the run's by name).
func applyTarget(src *source, target string, asGiven bool) (*source, error) {
	switch target {
	case "", TargetSentiment:
		return src, nil
	case TargetRating, TargetRating4:
	default:
		return nil, fmt.Errorf("unknown target %q (want %s)", target, orList(Targets()))
	}
	if !src.imdb {
		if asGiven {
			return src, nil
		}
		return nil, fmt.Errorf("%s: %w (the ratings in its file names); the classes of own data are its labels", src.name, ErrTargetNeedsIMDB)
	}
	out := *src
	out.folders = slices.Clone(src.folders)
	for f := range out.folders {
		fo := &out.folders[f]
		if fo.part == "unsup" {
			continue
		}
		fo.items = slices.Clone(fo.items)
		for i := range fo.items {
			it := &fo.items[i]
			label, ok := targetLabel(target, it.rating)
			if !ok {
				return nil, fmt.Errorf("%s: %s: rating %d has no class of the target %s (want a file name <id>_<rating>.txt with a rating 1-4 or 7-10)", src.name, it.name, it.rating, target)
			}
			it.label = label
		}
	}
	return &out, nil
}

// UnknownLabelsError is a data set with labels outside the classes it was asked to have
// (Options.Labels): the --labels of a training run, or a trained run's classes when it is
// evaluated on other data.
type UnknownLabelsError struct {
	// Source is the data set; Unknown its labels that Classes lack, in byte-wise order.
	Source  string
	Unknown []string
	Classes []string
}

func (e *UnknownLabelsError) Error() string {
	return fmt.Sprintf("%s has labels that are not among the classes %s: %s", e.Source, quoteList(e.Classes), quoteList(e.Unknown))
}

// AbsentLabelsError is a class asked for (Options.Labels) of which a data set to train on has no
// example.
type AbsentLabelsError struct {
	Source  string
	Absent  []string
	Classes []string
}

func (e *AbsentLabelsError) Error() string {
	return fmt.Sprintf("%s has no example of the class(es) %s (the classes asked for: %s; the data's labels: the others)",
		e.Source, quoteList(e.Absent), quoteList(e.Classes))
}

// CheckLabelList checks a list of class names as given (Options.Labels, --labels): at least
// two, none empty, none twice, at most MaxClasses.
func CheckLabelList(names []string) error {
	switch {
	case len(names) < 2:
		return fmt.Errorf("%d class name(s) %s: a classifier needs at least two", len(names), quoteList(names))
	case len(names) > MaxClasses:
		return fmt.Errorf("%s class names, more than the %s classes a data set may have", progress.FormatCount(int64(len(names))), progress.FormatCount(MaxClasses))
	}
	seen := make(map[string]bool, len(names))
	for i, n := range names {
		if n == "" {
			return fmt.Errorf("class name %d of %s is empty", i+1, quoteList(names))
		}
		if seen[n] {
			return fmt.Errorf("the class %q is named twice", n)
		}
		seen[n] = true
	}
	return nil
}

// OrderLabels returns the classes of a data set in id order, for the distinct labels found in
// it (in any order) and the classes asked for (given, may be empty):
//   - given, when not empty: every label found must be one of them (an *UnknownLabelsError
//     otherwise), and, unless allowAbsent, each must have been found (an *AbsentLabelsError);
//   - else, when every label is a number: ascending numeric order (0 before 1, 2 before 10);
//   - else byte-wise order; and two classes must include one positive class name (pos,
//     positive, 1, true, in any case), which goes second: other binary data must be given
//     their order.
//
// source names the data set in the errors.
func OrderLabels(source string, found, given []string, allowAbsent bool) ([]string, error) {
	if len(found) > MaxClasses {
		return nil, fmt.Errorf("%s: %s distinct labels, more than the %s classes a data set may have (is the label column the right one?)",
			source, progress.FormatCount(int64(len(found))), progress.FormatCount(MaxClasses))
	}
	if slices.Contains(found, "") {
		return nil, fmt.Errorf("%s: an example has an empty label", source)
	}
	if len(given) > 0 {
		if err := CheckLabelList(given); err != nil {
			return nil, fmt.Errorf("%s: %w", source, err)
		}
		var unknown, absent []string
		for _, l := range found {
			if !slices.Contains(given, l) {
				unknown = append(unknown, l)
			}
		}
		for _, g := range given {
			if !slices.Contains(found, g) {
				absent = append(absent, g)
			}
		}
		if len(unknown) > 0 {
			slices.Sort(unknown)
			return nil, &UnknownLabelsError{Source: source, Unknown: unknown, Classes: slices.Clone(given)}
		}
		if len(absent) > 0 && !allowAbsent {
			return nil, &AbsentLabelsError{Source: source, Absent: absent, Classes: slices.Clone(given)}
		}
		return slices.Clone(given), nil
	}
	classes := slices.Clone(found)
	if len(classes) < 2 {
		return nil, fmt.Errorf("%s: found %d label(s) %s; a classifier needs at least two", source, len(classes), quoteList(classes))
	}
	if values, ok := numbers(classes); ok {
		idx := make([]int, len(classes))
		for i := range idx {
			idx[i] = i
		}
		slices.SortFunc(idx, func(a, b int) int {
			return cmp.Or(cmp.Compare(values[a], values[b]), strings.Compare(classes[a], classes[b]))
		})
		sorted := make([]string, len(classes))
		for i, k := range idx {
			sorted[i] = classes[k]
		}
		return sorted, nil
	}
	slices.Sort(classes)
	if len(classes) == 2 {
		first, second := IsPositiveName(classes[0]), IsPositiveName(classes[1])
		if first == second {
			which := "neither is"
			if first {
				which = "both are"
			}
			return nil, fmt.Errorf("%s: two labels, %q and %q, and %s a positive class name (%s, in any case): name the order, the negative class first, with --labels (e.g. --labels %s,%s)",
				source, classes[0], classes[1], which, strings.Join(positiveNames, ", "), classes[0], classes[1])
		}
		if first {
			classes[0], classes[1] = classes[1], classes[0]
		}
	}
	return classes, nil
}

// IsPositiveName reports whether a label names binary data's positive class: pos, positive, 1
// or true, in any case.
func IsPositiveName(s string) bool {
	for _, p := range positiveNames {
		if strings.EqualFold(s, p) {
			return true
		}
	}
	return false
}

// numbers parses every name as a finite number (ok false when one is not).
func numbers(names []string) ([]float64, bool) {
	values := make([]float64, len(names))
	for i, n := range names {
		v, err := strconv.ParseFloat(strings.TrimSpace(n), 64)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, false
		}
		values[i] = v
	}
	return values, true
}

// ClassValues returns the numbers that the classes stand for when they are ordinal, for the
// mean absolute error of a prediction: each class's number when every class is a number (a
// star rating, say), the mean rating of each level for TargetRating4's classes; nil otherwise.
func ClassValues(classes []string) []float64 {
	if v, ok := numbers(classes); ok {
		return v
	}
	values := make([]float64, len(classes))
	for i, c := range classes {
		k := slices.IndexFunc(rating4Levels, func(l ratingLevel) bool { return l.name == c })
		if k < 0 {
			return nil
		}
		values[i] = float64(rating4Levels[k].low+rating4Levels[k].top) / 2
	}
	return values
}

// quoteList quotes names and joins them with commas.
func quoteList(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = strconv.Quote(n)
	}
	return strings.Join(q, ", ")
}

// orList joins words as "a, b or c".
func orList(words []string) string {
	if len(words) < 2 {
		return strings.Join(words, "")
	}
	return strings.Join(words[:len(words)-1], ", ") + " or " + words[len(words)-1]
}
