package data

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/sentibench/sentibench/internal/testutil"
)

// basicEnglishVectors is data/testdata/basic_english.json, written by
// scripts/gen_basic_english_vectors.py with Python running torch_ref.py's basic_english.
type basicEnglishVectors struct {
	Python  string `json:"python"`
	Unicode string `json:"unicode"`
	Reviews []struct {
		Name         string `json:"name"`
		Text         string `json:"text"`
		NTokens      int    `json:"n_tokens"`
		TokensSHA256 string `json:"tokens_sha256"`
	} `json:"reviews"`
	Synthetic []struct {
		Text   string `json:"text"`
		Tokens string `json:"tokens"`
	} `json:"synthetic"`
	Corpus map[string]struct {
		Reviews int    `json:"reviews"`
		SHA256  string `json:"sha256"`
	} `json:"corpus"`
	Lower [][2]any `json:"lower"`
	Space []rune   `json:"space"`
	Sigma [][2]any `json:"sigma"`
}

func loadBasicEnglishVectors(t testing.TB) *basicEnglishVectors {
	t.Helper()
	b, err := os.ReadFile("testdata/basic_english.json")
	if err != nil {
		t.Fatal(err)
	}
	var v basicEnglishVectors
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return &v
}

// TestBasicEnglishMatchesPython compares the tokens of 248 real reviews (every tricky kind the
// data holds: control bytes, C1 code points, U+00A0, U+0085, tabs, İ, <BR />, odd <br> forms,
// heavy quoting, every distinct non-ASCII character) and of hand-written edge cases with
// Python's.
func TestBasicEnglishMatchesPython(t *testing.T) {
	v := loadBasicEnglishVectors(t)
	if len(v.Reviews) < 200 || len(v.Synthetic) < 50 {
		t.Fatalf("vector too small: %d reviews, %d synthetic", len(v.Reviews), len(v.Synthetic))
	}
	tok := BasicEnglish{}
	for _, s := range v.Synthetic {
		got := tok.Tokenize(s.Text)
		want := strings.Fields(s.Tokens) // no token holds ASCII whitespace
		if !slices.Equal(got, want) {
			t.Errorf("Tokenize(%q) = %q, Python gives %q", s.Text, got, want)
		}
	}
	for _, r := range v.Reviews {
		got := tok.Tokenize(r.Text)
		sum := sha256.Sum256([]byte(strings.Join(got, "\n")))
		if len(got) != r.NTokens || hex.EncodeToString(sum[:]) != r.TokensSHA256 {
			t.Errorf("%s: %d tokens (SHA-256 %x), Python gives %d (%s); ours: %q",
				r.Name, len(got), sum, r.NTokens, r.TokensSHA256, got)
		}
	}
}

// TestBasicEnglishWholeCorpus tokenizes every review of both real archives (100,000 reviews)
// and compares a digest of all the tokens with Python's.
func TestBasicEnglishWholeCorpus(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: reads both archives")
	}
	labelled := testutil.Shared(t, "data/imdb/aclImdb_v1_labelled.tar.gz")
	unsup := testutil.Shared(t, "data/imdb/aclImdb_v1_unsup.tar.gz")
	v := loadBasicEnglishVectors(t)
	var items [][]item
	for _, f := range realIMDB(t, labelled).folders {
		items = append(items, f.items)
	}
	u, err := readUnsupPath(context.Background(), unsup, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for k, group := range [][][]item{items, {u.items}} {
		name := []string{"aclImdb_v1_labelled.tar.gz", "aclImdb_v1_unsup.tar.gz"}[k]
		var all []item
		for _, g := range group {
			all = append(all, g...)
		}
		slices.SortFunc(all, func(a, b item) int { return strings.Compare(a.name, b.name) })
		h := sha256.New()
		var toks []string
		for _, it := range all {
			toks = BasicEnglish{}.AppendTokens(toks[:0], it.text)
			io.WriteString(h, it.name+"\n"+strings.Join(toks, " ")+"\n")
		}
		want := v.Corpus[name]
		if got := hex.EncodeToString(h.Sum(nil)); len(all) != want.Reviews || got != want.SHA256 {
			t.Errorf("%s: %d reviews, tokens SHA-256 %s; Python: %d, %s", name, len(all), got, want.Reviews, want.SHA256)
		}
	}
}

