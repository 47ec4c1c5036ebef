package data

import (
	"bufio"
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/sentibench/sentibench/internal/atomicfile"
)

// The special tokens and their ids (RECIPE.md, Vocabulary).
const (
	UNK      = 0 // id of UnkToken: every out-of-vocabulary token
	PAD      = 1 // id of PadToken: padding
	UnkToken = "<unk>"
	PadToken = "<pad>"
	// DefaultMaxWords is the recipe's vocabulary size, not counting the two special tokens.
	DefaultMaxWords = 25000
)

// Vocab maps tokens to ids and back: <unk> is 0, <pad> is 1, then the words.
type Vocab struct {
	itos []string
	stoi map[string]int32
}

// BuildVocab builds the recipe's vocabulary from the texts of train: the maxWords most frequent
// tokens (maxWords <= 0: all of them), ties broken by byte-wise order of the token, after
// <unk> and <pad>. The tokens "<unk>" and "<pad>" in texts are never counted as words.
func BuildVocab(t *Tokens, train []int, maxWords int) *Vocab {
	counts := t.Counts(train)
	cand := make([]int32, 0, len(t.Types))
	for id, n := range counts {
		if n > 0 && t.Types[id] != UnkToken && t.Types[id] != PadToken {
			cand = append(cand, int32(id))
		}
	}
	slices.SortFunc(cand, func(a, b int32) int {
		if c := cmp.Compare(counts[b], counts[a]); c != 0 {
			return c
		}
		return strings.Compare(t.Types[a], t.Types[b])
	})
	if maxWords > 0 && len(cand) > maxWords {
		cand = cand[:maxWords]
	}
	itos := make([]string, 0, len(cand)+2)
	itos = append(itos, UnkToken, PadToken)
	for _, id := range cand {
		itos = append(itos, t.Types[id])
	}
	v, err := newVocab(itos)
	if err != nil {
		panic("data.BuildVocab: " + err.Error()) // cannot happen: Types are distinct
	}
	return v
}

// NewVocab makes a vocabulary from its tokens in id order. They must start with <unk> and
// <pad>, be distinct, non-empty, valid UTF-8, and hold no line break (so that Save can write
// them one per line).
func NewVocab(tokens []string) (*Vocab, error) {
	if len(tokens) < 2 || tokens[UNK] != UnkToken || tokens[PAD] != PadToken {
		return nil, fmt.Errorf("vocabulary must start with %s (id 0) and %s (id 1)", UnkToken, PadToken)
	}
	for i, t := range tokens {
		if err := checkToken(t); err != nil {
			return nil, fmt.Errorf("token %d: %w", i, err)
		}
	}
	return newVocab(slices.Clone(tokens))
}

func newVocab(itos []string) (*Vocab, error) {
	v := &Vocab{itos: itos, stoi: make(map[string]int32, len(itos))}
	for i, t := range itos {
		if j, dup := v.stoi[t]; dup {
			return nil, fmt.Errorf("token %q appears twice (ids %d and %d)", t, j, i)
		}
		v.stoi[t] = int32(i)
	}
	return v, nil
}

func checkToken(t string) error {
	switch {
	case t == "":
		return errors.New("empty token")
	case !utf8.ValidString(t):
		return fmt.Errorf("token %q is not valid UTF-8", t)
	case strings.ContainsAny(t, "\n\r"):
		return fmt.Errorf("token %q holds a line break", t)
	}
	return nil
}

// Len is the number of tokens, specials included (25,002 for the recipe).
func (v *Vocab) Len() int { return len(v.itos) }

// Token returns the token with id (the empty string for an id out of range).
func (v *Vocab) Token(id int) string {
	if id < 0 || id >= len(v.itos) {
		return ""
	}
	return v.itos[id]
}

// Tokens returns a copy of the tokens in id order.
func (v *Vocab) Tokens() []string { return slices.Clone(v.itos) }

// ID returns token's id, or UNK when it is not in the vocabulary.
func (v *Vocab) ID(token string) int32 {
	if id, ok := v.stoi[token]; ok {
		return id
	}
	return UNK
}

// Lookup returns token's id and whether it is in the vocabulary.
func (v *Vocab) Lookup(token string) (int32, bool) {
	id, ok := v.stoi[token]
	return id, ok
}

// Encode appends the ids of tokens to dst (out-of-vocabulary tokens as UNK).
func (v *Vocab) Encode(dst []int32, tokens []string) []int32 {
	for _, t := range tokens {
		dst = append(dst, v.ID(t))
	}
	return dst
}

// WriteTo writes the vocabulary as text: one token per line, in id order (the format of
// torch_ref.py's vocab.txt).
func (v *Vocab) WriteTo(w io.Writer) (int64, error) {
	bw := bufio.NewWriter(w)
	var n int64
	for _, t := range v.itos {
		k, err := bw.WriteString(t + "\n")
		n += int64(k)
		if err != nil {
			return n, err
		}
	}
	return n, bw.Flush()
}

// Save writes the vocabulary to path atomically (a reader sees the old file or the whole new
// one).
func (v *Vocab) Save(path string) error {
	f, err := atomicfile.Create(path)
	if err != nil {
		return fmt.Errorf("save vocabulary: %w", err)
	}
	defer f.Abort()
	if _, err := v.WriteTo(f); err != nil {
		return fmt.Errorf("save vocabulary %s: %w", path, err)
	}
	return f.Commit()
}

// LoadVocab reads a vocabulary written by Save.
func LoadVocab(path string) (*Vocab, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("vocabulary %s: %w", path, unwrapPathError(err))
	}
	return ParseVocab(b, path)
}

// ParseVocab reads a vocabulary file's bytes; name is used in errors. It rejects an empty file,
// bytes that are not UTF-8, empty lines, carriage returns, duplicate tokens and a file that does
// not start with <unk> and <pad>, naming the line.
func ParseVocab(b []byte, name string) (*Vocab, error) {
	if len(b) == 0 {
		return nil, fmt.Errorf("vocabulary %s: empty file", name)
	}
	if !utf8.Valid(b) {
		line := bytes.Count(b[:invalidUTF8Offset(b)], []byte("\n")) + 1
		return nil, fmt.Errorf("vocabulary %s:%d: not valid UTF-8", name, line)
	}
	text := strings.TrimSuffix(string(b), "\n")
	lines := strings.Split(text, "\n")
	seen := make(map[string]int, len(lines))
	for i, t := range lines {
		if err := checkToken(t); err != nil {
			return nil, fmt.Errorf("vocabulary %s:%d: %w", name, i+1, err)
		}
		if j, dup := seen[t]; dup {
			return nil, fmt.Errorf("vocabulary %s:%d: token %q already on line %d", name, i+1, t, j+1)
		}
		seen[t] = i
	}
	if len(lines) < 2 || lines[UNK] != UnkToken || lines[PAD] != PadToken {
		return nil, fmt.Errorf("vocabulary %s: must start with %s (line 1) and %s (line 2)", name, UnkToken, PadToken)
	}
	return newVocab(lines)
}

func invalidUTF8Offset(b []byte) int {
	off := 0
	for off < len(b) {
		r, size := utf8.DecodeRune(b[off:])
		if r == utf8.RuneError && size == 1 {
			return off
		}
		off += size
	}
	return off
}
