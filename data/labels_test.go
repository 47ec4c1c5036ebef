package data

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/sentibench/sentibench/internal/testutil"
)

// TestOrderLabels: the natural order of the classes: numbers numerically, else byte-wise, and
// binary data's positive class second.
func TestOrderLabels(t *testing.T) {
	for _, c := range []struct {
		found, want []string
	}{
		{[]string{"pos", "neg"}, []string{"neg", "pos"}},                               // IMDB
		{[]string{"1", "0"}, []string{"0", "1"}},                                       // 0/1
		{[]string{"10", "2", "1", "4"}, []string{"1", "2", "4", "10"}},                 // numbers, not bytes
		{[]string{"1", "-1"}, []string{"-1", "1"}},                                     // numbers
		{[]string{"2", "1"}, []string{"1", "2"}},                                       // numbers: the larger second
		{[]string{"2.5", "0.5", "1e1"}, []string{"0.5", "2.5", "1e1"}},                 // numbers
		{[]string{"Positive", "negative"}, []string{"negative", "Positive"}},           // any case
		{[]string{"POS", "bad"}, []string{"bad", "POS"}},                               // positive second, not byte-wise
		{[]string{"true", "false"}, []string{"false", "true"}},                         // JSON bools
		{[]string{"1", "meh"}, []string{"meh", "1"}},                                   // "1" among names
		{[]string{"sports", "arts", "news"}, []string{"arts", "news", "sports"}},       // byte-wise
		{[]string{"b", "B", "a"}, []string{"B", "a", "b"}},                             // byte-wise
		{[]string{"9-10", "1-2", "7-8", "3-4"}, []string{"1-2", "3-4", "7-8", "9-10"}}, // rating4's levels
		{[]string{"NaN", "1", "2"}, []string{"1", "2", "NaN"}},                         // NaN is no number
	} {
		got, err := OrderLabels("d", c.found, nil, false)
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("OrderLabels(%q) = %q, %v; want %q", c.found, got, err, c.want)
		}
	}
}

// TestBinaryWithoutPositiveClass: good/poor-style data must be given their order; the error
// says how.
func TestBinaryWithoutPositiveClass(t *testing.T) {
	path := writeFile(t, t.TempDir(), "gp.csv", []byte("text,label\ngreat film,good\nawful film,poor\nfine,good\nbad,poor\nnice,good\n"))
	_, err := Load(context.Background(), Options{Path: path, Seed: 1})
	for _, want := range []string{path, `"good"`, `"poor"`, "neither is a positive class", "--labels", "negative class first"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("good/poor without labels: %v; want it to say %q", err, want)
		}
	}
	c, err := Load(context.Background(), Options{Path: path, Seed: 1, Labels: []string{"poor", "good"}})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.Classes, []string{"poor", "good"}) {
		t.Fatalf("classes %q, want poor, good", c.Classes)
	}
	for _, e := range c.Examples {
		if want := map[bool]int{true: 1, false: 0}[strings.Contains(e.Text, "great") || e.Text == "fine" || e.Text == "nice"]; e.Label != want {
			t.Fatalf("%q labelled %d, want %d", e.Text, e.Label, want)
		}
	}
	if _, err := OrderLabels("d", []string{"pos", "true"}, nil, false); err == nil || !strings.Contains(err.Error(), "both are a positive class") {
		t.Fatalf("two positive names: %v", err)
	}
}

// threeClassCSV is a CSV of 3 classes, 30 rows.
func threeClassCSV(t *testing.T) string {
	var b strings.Builder
	b.WriteString("text,label\n")
	for i := 0; i < 30; i++ {
		fmt.Fprintf(&b, "review %d,%s\n", i, []string{"pos", "neg", "neutral"}[i%3])
	}
	return writeFile(t, t.TempDir(), "three.csv", []byte(b.String()))
}

// TestLabelsOrderGiven: Options.Labels sets the ids; the examples, their order and the split
// stay those of the natural order.
func TestLabelsOrderGiven(t *testing.T) {
	path := threeClassCSV(t)
	natural, err := Load(context.Background(), Options{Path: path, Seed: 5})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(natural.Classes, []string{"neg", "neutral", "pos"}) {
		t.Fatalf("natural order %q", natural.Classes)
	}
	given := []string{"pos", "neutral", "neg"}
	c, err := Load(context.Background(), Options{Path: path, Seed: 5, Labels: given})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.Classes, given) {
		t.Fatalf("classes %q, want %q", c.Classes, given)
	}
	if !slices.Equal(c.Train, natural.Train) || !slices.Equal(c.Valid, natural.Valid) || !slices.Equal(c.Test, natural.Test) {
		t.Fatal("naming the order changed the split")
	}
	for i, e := range c.Examples {
		n := natural.Examples[i]
		if e.Name != n.Name || e.Text != n.Text {
			t.Fatalf("example %d: %s, was %s", i, e.Name, n.Name)
		}
		if c.Classes[e.Label] != natural.Classes[n.Label] {
			t.Fatalf("%s: class %q, was %q", e.Name, c.Classes[e.Label], natural.Classes[n.Label])
		}
	}
}