// TestLowerMatchesPython checks the lower-casing of every code point against Python's
// str.lower() (the vector lists every code point that str.lower() changes).
func TestLowerMatchesPython(t *testing.T) {
	v := loadBasicEnglishVectors(t)
	want := map[rune]string{}
	for _, e := range v.Lower {
		want[rune(e[0].(float64))] = e[1].(string)
	}
	if len(want) < 1000 {
		t.Fatalf("only %d lower-case mappings in the vector", len(want))
	}
	bad := 0
	for r := rune(0); r <= utf8.MaxRune; r++ {
		if r >= 0xD800 && r < 0xE000 || r == '"' {
			continue
		}
		w, ok := want[r]
		if !ok {
			w = string(r)
		}
		if got := lowerNoQuotes(string(r)); got != w {
			if bad++; bad < 20 {
				t.Errorf("lower(U+%04X) = %q, Python gives %q", r, got, w)
			}
		}
	}
}

// TestSpaceMatchesPython checks the whitespace set against Python's str.isspace().
func TestSpaceMatchesPython(t *testing.T) {
	v := loadBasicEnglishVectors(t)
	for r := rune(0); r <= utf8.MaxRune; r++ {
		if got, want := isPySpace(r), slices.Contains(v.Space, r); got != want {
			t.Errorf("isPySpace(U+%04X) = %v, Python's isspace() = %v", r, got, want)
		}
	}
}

// TestFinalSigmaMatchesPython checks, for every code point c assigned in Python's Unicode
// version, how c before a capital sigma decides its lower-case form, as Python does: the
// vector classes code points as cased (C), case-ignorable (I) or other (O).
func TestFinalSigmaMatchesPython(t *testing.T) {
	v := loadBasicEnglishVectors(t)
	for k, e := range v.Sigma {
		start := rune(e[0].(float64))
		end := rune(utf8.MaxRune + 1)
		if k+1 < len(v.Sigma) {
			end = rune(v.Sigma[k+1][0].(float64))
		}
		class := e[1].(string)
		if class == "N" {
			continue
		}
		for r := start; r < end; r++ {
			if r == '"' {
				continue
			}
			final1 := strings.HasSuffix(lowerNoQuotes(string(r)+"Σ"), "ς")
			final2 := strings.HasSuffix(lowerNoQuotes("a"+string(r)+"Σ"), "ς")
			got := "O"
			switch {
			case final1:
				got = "C"
			case final2:
				got = "I"
			}
			if got != class {
				t.Errorf("U+%04X: class %s, Python's is %s", r, got, class)
			}
		}
	}
}

// referenceBasicEnglish transcribes torch_ref.py's basic_english literally, with Go's regexp:
// the slow, obviously right version that the fuzz test holds the scanner to.
var referenceRules = func() []struct {
	re   *regexp.Regexp
	repl string
} {
	const space = `[\t\n\v\f\r\x1c-\x1f \x{85}\x{a0}\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}\x{202f}\x{205f}\x{3000}]+`
	var rules []struct {
		re   *regexp.Regexp
		repl string
	}
	for _, pr := range [][2]string{
		{`'`, " '  "}, {`"`, ""}, {`\.`, " . "}, {`<br \/>`, " "}, {`,`, " , "}, {`\(`, " ( "},
		{`\)`, " ) "}, {`\!`, " ! "}, {`\?`, " ? "}, {`\;`, " "}, {`\:`, " "}, {space, " "},
	} {
		rules = append(rules, struct {
			re   *regexp.Regexp
			repl string
		}{regexp.MustCompile(pr[0]), pr[1]})
	}
	return rules
}()

