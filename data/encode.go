package data

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
)

// Tokens is every text of a corpus tokenized once, each distinct token (a type) stored once.
// Building the vocabulary counts types over the train part; IDs then maps each text to
// vocabulary ids. This is torch_ref.py's build_word_data, in two steps.
type Tokens struct {
	// Types are the distinct tokens, in order of first appearance over the texts in order.
	Types []string
	// Seqs[i] holds text i's tokens as indices into Types.
	Seqs [][]int32
}

// tokenizeBlock is how many texts a worker takes at a time.
const tokenizeBlock = 128

// TokenizeAll tokenizes every text with tok, on workers goroutines (default GOMAXPROCS).
func TokenizeAll(ctx context.Context, texts []string, tok Tokenizer, workers int) (*Tokens, error) {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	nBlocks := (len(texts) + tokenizeBlock - 1) / tokenizeBlock
	workers = max(1, min(workers, nBlocks))

	// Each worker interns tokens in its own table; the tables are merged afterwards, in text
	// order, so that Types come out in the same order whatever the number of workers.
	type local struct {
		index map[string]int32
		types []string
	}
	locals := make([]local, workers)
	owner := make([]int, nBlocks) // which worker tokenized each block
	seqs := make([][]int32, len(texts))
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := range locals {
		locals[w].index = make(map[string]int32, 1<<14)
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			lc := &locals[w]
			app, canAppend := tok.(TokenAppender)
			var toks []string
			var arena []int32 // ids of many texts share one allocation
			for {
				b := int(next.Add(1) - 1)
				if b >= nBlocks || ctx.Err() != nil {
					return
				}
				owner[b] = w
				for i := b * tokenizeBlock; i < min(len(texts), (b+1)*tokenizeBlock); i++ {
					if canAppend {
						toks = app.AppendTokens(toks[:0], texts[i])
					} else {
						toks = tok.Tokenize(texts[i])
					}
					if cap(arena)-len(arena) < len(toks) {
						arena = make([]int32, 0, max(1<<18, len(toks)))
					}
					start := len(arena)
					for _, t := range toks {
						id, ok := lc.index[t]
						if !ok {
							id = int32(len(lc.types))
							t = strings.Clone(t) // do not keep the whole text alive
							lc.index[t] = id
							lc.types = append(lc.types, t)
						}
						arena = append(arena, id)
					}
					seqs[i] = arena[start:len(arena):len(arena)]
				}
			}
		}(w)
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// Merge: local ids -> global ids, in text order.
	remap := make([][]int32, workers)
	for w := range remap {
		remap[w] = make([]int32, len(locals[w].types))
		for k := range remap[w] {
			remap[w][k] = -1
		}
	}
	out := &Tokens{Seqs: seqs}
	global := make(map[string]int32, len(locals[0].types))
	for b := 0; b < nBlocks; b++ {
		w := owner[b]
		rm, lt := remap[w], locals[w].types
		for i := b * tokenizeBlock; i < min(len(texts), (b+1)*tokenizeBlock); i++ {
			s := seqs[i]
			for k, id := range s {
				g := rm[id]
				if g < 0 {
					// First time this worker's type is met: one map lookup per type, not token.
					var seen bool
					if g, seen = global[lt[id]]; !seen {
						g = int32(len(out.Types))
						out.Types = append(out.Types, lt[id])
						global[lt[id]] = g
					}
					rm[id] = g
				}
				s[k] = g
			}
		}
	}
	return out, nil
}

// Counts returns how often each type occurs in the texts of indices.
func (t *Tokens) Counts(indices []int) []int64 {
	counts := make([]int64, len(t.Types))
	for _, i := range indices {
		for _, id := range t.Seqs[i] {
			counts[id]++
		}
	}
	return counts
}

// Lengths returns every text's number of tokens.
func (t *Tokens) Lengths() []int {
	out := make([]int, len(t.Seqs))
	for i, s := range t.Seqs {
		out[i] = len(s)
	}
	return out
}

// IDs maps every text's tokens to ids of v (out-of-vocabulary tokens to UNK).
func (t *Tokens) IDs(v *Vocab) [][]int32 {
	typeID := make([]int32, len(t.Types))
	for k, s := range t.Types {
		typeID[k] = v.ID(s)
	}
	total := 0
	for _, s := range t.Seqs {
		total += len(s)
	}
	arena := make([]int32, total)
	out := make([][]int32, len(t.Seqs))
	off := 0
	for i, s := range t.Seqs {
		dst := arena[off : off+len(s) : off+len(s)]
		for k, id := range s {
			dst[k] = typeID[id]
		}
		out[i] = dst
		off += len(s)
	}
	return out
}

// WordData is the recipe's word pipeline (torch_ref.py's build_word_data): tokenize every
// example with tok, build the vocabulary from the train part (the maxWords most frequent
// tokens, ties in byte-wise order, plus <unk> and <pad>; maxWords <= 0 keeps all), and map every
// example to ids. An example without a single token is an error (the models need one).
func WordData(ctx context.Context, c *Corpus, tok Tokenizer, maxWords, workers int) (*Vocab, [][]int32, error) {
	toks, err := TokenizeAll(ctx, c.Texts(), tok, workers)
	if err != nil {
		return nil, nil, err
	}
	for i, s := range toks.Seqs {
		if len(s) == 0 {
			return nil, nil, fmt.Errorf("%s (%s): the text has no %s tokens", c.Examples[i].Name, c.Source, tok.Name())
		}
	}
	v := BuildVocab(toks, c.Train, maxWords)
	return v, toks.IDs(v), nil
}

// Encode tokenizes texts with tok and maps the tokens to ids of an existing vocabulary v
// (out-of-vocabulary tokens to UNK), in parallel: for a vocabulary loaded from a checkpoint, or
// for new texts at prediction time.
func Encode(ctx context.Context, texts []string, tok Tokenizer, v *Vocab, workers int) ([][]int32, error) {
	toks, err := TokenizeAll(ctx, texts, tok, workers)
	if err != nil {
		return nil, err
	}
	return toks.IDs(v), nil
}

// Lengths returns the length of every sequence (the lengths BucketBatches and EvalBatches sort
// by).
func Lengths(seqs [][]int32) []int {
	out := make([]int, len(seqs))
	for i, s := range seqs {
		out[i] = len(s)
	}
	return out
}