// TestLabelsBadInput: each bad list or bad label set is an error naming the problem.
func TestLabelsBadInput(t *testing.T) {
	path := threeClassCSV(t)
	for _, c := range []struct {
		labels []string
		want   []string
	}{
		{[]string{"neg", "pos", "neg", "neutral"}, []string{`"neg" is named twice`}},
		{[]string{"neg", "", "pos", "neutral"}, []string{"class name 2", "is empty"}},
		{[]string{"neg"}, []string{"at least two"}},
		{[]string{"neg", "pos"}, []string{"not among the classes", `"neutral"`}},
		{[]string{"neg", "neutral", "pos", "mixed"}, []string{"no example of the class", `"mixed"`}},
	} {
		_, err := Load(context.Background(), Options{Path: path, Seed: 1, Labels: c.labels})
		for _, want := range append(c.want, path) {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("labels %q: %v; want it to say %q", c.labels, err, want)
			}
		}
	}
	_, err := Load(context.Background(), Options{Path: path, Seed: 1, Labels: []string{"neg", "pos", "x"}})
	var unknown *UnknownLabelsError
	if !errors.As(err, &unknown) || !slices.Equal(unknown.Unknown, []string{"neutral"}) || !slices.Equal(unknown.Classes, []string{"neg", "pos", "x"}) {
		t.Errorf("unknown labels: %#v", err)
	}
	_, err = Load(context.Background(), Options{Path: path, Seed: 1, Labels: []string{"neg", "neutral", "pos", "x", "y"}})
	var absent *AbsentLabelsError
	if !errors.As(err, &absent) || !slices.Equal(absent.Absent, []string{"x", "y"}) {
		t.Errorf("absent classes: %#v", err)
	}
	// Evaluation data (AsGiven) need not hold every class.
	c, err := Load(context.Background(), Options{Path: path, AsGiven: true, Labels: []string{"x", "neg", "neutral", "pos"}})
	if err != nil || !slices.Equal(c.Classes, []string{"x", "neg", "neutral", "pos"}) || c.Examples[0].Label != 1 {
		t.Errorf("as given, a class absent: %v, %q", err, c.Classes)
	}
}

// TestLabelBounds: one class, an empty label, and more classes than MaxClasses.
func TestLabelBounds(t *testing.T) {
	dir := t.TempDir()
	var many strings.Builder
	many.WriteString("text,label\n")
	for i := 0; i < 10000; i++ {
		fmt.Fprintf(&many, "text %d,id%d\n", i, i)
	}
	for _, c := range []struct {
		name, data string
		want       []string
	}{
		{"one.csv", "text,label\na,x\nb,x\nc,x\n", []string{"one.csv", `found 1 label(s) "x"`, "at least two"}},
		{"empty.jsonl", `{"text": "a", "label": "x"}` + "\n" + `{"text": "b", "label": ""}` + "\n", []string{"empty.jsonl:2", "empty label"}},
		{"many.csv", many.String(), []string{"many.csv", "10,000 distinct labels", "more than the 1,000 classes"}},
	} {
		path := writeFile(t, dir, c.name, []byte(c.data))
		_, err := Load(context.Background(), Options{Path: path, Seed: 1})
		for _, want := range c.want {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("%s: %v; want it to say %q", c.name, err, want)
			}
		}
	}
	if _, err := OrderLabels("d", []string{"a", ""}, nil, false); err == nil || !strings.Contains(err.Error(), "empty label") {
		t.Errorf("an empty label found: %v", err)
	}
	names := make([]string, MaxClasses+1)
	for i := range names {
		names[i] = strconv.Itoa(i)
	}
	if err := CheckLabelList(names); err == nil || !strings.Contains(err.Error(), "1,001 class names, more than the 1,000") {
		t.Errorf("1,001 names given: %v", err)
	}
	if _, err := OrderLabels("d", names[:MaxClasses], nil, false); err != nil {
		t.Errorf("MaxClasses labels: %v", err)
	}
}