func referenceBasicEnglish(text string) []string {
	// str.lower(): the quote rule comes right after, so lowerNoQuotes + putting nothing back
	// is the lower-casing of a text with its quotes deleted; do it in two steps to keep the
	// rules literal: lower-case each run between quotes.
	parts := strings.Split(text, `"`)
	off := 0
	for i, p := range parts {
		parts[i] = lowerInContext(text, off, off+len(p))
		off += len(p) + 1
	}
	s := strings.Join(parts, `"`)
	for _, r := range referenceRules {
		s = r.re.ReplaceAllLiteralString(s, r.repl)
	}
	return strings.FieldsFunc(s, isPySpace)
}

// lowerInContext lower-cases text[i:j] with the whole text as the context of final sigma.
func lowerInContext(text string, i, j int) string {
	var b strings.Builder
	for k := i; k < j; {
		r, size := utf8.DecodeRuneInString(text[k:])
		if r == 0x3A3 {
			if finalSigma(text, k, k+size) {
				b.WriteRune('ς')
			} else {
				b.WriteRune('σ')
			}
		} else {
			b.WriteString(lowerNoQuotes(text[k : k+size]))
		}
		k += size
	}
	return b.String()
}

// FuzzBasicEnglish holds the scanner to the literal regexp transcription, and checks the
// invariants of its output: no empty token, no token holding whitespace, ';', ':', '"' or
// "<br />", the punctuation ' . , ( ) ! ? only as one-character tokens, and tokenizing the
// tokens again (joined by tabs) gives them back.
func FuzzBasicEnglish(f *testing.F) {
	v := loadBasicEnglishVectors(f)
	for _, s := range v.Synthetic {
		f.Add(s.Text)
	}
	for i, r := range v.Reviews {
		if i%10 == 0 {
			f.Add(r.Text)
		}
	}
	f.Add("\xff<br \xfe/>a\x80")
	tok := BasicEnglish{}
	f.Fuzz(func(t *testing.T, text string) {
		got := tok.Tokenize(text) // must not panic, valid UTF-8 or not
		if !utf8.ValidString(text) {
			return // Python would not have decoded it; the rules below are for valid text
		}
		if want := referenceBasicEnglish(text); !slices.Equal(got, want) {
			t.Fatalf("Tokenize(%q) = %q, reference %q", text, got, want)
		}
		for _, tk := range got {
			if tk == "" {
				t.Fatalf("empty token in %q", got)
			}
			if strings.ContainsAny(tk, `;:"`) || strings.Contains(tk, "<br />") || strings.IndexFunc(tk, isPySpace) >= 0 {
				t.Fatalf("token %q holds a separator", tk)
			}
			if strings.ContainsAny(tk, "'.,()!?") && len(tk) != 1 {
				t.Fatalf("punctuation inside token %q", tk)
			}
		}
		if again := tok.Tokenize(strings.Join(got, "\t")); !slices.Equal(again, got) {
			t.Fatalf("re-tokenizing %q gives %q", got, again)
		}
	})
}

func TestBasicEnglishAppend(t *testing.T) {
	tok := BasicEnglish{}
	if tok.Name() != "basic_english" {
		t.Fatal(tok.Name())
	}
	dst := tok.AppendTokens([]string{"x"}, "Hello, World")
	if want := []string{"x", "hello", ",", "world"}; !slices.Equal(dst, want) {
		t.Fatalf("%q", dst)
	}
	var _ Tokenizer = tok
	var _ TokenAppender = tok
}

func BenchmarkBasicEnglish(b *testing.B) {
	v := loadBasicEnglishVectors(b)
	var n int64
	for _, r := range v.Reviews {
		n += int64(len(r.Text))
	}
	tok := BasicEnglish{}
	b.SetBytes(n)
	var dst []string
	for b.Loop() {
		for _, r := range v.Reviews {
			dst = tok.AppendTokens(dst[:0], r.Text)
		}
	}
}
