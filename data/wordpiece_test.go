package data

import (
	"archive/tar"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/sentibench/sentibench/internal/testutil"
)

// bertVocabDir is the shared folder with the real bert-base-uncased vocabulary and the
// tokenizer.json of all-MiniLM-L6-v2.
const bertVocabDir = "models/bert-base-uncased-vocab"

func loadBoth(t testing.TB) map[string]*WordPiece {
	t.Helper()
	dir := testutil.Shared(t, bertVocabDir)
	fromJSON, err := LoadWordPieceJSON(filepath.Join(dir, "tokenizer.json"))
	if err != nil {
		t.Fatal(err)
	}
	fromVocab, err := LoadWordPieceVocab(filepath.Join(dir, "vocab.txt"), DefaultVocabConfig())
	if err != nil {
		t.Fatal(err)
	}
	return map[string]*WordPiece{"tokenizer.json": fromJSON, "vocab.txt": fromVocab}
}

func TestWordPieceSharedReference(t *testing.T) {
	var ref struct {
		SpecialIDs map[string]int32 `json:"special_ids"`
		Examples   []struct {
			Text     string   `json:"text"`
			Tokens   []string `json:"tokens"`
			InputIDs []int32  `json:"input_ids"`
		} `json:"examples"`
	}
	b, err := os.ReadFile(testutil.Shared(t, bertVocabDir+"/reference_tokens.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &ref); err != nil {
		t.Fatal(err)
	}
	for src, w := range loadBoth(t) {
		if w.VocabSize() != 30522 || w.UnkID != ref.SpecialIDs["[UNK]"] || w.CLSID != ref.SpecialIDs["[CLS]"] ||
			w.SEPID != ref.SpecialIDs["[SEP]"] || w.PadID != ref.SpecialIDs["[PAD]"] {
			t.Errorf("%s: vocab %d, unk %d cls %d sep %d pad %d", src, w.VocabSize(), w.UnkID, w.CLSID, w.SEPID, w.PadID)
		}
		for _, ex := range ref.Examples {
			got := w.Encode(ex.Text, 512)
			if !slices.Equal(got, ex.InputIDs) {
				t.Errorf("%s: %q: ids %v, want %v", src, ex.Text, got, ex.InputIDs)
			}
			var toks []string
			for _, id := range got {
				toks = append(toks, w.Token(id))
			}
			if !slices.Equal(toks, ex.Tokens) {
				t.Errorf("%s: %q: tokens %q, want %q", src, ex.Text, toks, ex.Tokens)
			}
		}
	}
}

type wordPieceVectors struct {
	Archive   string `json:"archive"`
	MaxLength int    `json:"max_length"`
	Reviews   []struct {
		Name  string  `json:"name"`
		Why   string  `json:"why"`
		IDs   []int32 `json:"ids"`
		NFull int     `json:"n_full"`
	} `json:"reviews"`
	EdgeCases []struct {
		Text    string  `json:"text"`
		IDs     []int32 `json:"ids"`
		IDsMax8 []int32 `json:"ids_max8"`
	} `json:"edge_cases"`
	Corpus map[string]struct {
		Reviews int    `json:"reviews"`
		SHA256  string `json:"sha256"`
	} `json:"corpus"`
}

func readVectors(t *testing.T) *wordPieceVectors {
	t.Helper()
	f, err := os.Open("testdata/wordpiece_imdb.json.gz")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var v wordPieceVectors
	if err := json.NewDecoder(zr).Decode(&v); err != nil {
		t.Fatal(err)
	}
	return &v
}

// readArchiveTexts returns the texts of the named members of a .tar.gz archive.
func readArchiveTexts(t *testing.T, path string, names map[string]bool) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	out := map[string]string{}
	for len(out) < len(names) {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if names[h.Name] {
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			out[h.Name] = string(b)
		}
	}
	return out
}

func TestWordPieceEdgeCases(t *testing.T) {
	v := readVectors(t)
	for src, w := range loadBoth(t) {
		for _, ec := range v.EdgeCases {
			if got := w.Encode(ec.Text, 0); !slices.Equal(got, ec.IDs) {
				t.Errorf("%s: %q:\n got %v\nwant %v\nnormalised %q", src, ec.Text, got, ec.IDs, w.Normalize(ec.Text))
			}
			if got := w.Encode(ec.Text, 8); !slices.Equal(got, ec.IDsMax8) {
				t.Errorf("%s: %q, max 8: got %v, want %v", src, ec.Text, got, ec.IDsMax8)
			}
		}
	}
}