// TestTargets: IMDB's rating targets label the same reviews, in the same parts, by the
// ratings of their file names.
func TestTargets(t *testing.T) {
	sentiment, err := Load(context.Background(), Options{Path: SampleName, Seed: DefaultSeed})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		target  string
		classes []string
		values  []float64
		label   func(rating int) string
	}{
		{TargetRating, []string{"1", "2", "3", "4", "7", "8", "9", "10"}, []float64{1, 2, 3, 4, 7, 8, 9, 10}, strconv.Itoa},
		{TargetRating4, []string{"1-2", "3-4", "7-8", "9-10"}, []float64{1.5, 3.5, 7.5, 9.5}, func(r int) string {
			return map[int]string{1: "1-2", 2: "1-2", 3: "3-4", 4: "3-4", 7: "7-8", 8: "7-8", 9: "9-10", 10: "9-10"}[r]
		}},
	} {
		c2, err := Load(context.Background(), Options{Path: SampleName, Seed: DefaultSeed, Target: c.target})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(c2.Classes, c.classes) || !slices.Equal(ClassValues(c2.Classes), c.values) {
			t.Fatalf("%s: classes %q, values %v", c.target, c2.Classes, ClassValues(c2.Classes))
		}
		if !slices.Equal(c2.Train, sentiment.Train) || !slices.Equal(c2.Valid, sentiment.Valid) || !slices.Equal(c2.Test, sentiment.Test) || c2.RNG != sentiment.RNG {
			t.Fatalf("%s: not the sentiment run's split", c.target)
		}
		for i, e := range c2.Examples {
			if e.Name != sentiment.Examples[i].Name {
				t.Fatalf("%s: example %d is %s, was %s", c.target, i, e.Name, sentiment.Examples[i].Name)
			}
			if got := c2.Classes[e.Label]; got != c.label(e.Rating) {
				t.Fatalf("%s: %s (rating %d) labelled %q", c.target, e.Name, e.Rating, got)
			}
		}
	}
	// Own data carry their own labels.
	path := threeClassCSV(t)
	if _, err := Load(context.Background(), Options{Path: path, Target: TargetRating}); err == nil || !strings.Contains(err.Error(), "is for IMDB data") {
		t.Errorf("rating target on a CSV: %v", err)
	}
	if _, err := Load(context.Background(), Options{Path: path, Target: TargetRating, AsGiven: true}); err != nil {
		t.Errorf("rating target on a CSV, as given: %v", err)
	}
	if _, err := Load(context.Background(), Options{Path: SampleName, Target: "stars"}); err == nil || !strings.Contains(err.Error(), `unknown target "stars"`) {
		t.Errorf("unknown target: %v", err)
	}
	// A review without a rating in its file name.
	ms := append(smallIMDB(), member{"aclImdb/train/pos/77.txt", "no rating"})
	archive := writeFile(t, t.TempDir(), "a.tar.gz", makeTarGz(t, ms))
	if _, err := Load(context.Background(), Options{Path: archive, Target: TargetRating4}); err == nil || !strings.Contains(err.Error(), "train/pos/77.txt: rating 0") {
		t.Errorf("no rating: %v", err)
	}
}

// TestTargetsKeepFullSplit: on the real archive, each target's train, valid and test parts hold
// the reviews of the binary run's.
func TestTargetsKeepFullSplit(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	src := realIMDB(t, testutil.Shared(t, "data/imdb/aclImdb_v1_labelled.tar.gz"))
	binary, err := assemble(src, Options{Seed: DefaultSeed})
	if err != nil {
		t.Fatal(err)
	}
	names := func(c *Corpus, idx []int) []string {
		out := make([]string, len(idx))
		for i, k := range idx {
			out[i] = c.Examples[k].Name
		}
		return out
	}
	for _, target := range []string{TargetRating, TargetRating4} {
		c, err := assemble(src, Options{Seed: DefaultSeed, Target: target})
		if err != nil {
			t.Fatal(err)
		}
		for _, part := range []struct {
			name string
			a, b []int
		}{{"train", binary.Train, c.Train}, {"valid", binary.Valid, c.Valid}, {"test", binary.Test, c.Test}} {
			if !slices.Equal(names(binary, part.a), names(c, part.b)) {
				t.Errorf("%s: the %s part differs from the binary run's", target, part.name)
			}
		}
		if len(c.Train) != 17500 || len(c.Valid) != 7500 || len(c.Test) != 25000 {
			t.Errorf("%s: %d/%d/%d", target, len(c.Train), len(c.Valid), len(c.Test))
		}
	}
	// The source is shared by the tests: the targets must leave it as read.
	again, err := assemble(src, Options{Seed: DefaultSeed})
	if err != nil || !slices.Equal(again.Classes, []string{"neg", "pos"}) || !slices.Equal(again.Examples, binary.Examples) {
		t.Fatalf("the source changed: %v %q", err, again.Classes)
	}
}
