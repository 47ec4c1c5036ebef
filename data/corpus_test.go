package data

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sentibench/sentibench/internal/testutil"
)

type member struct{ name, body string }

// makeTarGz builds an archive from members, in the given order.
func makeTarGz(t testing.TB, members []member) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, m := range members {
		if err := tw.WriteHeader(&tar.Header{Name: m.name, Mode: 0o644, Size: int64(len(m.body)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		io.WriteString(tw, m.body)
	}
	tw.Close()
	zw.Close()
	return buf.Bytes()
}

// smallIMDB returns members of a tiny archive in the aclImdb layout, out of order, with
// reviews in the real files' format (one line, <br /> breaks, a C1 code point).
func smallIMDB() []member {
	var ms []member
	for _, part := range []string{"test", "train"} {
		for _, label := range []string{"pos", "neg"} {
			for _, id := range []int{10, 2, 1, 0, 11} {
				rating := 8
				if label == "neg" {
					rating = 3
				}
				body := fmt.Sprintf("Review %d of %s/%s.<br /><br />It\u0092s %s!", id, part, label, map[string]string{"pos": "GREAT", "neg": "awful"}[label])
				ms = append(ms, member{fmt.Sprintf("aclImdb/%s/%s/%d_%d.txt", part, label, id, rating), body})
			}
		}
	}
	ms = append(ms, member{"aclImdb/README", "readme"}, member{"aclImdb/train/labeledBow.feat", "0 1:2"},
		member{"aclImdb/train/unsup/0_0.txt", "unlabelled one"}, member{"aclImdb/train/unsup/1_0.txt", "unlabelled two"})
	return ms
}

func writeFile(t testing.TB, dir, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadSmallArchive(t *testing.T) {
	path := writeFile(t, t.TempDir(), "a.tar.gz", makeTarGz(t, smallIMDB()))
	c, err := Load(context.Background(), Options{Path: path, Seed: DefaultSeed})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.Classes, []string{"neg", "pos"}) || c.Format != "imdb-archive" {
		t.Fatalf("classes %v, format %s", c.Classes, c.Format)
	}
	var names []string
	for _, e := range c.Examples {
		names = append(names, e.Name)
	}
	// neg then pos, train then test, byte-wise name order ("0_3" < "10_3" < "11_3" < "1_3" < "2_3").
	want := []string{"train/neg/0_3.txt", "train/neg/10_3.txt", "train/neg/11_3.txt", "train/neg/1_3.txt", "train/neg/2_3.txt",
		"train/pos/0_8.txt", "train/pos/10_8.txt", "train/pos/11_8.txt", "train/pos/1_8.txt", "train/pos/2_8.txt",
		"test/neg/0_3.txt", "test/neg/10_3.txt", "test/neg/11_3.txt", "test/neg/1_3.txt", "test/neg/2_3.txt",
		"test/pos/0_8.txt", "test/pos/10_8.txt", "test/pos/11_8.txt", "test/pos/1_8.txt", "test/pos/2_8.txt"}
	if !slices.Equal(names, want) {
		t.Fatalf("order:\n%v\nwant\n%v", names, want)
	}
	e := c.Examples[5]
	if e.Label != 1 || e.Rating != 8 || e.Text != "Review 0 of train/pos.<br /><br />It\u0092s GREAT!" {
		t.Fatalf("example %+v", e)
	}
	// The split: SplitMix64(1234) shuffles the 10 train indices; the first 7 are train.
	order := []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}
	rng := NewSplitMix64(DefaultSeed)
	rng.Shuffle(10, func(i, j int) { order[i], order[j] = order[j], order[i] })
	if !slices.Equal(c.Train, order[:7]) || !slices.Equal(c.Valid, order[7:]) || c.RNG != *rng {
		t.Fatalf("split %v %v, want %v %v", c.Train, c.Valid, order[:7], order[7:])
	}
	if !slices.Equal(c.Test, []int{10, 11, 12, 13, 14, 15, 16, 17, 18, 19}) || len(c.Unsup) != 0 {
		t.Fatalf("test %v unsup %v", c.Test, c.Unsup)
	}

	// With the unlabelled reviews: appended after the rest; nothing else changes.
	u, err := Load(context.Background(), Options{Path: path, Seed: DefaultSeed, WithUnsup: true})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(u.Unsup, []int{20, 21}) || u.Examples[20].Label != NoLabel || u.Examples[21].Name != "train/unsup/1_0.txt" ||
		u.Examples[20].Rating != 0 || !slices.Equal(u.Train, c.Train) || u.RNG != c.RNG {
		t.Fatalf("unsup: %v %+v", u.Unsup, u.Examples[20:])
	}
}

func TestLoadLimit(t *testing.T) {
	path := writeFile(t, t.TempDir(), "a.tar.gz", makeTarGz(t, smallIMDB()))
	c, err := Load(context.Background(), Options{Path: path, Seed: 99, Limit: 2, WithUnsup: true})
	if err != nil {
		t.Fatal(err)
	}
	// Each folder: the first 2 of a shuffled 0..4, sorted, drawn in folder order.
	rng := NewSplitMix64(99)
	var want []string
	for _, f := range []string{"train/neg/%s_3.txt", "train/pos/%s_8.txt", "test/neg/%s_3.txt", "test/pos/%s_8.txt"} {
		ids := []string{"0", "10", "11", "1", "2"}
		for _, k := range sample(rng, 5, 2) {
			want = append(want, fmt.Sprintf(f, ids[k]))
		}
	}
	var got []string
	for _, e := range c.Examples[:8] {
		got = append(got, e.Name)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("limit sample %v, want %v", got, want)
	}
	// The unsup folder is sampled with its own generator: the main one is where it would be
	// without it.
	order := []int{0, 1, 2, 3}
	rng.Shuffle(4, func(i, j int) { order[i], order[j] = order[j], order[i] })
	if len(c.Unsup) != 2 || c.RNG != *rng || !slices.Equal(c.Train, order[:3]) {
		t.Fatalf("unsup %v, rng %v want %v", c.Unsup, c.RNG, *rng)
	}
	if _, err := Load(context.Background(), Options{Path: path, Limit: -1}); err == nil {
		t.Fatal("negative limit accepted")
	}
}

func TestLoadSample(t *testing.T) {
	c, err := Load(context.Background(), Options{Path: SampleName, Seed: DefaultSeed})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Train) != 1050 || len(c.Valid) != 450 || len(c.Test) != 1500 || c.Source != "sample" {
		t.Fatalf("sample: %d/%d/%d from %s", len(c.Train), len(c.Valid), len(c.Test), c.Source)
	}
	count := map[string]int{}
	for _, e := range c.Examples {
		count[strings.Join(strings.Split(e.Name, "/")[:2], "/")]++
	}
	for _, f := range []string{"train/neg", "train/pos", "test/neg", "test/pos"} {
		if count[f] != 750 {
			t.Fatalf("sample %s: %d reviews, want 750", f, count[f])
		}
	}
}