func TestWordPieceIMDB(t *testing.T) {
	v := readVectors(t)
	names := map[string]bool{}
	for _, r := range v.Reviews {
		names[r.Name] = true
	}
	texts := readArchiveTexts(t, testutil.Shared(t, v.Archive), names)
	if len(texts) != len(names) {
		t.Fatalf("found %d of the %d reviews in the archive", len(texts), len(names))
	}
	truncated := 0
	for src, w := range loadBoth(t) {
		bad := 0
		for _, r := range v.Reviews {
			text := texts[r.Name]
			got := w.Encode(text, v.MaxLength)
			if !slices.Equal(got, r.IDs) {
				bad++
				if bad <= 3 {
					i := 0
					for i < min(len(got), len(r.IDs)) && got[i] == r.IDs[i] {
						i++
					}
					t.Errorf("%s: %s (%s): first difference at piece %d: got %v, want %v", src, r.Name, r.Why, i,
						got[i:min(i+5, len(got))], r.IDs[i:min(i+5, len(r.IDs))])
				}
			}
			if n := len(w.Tokenize(text)) + 2; n != r.NFull {
				t.Errorf("%s: %s: %d pieces untruncated, want %d", src, r.Name, n, r.NFull)
			}
			if r.NFull > v.MaxLength {
				truncated++
			}
		}
		if bad > 0 {
			t.Errorf("%s: %d of %d reviews differ", src, bad, len(v.Reviews))
		}
	}
	if truncated == 0 {
		t.Error("no review in the vectors hits the truncation")
	}
}

// TestWordPieceWholeCorpus tokenizes every review of both real archives (100,000 reviews, in
// archive order, truncated to 512) and compares a digest of all the ids with transformers'.
func TestWordPieceWholeCorpus(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: reads both archives")
	}
	v := readVectors(t)
	w := loadBoth(t)["tokenizer.json"]
	for _, archive := range []string{"aclImdb_v1_labelled.tar.gz", "aclImdb_v1_unsup.tar.gz"} {
		path := testutil.Shared(t, "data/imdb/"+archive)
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		zr, err := gzip.NewReader(f)
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(zr)
		h := sha256.New()
		n := 0
		var line []byte
		for {
			hd, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			if !strings.HasSuffix(hd.Name, ".txt") || !(strings.Contains(hd.Name, "/pos/") || strings.Contains(hd.Name, "/neg/") || strings.Contains(hd.Name, "/unsup/")) {
				continue
			}
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			line = append(append(line[:0], hd.Name...), '\t')
			for i, id := range w.Encode(string(b), 512) {
				if i > 0 {
					line = append(line, ',')
				}
				line = strconv.AppendInt(line, int64(id), 10)
			}
			h.Write(append(line, '\n'))
			n++
		}
		f.Close()
		want := v.Corpus[archive]
		if got := hex.EncodeToString(h.Sum(nil)); n != want.Reviews || got != want.SHA256 {
			t.Errorf("%s: %d reviews, ids SHA-256 %s; transformers: %d, %s", archive, n, got, want.Reviews, want.SHA256)
		}
	}
}

func TestWordPiecePad(t *testing.T) {
	w := loadBoth(t)["vocab.txt"]
	seqs := [][]int32{w.Encode("a dull, boring mess", 512), w.Encode("fine", 512)}
	ids, mask, T := w.Pad(seqs)
	if T != 7 || len(ids) != 14 || len(mask) != 14 {
		t.Fatalf("T %d, %d ids, %d mask", T, len(ids), len(mask))
	}
	want := []int32{101, 1037, 10634, 1010, 11771, 6752, 102, 101, 2986, 102, 0, 0, 0, 0}
	if !slices.Equal(ids, want) {
		t.Errorf("ids %v, want %v", ids, want)
	}
	if !slices.Equal(mask, []int32{1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0}) {
		t.Errorf("mask %v", mask)
	}
}

func TestWordPieceLoadErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := LoadWordPiece(dir); err == nil || !strings.Contains(err.Error(), "neither tokenizer.json nor vocab.txt") {
		t.Errorf("empty dir: %v", err)
	}
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	p := write("vocab.txt", "[PAD]\n[UNK]\nhello\n")
	if _, err := LoadWordPieceVocab(p, DefaultVocabConfig()); err == nil || !strings.Contains(err.Error(), `"[CLS]"`) {
		t.Errorf("vocab without [CLS]: %v", err)
	}
	for _, c := range []struct{ json, want string }{
		{`{"model":{"type":"BPE","vocab":{"a":0}}}`, `"BPE" is not WordPiece`},
		{`{"model":{"type":"WordPiece","unk_token":"[UNK]","vocab":{"a":0}},"pre_tokenizer":{"type":"BertPreTokenizer"}}`, `unknown token "[UNK]"`},
		{`{"normalizer":{"type":"NFC"},"model":{"type":"WordPiece","unk_token":"a","vocab":{"a":0}}}`, `normalizer type "NFC"`},
		{`{"model":{"type":"WordPiece","unk_token":"a","vocab":{"a":0}}}`, `pre_tokenizer "none"`},
		{`{"model":`, `not a valid tokenizer.json`},
		{`{"pre_tokenizer":{"type":"BertPreTokenizer"},"added_tokens":[{"id":-1,"content":"x"}],"model":{"type":"WordPiece","unk_token":"a","vocab":{"a":0}}}`, `added token "x" has the negative id -1`},
	} {
		p := write("tokenizer.json", c.json)
		_, err := LoadWordPieceJSON(p)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), p) {
			t.Errorf("%s: error %v, want one naming the file and %q", c.json, err, c.want)
		}
	}
}

func TestWordPieceFingerprint(t *testing.T) {
	ws := loadBoth(t)
	a, b := ws["tokenizer.json"], ws["vocab.txt"]
	if a.Fingerprint() != b.Fingerprint() {
		t.Errorf("the same tokenizer from tokenizer.json and vocab.txt: fingerprints differ")
	}
	c := *b
	c.Lowercase = false
	if c.Fingerprint() == b.Fingerprint() {
		t.Error("changing a setting kept the fingerprint")
	}
}

func BenchmarkWordPiece(b *testing.B) {
	dir := testutil.Shared(b, bertVocabDir)
	w, err := LoadWordPieceJSON(filepath.Join(dir, "tokenizer.json"))
	if err != nil {
		b.Fatal(err)
	}
	text := strings.Repeat("This movie was absolutely wonderful, I loved it. <br /><br />Héllo wörld!! unaffable snowboarding. ", 20)
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		w.Encode(text, 0)
	}
}

// TestWordPieceHeadTail checks head+tail truncation on the real reviews of the reference
// vectors: a review that fits is encoded as transformers does; a longer one keeps transformers'
// first 1+head ids ([CLS] and the head) and ends with its last word pieces, then [SEP].
func TestWordPieceHeadTail(t *testing.T) {
	v := readVectors(t)
	names := map[string]bool{}
	for _, r := range v.Reviews {
		names[r.Name] = true
	}
	texts := readArchiveTexts(t, testutil.Shared(t, v.Archive), names)
	const head = 128
	w := loadBoth(t)["vocab.txt"]
	if w == nil {
		t.Fatal("no vocab.txt tokenizer")
	}
	long := 0
	for _, r := range v.Reviews {
		text := texts[r.Name]
		got := w.EncodeHeadTail(text, v.MaxLength, head)
		if r.NFull <= v.MaxLength {
			if !slices.Equal(got, r.IDs) {
				t.Errorf("%s fits in %d pieces: head+tail changed it", r.Name, v.MaxLength)
			}
			continue
		}
		long++
		full := w.Tokenize(text)
		tail := v.MaxLength - 2 - head
		if len(got) != v.MaxLength {
			t.Fatalf("%s: %d pieces, want %d", r.Name, len(got), v.MaxLength)
		}
		if !slices.Equal(got[:1+head], r.IDs[:1+head]) {
			t.Errorf("%s: the head differs from transformers' first %d ids", r.Name, 1+head)
		}
		if !slices.Equal(got[1+head:len(got)-1], full[len(full)-tail:]) || got[len(got)-1] != w.SEPID {
			t.Errorf("%s: the tail is not the last %d word pieces then [SEP]", r.Name, tail)
		}
	}
	if long == 0 {
		t.Error("no review in the vectors is long enough to test the tail")
	}
	// Degenerate heads fall back to plain truncation.
	text := texts[v.Reviews[0].Name]
	for _, h := range []int{0, -1, v.MaxLength - 2, v.MaxLength} {
		if got := w.EncodeHeadTail(text, v.MaxLength, h); !slices.Equal(got, w.Encode(text, v.MaxLength)) {
			t.Errorf("head %d: not Encode", h)
		}
	}
}
