package data

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestTokenizeAllWorkersAgree(t *testing.T) {
	c, err := Load(context.Background(), Options{Path: SampleName, Seed: DefaultSeed})
	if err != nil {
		t.Fatal(err)
	}
	texts := c.Texts()
	one, err := TokenizeAll(context.Background(), texts, BasicEnglish{}, 1)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, ty := range one.Types {
		if seen[ty] {
			t.Fatalf("type %q twice", ty)
		}
		seen[ty] = true
	}
	for _, w := range []int{2, 3, 7} {
		many, err := TokenizeAll(context.Background(), texts, BasicEnglish{}, w)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(one.Types, many.Types) {
			t.Fatalf("%d workers: types differ", w)
		}
		for i := range one.Seqs {
			if !slices.Equal(one.Seqs[i], many.Seqs[i]) {
				t.Fatalf("%d workers: text %d differs", w, i)
			}
		}
	}
	// Every text's tokens, read back through Types, are the tokenizer's.
	for _, i := range []int{0, 17, 2999} {
		var got []string
		for _, id := range one.Seqs[i] {
			got = append(got, one.Types[id])
		}
		if want := (BasicEnglish{}).Tokenize(texts[i]); !slices.Equal(got, want) {
			t.Fatalf("text %d: %q, want %q", i, got, want)
		}
	}
}

// plainTokenizer splits at spaces; it has no AppendTokens (the generic path of TokenizeAll).
type plainTokenizer struct{}

func (plainTokenizer) Name() string                  { return "plain" }
func (plainTokenizer) Tokenize(text string) []string { return strings.Fields(text) }

func TestBuildVocab(t *testing.T) {
	texts := []string{
		"b a a c <unk> <pad> <pad>", // train
		"c c b d",                   // train
		"z z z z z z a",             // not train: z is not counted
	}
	toks, err := TokenizeAll(context.Background(), texts, plainTokenizer{}, 2)
	if err != nil {
		t.Fatal(err)
	}
	// counts over train: c 3, a 2, b 2, d 1 -> c, then a and b tied (byte order), then d.
	v := BuildVocab(toks, []int{0, 1}, 0)
	if want := []string{"<unk>", "<pad>", "c", "a", "b", "d"}; !slices.Equal(v.Tokens(), want) {
		t.Fatalf("vocab %q, want %q", v.Tokens(), want)
	}
	v3 := BuildVocab(toks, []int{0, 1}, 3)
	if want := []string{"<unk>", "<pad>", "c", "a", "b"}; !slices.Equal(v3.Tokens(), want) {
		t.Fatalf("vocab(3) %q, want %q", v3.Tokens(), want)
	}
	ids := toks.IDs(v3)
	if want := []int32{2, 2, 4, UNK}; !slices.Equal(ids[1], want) {
		t.Fatalf("ids %v, want %v", ids[1], want)
	}
	if want := []int32{4, 3, 3, 2, UNK, PAD, PAD}; !slices.Equal(ids[0], want) {
		t.Fatalf("ids %v, want %v (the specials map to their ids)", ids[0], want)
	}
	if v3.ID("zzz") != UNK || v3.Token(2) != "c" || v3.Token(99) != "" || v3.Len() != 5 {
		t.Fatal("lookups")
	}
	if id, ok := v3.Lookup("d"); ok || id != 0 {
		t.Fatal("d is out of the 3-word vocabulary")
	}
	if got := v3.Encode(nil, []string{"a", "q"}); !slices.Equal(got, []int32{3, UNK}) {
		t.Fatal(got)
	}
}

func TestVocabSaveLoad(t *testing.T) {
	v, err := NewVocab([]string{"<unk>", "<pad>", "the", "ünï", "."})
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "vocab.txt")
	if err := v.Save(p); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(p)
	if string(b) != "<unk>\n<pad>\nthe\nünï\n.\n" {
		t.Fatalf("file %q", b)
	}
	w, err := LoadVocab(p)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(w.Tokens(), v.Tokens()) {
		t.Fatal("round trip")
	}
	// without the final newline it still reads
	if w, err := ParseVocab([]byte("<unk>\n<pad>\nx"), "v"); err != nil || w.Len() != 3 {
		t.Fatal(err)
	}
	for _, c := range []struct{ data, want string }{
		{"", "v.txt: empty file"},
		{"<unk>\n<pad>\nthe\nthe\n", `v.txt:4: token "the" already on line 3`},
		{"<pad>\n<unk>\nthe\n", "must start with <unk> (line 1) and <pad> (line 2)"},
		{"<unk>\nthe\n", "must start with"},
		{"<unk>\n<pad>\n\nthe\n", "v.txt:3: empty token"},
		{"<unk>\n<pad>\nca\xffe\n", "v.txt:3: not valid UTF-8"},
		{"<unk>\r\n<pad>\r\n", "v.txt:1: token \"<unk>\\r\" holds a line break"},
	} {
		_, err := ParseVocab([]byte(c.data), "v.txt")
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: error %v, want %q", c.data, err, c.want)
		}
	}
	if _, err := LoadVocab(filepath.Join(t.TempDir(), "missing.txt")); err == nil || !strings.Contains(err.Error(), "missing.txt") {
		t.Fatalf("missing file: %v", err)
	}
	for _, bad := range [][]string{{"<unk>"}, {"<unk>", "<pad>", "a", "a"}, {"<unk>", "<pad>", "a\nb"}, {"<unk>", "<pad>", ""}} {
		if _, err := NewVocab(bad); err == nil {
			t.Errorf("NewVocab(%q) accepted", bad)
		}
	}
}

func TestWordDataEmptyText(t *testing.T) {
	c := &Corpus{Examples: []Example{{Text: "a b", Name: "x:1"}, {Text: `""`, Name: "x:2"}}, Train: []int{0}, Source: "x"}
	if _, _, err := WordData(context.Background(), c, BasicEnglish{}, 10, 1); err == nil || !strings.Contains(err.Error(), "x:2") {
		t.Fatalf("error %v", err)
	}
}

func TestTokenizeAllCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := TokenizeAll(ctx, []string{"a", "b"}, BasicEnglish{}, 2); err == nil {
		t.Fatal("no error")
	}
}

func TestEncodeWithVocab(t *testing.T) {
	v, err := NewVocab([]string{"<unk>", "<pad>", "good", "."})
	if err != nil {
		t.Fatal(err)
	}
	ids, err := Encode(context.Background(), []string{"Good. Very GOOD", "bad"}, BasicEnglish{}, v, 2)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ids[0], []int32{2, 3, UNK, 2}) || !slices.Equal(ids[1], []int32{UNK}) {
		t.Fatalf("ids %v", ids)
	}
	if got := Lengths(ids); !slices.Equal(got, []int{4, 1}) {
		t.Fatal(got)
	}
}