// TestSampleIsLimit750 checks the embedded sample against the real archive: the same reviews,
// byte for byte, as --limit 750 keeps.
func TestSampleIsLimit750(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	archive := testutil.Shared(t, "data/imdb/aclImdb_v1_labelled.tar.gz")
	full, err := assemble(realIMDB(t, archive), Options{Seed: DefaultSeed, Limit: 750})
	if err != nil {
		t.Fatal(err)
	}
	s, err := Load(context.Background(), Options{Path: SampleName, Seed: DefaultSeed})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(full.Examples, s.Examples) {
		t.Fatal("the embedded sample is not --limit 750 of the labelled archive (rerun go run ./scripts/mksample)")
	}
}

// extract writes the members as files under dir.
func extract(t testing.TB, dir string, members []member) {
	for _, m := range members {
		writeFile(t, dir, m.name, []byte(m.body))
	}
}

func TestLoadDirMatchesArchive(t *testing.T) {
	dir := t.TempDir()
	ms := smallIMDB()
	archive := writeFile(t, dir, "a.tar.gz", makeTarGz(t, ms))
	extract(t, filepath.Join(dir, "x"), ms)
	want, err := Load(context.Background(), Options{Path: archive, Seed: 5, WithUnsup: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{filepath.Join(dir, "x"), filepath.Join(dir, "x", "aclImdb")} {
		got, err := Load(context.Background(), Options{Path: p, Seed: 5, WithUnsup: true, Workers: 3})
		if err != nil {
			t.Fatal(err)
		}
		if got.Format != "imdb-dir" || !slices.Equal(got.Examples, want.Examples) || !slices.Equal(got.Train, want.Train) ||
			!slices.Equal(got.Test, want.Test) || !slices.Equal(got.Unsup, want.Unsup) {
			t.Fatalf("%s: directory differs from archive (format %s)", p, got.Format)
		}
	}
}

func TestLoadUnsupPath(t *testing.T) {
	dir := t.TempDir()
	var labelled, unsup []member
	for _, m := range smallIMDB() {
		if strings.Contains(m.name, "/unsup/") {
			unsup = append(unsup, m)
		} else {
			labelled = append(labelled, m)
		}
	}
	lp := writeFile(t, dir, "l.tar.gz", makeTarGz(t, labelled))
	up := writeFile(t, dir, "u.tar.gz", makeTarGz(t, unsup))
	c, err := Load(context.Background(), Options{Path: lp, UnsupPath: up, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Unsup) != 2 || c.Examples[c.Unsup[0]].Text != "unlabelled one" {
		t.Fatalf("unsup %v", c.Unsup)
	}
	extract(t, filepath.Join(dir, "ud"), unsup)
	c2, err := Load(context.Background(), Options{Path: lp, UnsupPath: filepath.Join(dir, "ud"), Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.Examples, c2.Examples) {
		t.Fatal("unsup from a directory differs from the archive")
	}
	// Asking for unsup from an archive without it names the problem.
	_, err = Load(context.Background(), Options{Path: lp, WithUnsup: true})
	if err == nil || !strings.Contains(err.Error(), "no unlabelled reviews") {
		t.Fatalf("error %v", err)
	}
	_, err = Load(context.Background(), Options{Path: lp, UnsupPath: lp})
	if err == nil || !strings.Contains(err.Error(), "train/unsup") {
		t.Fatalf("error %v", err)
	}
}

func TestLoadRealUnsup(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	up := testutil.Shared(t, "data/imdb/aclImdb_v1_unsup.tar.gz")
	c, err := Load(context.Background(), Options{Path: SampleName, UnsupPath: up, Seed: DefaultSeed, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Unsup) != 100 || len(c.Train)+len(c.Valid) != 200 {
		t.Fatalf("%d unsup, %d train+valid", len(c.Unsup), len(c.Train)+len(c.Valid))
	}
	for _, i := range c.Unsup {
		if e := c.Examples[i]; e.Label != NoLabel || e.Rating != 0 || !strings.HasPrefix(e.Name, "train/unsup/") {
			t.Fatalf("unsup example %+v", e)
		}
	}
}

func TestLoadFolderPerLabel(t *testing.T) {
	dir := t.TempDir()
	for i := 0; i < 10; i++ {
		writeFile(t, dir, fmt.Sprintf("happy/%02d.txt", i), []byte(fmt.Sprintf("good %d", i)))
		writeFile(t, dir, fmt.Sprintf("sad/%02d.txt", i), []byte(fmt.Sprintf("bad %d", i)))
		writeFile(t, dir, fmt.Sprintf("meh/%02d.txt", i), []byte(fmt.Sprintf("so so %d", i)))
	}
	writeFile(t, dir, "happy/notes.md", []byte("not a review"))
	c, err := Load(context.Background(), Options{Path: dir, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.Classes, []string{"happy", "meh", "sad"}) || c.Format != "dir" || len(c.Examples) != 30 {
		t.Fatalf("classes %v format %s, %d examples", c.Classes, c.Format, len(c.Examples))
	}
	// 20% held out as test (6 of 30), then 70/30 of the 24 left: 17 train, 7 valid.
	if len(c.Test) != 6 || len(c.Train) != 17 || len(c.Valid) != 7 || len(c.Notes) == 0 {
		t.Fatalf("split %d/%d/%d, notes %q", len(c.Train), len(c.Valid), len(c.Test), c.Notes)
	}
	all := slices.Concat(c.Train, c.Valid, c.Test)
	slices.Sort(all)
	for i := range all {
		if all[i] != i {
			t.Fatal("split is not a partition")
		}
	}
	if c.Examples[0].Name != "happy/00.txt" || c.Examples[10].Label != 1 {
		t.Fatalf("examples %+v %+v", c.Examples[0], c.Examples[10])
	}
	// With train/ and test/ folders (no valid): the recipe's split of train.
	d2 := t.TempDir()
	for i := 0; i < 5; i++ {
		for _, part := range []string{"train", "test"} {
			writeFile(t, d2, fmt.Sprintf("%s/a/%d.txt", part, i), []byte("x"))
			writeFile(t, d2, fmt.Sprintf("%s/b/%d.txt", part, i), []byte("y"))
		}
	}
	c2, err := Load(context.Background(), Options{Path: d2, Seed: 3, Labels: []string{"a", "b"}}) // binary: no positive class name
	if err != nil {
		t.Fatal(err)
	}
	if len(c2.Train) != 7 || len(c2.Valid) != 3 || len(c2.Test) != 10 || c2.Format != "dir" {
		t.Fatalf("split %d/%d/%d", len(c2.Train), len(c2.Valid), len(c2.Test))
	}
}

func TestLoadCSVTSVJSONL(t *testing.T) {
	dir := t.TempDir()
	csvPath := writeFile(t, dir, "r.csv", []byte("\ufeffid,text,label,split\n"+
		"1,\"Great, \"\"really\"\" great\",pos,train\n"+
		"2,\"Bad\nfilm\",neg,train\n"+
		"3,ok,pos,valid\n"+
		"4,meh,neg,test\n"+
		"5,fine,pos,train\n"))
	c, err := Load(context.Background(), Options{Path: csvPath, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.Classes, []string{"neg", "pos"}) || len(c.Train) != 3 || len(c.Valid) != 1 || len(c.Test) != 1 {
		t.Fatalf("csv: %v %d/%d/%d", c.Classes, len(c.Train), len(c.Valid), len(c.Test))
	}
	// canonical order: train neg (line 3), train pos (lines 2, 5), valid, test
	var names, texts []string
	for _, e := range c.Examples {
		names = append(names, e.Name)
		texts = append(texts, e.Text)
	}
	if !slices.Equal(names, []string{"r.csv:3", "r.csv:2", "r.csv:7", "r.csv:5", "r.csv:6"}) {
		t.Fatalf("csv names %q", names)
	}
	if texts[0] != "Bad\nfilm" || texts[1] != `Great, "really" great` {
		t.Fatalf("csv texts %q", texts)
	}

	tsvPath := writeFile(t, dir, "r.tsv", []byte("label\ttext\r\n1\tgood one\r\n\n0\tbad one\r\n1\tnice\n0\tawful\n1\tsuper\n"))
	c, err = Load(context.Background(), Options{Path: tsvPath, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.Classes, []string{"0", "1"}) || len(c.Examples) != 5 || c.Format != "tsv" || c.Examples[0].Text != "bad one" || c.Examples[0].Name != "r.tsv:4" {
		t.Fatalf("tsv: %v %+v", c.Classes, c.Examples)
	}

	jsonlPath := writeFile(t, dir, "r.jsonl", []byte(`{"review": "loved it", "stars": 1}`+"\n\n"+
		`{"review": "hated it", "stars": 0}`+"\n"+`{"review": "fine", "stars": 1}`+"\n"+`{"review": "meh", "stars": 0}`+"\n"+`{"review": "top", "stars": 1}`))
	c, err = Load(context.Background(), Options{Path: jsonlPath, Seed: 1, Fields: Fields{Text: "review", Label: "stars"}})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.Classes, []string{"0", "1"}) || len(c.Examples) != 5 || c.Examples[0].Text != "hated it" || c.Examples[0].Name != "r.jsonl:3" || c.Format != "jsonl" {
		t.Fatalf("jsonl: %v %+v", c.Classes, c.Examples)
	}
}

// TestLoadAsGiven: for evaluation, the data's own parts, without the recipe's split or holding
// out; a file whose rows are all test (no train part) loads.
func TestLoadAsGiven(t *testing.T) {
	dir := t.TempDir()
	plain := writeFile(t, dir, "plain.tsv", []byte("label\ttext\n1\tgood\n0\tbad\n1\tnice\n0\tawful\n1\tsuper\n"))
	c, err := Load(context.Background(), Options{Path: plain, Seed: 1, AsGiven: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Train) != 5 || len(c.Valid) != 0 || len(c.Test) != 0 || len(c.Notes) != 0 {
		t.Errorf("no split column: %d/%d/%d, notes %q; want every row in the train part, no notes", len(c.Train), len(c.Valid), len(c.Test), c.Notes)
	}
	allTest := writeFile(t, dir, "test.tsv", []byte("label\ttext\tsplit\n1\tgood\ttest\n0\tbad\ttest\n1\tnice\ttest\n"))
	if _, err := Load(context.Background(), Options{Path: allTest, Seed: 1}); err == nil || !strings.Contains(err.Error(), "no training examples") {
		t.Errorf("all test rows, for training: got %v, want no training examples", err)
	}
	c, err = Load(context.Background(), Options{Path: allTest, Seed: 1, AsGiven: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Train) != 0 || len(c.Valid) != 0 || !slices.Equal(c.Test, []int{0, 1, 2}) {
		t.Errorf("all test rows: %v/%v/%v, want 0/0/[0 1 2]", c.Train, c.Valid, c.Test)
	}
}

// TestLoadBadInput checks that each kind of bad input gives an error that names the file (and
// the member or line) and the problem.
func TestLoadBadInput(t *testing.T) {
	dir := t.TempDir()
	good := makeTarGz(t, smallIMDB())
	var plainTar bytes.Buffer
	{
		zr, _ := gzip.NewReader(bytes.NewReader(good))
		io.Copy(&plainTar, zr)
	}
	noTest := []member{}
	for _, m := range smallIMDB() {
		if !strings.Contains(m.name, "/test/") {
			noTest = append(noTest, m)
		}
	}
	withEmpty := append(smallIMDB(), member{"aclImdb/train/pos/99_9.txt", ""})
	withLatin1 := append(smallIMDB(), member{"aclImdb/test/neg/98_1.txt", "caf\xe9"})
	var gzNotTar bytes.Buffer
	zw := gzip.NewWriter(&gzNotTar)
	zw.Write(bytes.Repeat([]byte("this is not a tar archive "), 100))
	zw.Close()

	cases := []struct {
		name string
		path string // set instead of data for special paths
		data []byte
		want []string
	}{
		{name: "missing", path: filepath.Join(dir, "nope.tar.gz"), want: []string{"nope.tar.gz", "no such file"}},
		{name: "empty.tar.gz", data: nil, want: []string{"empty.tar.gz", "empty file"}},
		{name: "text.tar.gz", data: []byte("hello, I am plain text and certainly not an archive at all"), want: []string{"text.tar.gz", "not a gzip or tar archive"}},
		{name: "junk.tar.gz", data: bytes.Repeat([]byte{0x42, 0x17}, 1000), want: []string{"junk.tar.gz", "not a gzip or tar archive"}},
		{name: "badgzip.tar.gz", data: append([]byte{0x1f, 0x8b, 0x99}, bytes.Repeat([]byte{7}, 100)...), want: []string{"badgzip.tar.gz", "not a gzip archive"}},
		{name: "gznottar.tar.gz", data: gzNotTar.Bytes(), want: []string{"gznottar.tar.gz", "not a tar archive inside the gzip stream"}},
		{name: "notest.tar.gz", data: makeTarGz(t, noTest), want: []string{"notest.tar.gz", "no reviews in test/neg/", "aclImdb layout"}},
		{name: "truncated.tar.gz", data: good[:len(good)/2], want: []string{"truncated.tar.gz", "truncated archive"}},
		{name: "notrailer.tar.gz", data: good[:len(good)-6], want: []string{"notrailer.tar.gz", "truncated archive"}},
		{name: "truncated.tar", data: plainTar.Bytes()[:1560], want: []string{"truncated.tar", "truncated archive", "inside member aclImdb/test/pos/2_8.txt"}},
		{name: "cut.tar", data: plainTar.Bytes()[:2048], want: []string{"cut.tar", "truncated archive", "after member aclImdb/test/pos/2_8.txt", "end-of-archive"}},
		{name: "cutpad.tar", data: plainTar.Bytes()[:2000], want: []string{"cutpad.tar", "truncated archive"}},
		{name: "emptyreview.tar.gz", data: makeTarGz(t, withEmpty), want: []string{"emptyreview.tar.gz", "member aclImdb/train/pos/99_9.txt", "empty review"}},
		{name: "latin1.tar.gz", data: makeTarGz(t, withLatin1), want: []string{"latin1.tar.gz", "member aclImdb/test/neg/98_1.txt", "not valid UTF-8", "0xe9 at offset 3"}},
		{name: "bad.csv", data: []byte("text,label\n\"unclosed,1\n"), want: []string{"bad.csv:2", "quote"}},
		{name: "fields.csv", data: []byte("text,label\na,1\nb,0,extra\n"), want: []string{"fields.csv:3", "wrong number of fields"}},
		{name: "nolabel.csv", data: []byte("text,label\na,1\nb,\n"), want: []string{"nolabel.csv:3", "empty label"}},
		{name: "notext.csv", data: []byte("text,label\n,1\n"), want: []string{"notext.csv:2", "empty text"}},
		{name: "header.csv", data: []byte("body,label\na,1\n"), want: []string{"header.csv", `lacks the column "text"`}},
		{name: "split.csv", data: []byte("text,label,split\na,1,train\nb,0,dev\n"), want: []string{"split.csv:3", `"dev"`, "train, valid or test"}},
		{name: "latin1.csv", data: []byte("text,label\ncaf\xe9,1\n"), want: []string{"latin1.csv:2", "not valid UTF-8"}},
		{name: "onelabel.csv", data: []byte("text,label\na,1\nb,1\n"), want: []string{"onelabel.csv", "at least two"}},
		{name: "empty.csv", data: []byte(""), want: []string{"empty.csv", "empty file"}},
		{name: "headeronly.csv", data: []byte("text,label\n"), want: []string{"headeronly.csv", "no examples"}},
		{name: "fields.tsv", data: []byte("text\tlabel\na\t1\nb\n"), want: []string{"fields.tsv:3", "1 fields, the header has 2"}},
		{name: "bad.jsonl", data: []byte("{\"text\": \"a\", \"label\": 1}\n{\"text\": \"b\", \"label\": 0\n"), want: []string{"bad.jsonl:2", "not a JSON object"}},
		{name: "type.jsonl", data: []byte("{\"text\": 5, \"label\": 1}\n"), want: []string{"type.jsonl:1", `field "text" is 5, want a string`}},
		{name: "missing.jsonl", data: []byte("{\"text\": \"a\"}\n"), want: []string{"missing.jsonl:1", `field "label" is missing`}},
		{name: "latin1.jsonl", data: []byte("{\"text\": \"caf\xe9\", \"label\": 1}\n"), want: []string{"latin1.jsonl:1", "not valid UTF-8"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.path
			if p == "" {
				p = writeFile(t, dir, tc.name, tc.data)
			}
			_, err := Load(context.Background(), Options{Path: p, Seed: 1})
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

func TestLoadBadDirs(t *testing.T) {
	dir := t.TempDir()
	if _, err := Load(context.Background(), Options{Path: dir}); err == nil || !strings.Contains(err.Error(), "no label folders") {
		t.Fatalf("empty dir: %v", err)
	}
	writeFile(t, dir, "a/1.txt", []byte("x"))
	os.MkdirAll(filepath.Join(dir, "b"), 0o755)
	if _, err := Load(context.Background(), Options{Path: dir}); err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "b")+": no .txt files") {
		t.Fatalf("empty label folder: %v", err)
	}
	writeFile(t, dir, "b/1.txt", []byte("\xff\xfe"))
	if _, err := Load(context.Background(), Options{Path: dir}); err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "b", "1.txt")+": not valid UTF-8") {
		t.Fatalf("bad file: %v", err)
	}
	if _, err := Load(context.Background(), Options{}); err == nil {
		t.Fatal("no path accepted")
	}
}

func TestLoadCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Load(ctx, Options{Path: SampleName}); !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want context.Canceled", err)
	}
}

func TestLoadProgress(t *testing.T) {
	var out bytes.Buffer
	if _, err := Load(context.Background(), Options{Path: SampleName, Progress: &out}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "read sample: 1.64 MiB / 1.64 MiB") {
		t.Fatalf("progress %q", out.String())
	}
}
