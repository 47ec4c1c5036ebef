package nn

import (
	"bufio"
	"compress/gzip"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
)

// PretrainedReport says how a pretrained-vectors file matched the vocabulary.
type PretrainedReport struct {
	// Vectors is the number of vectors the file holds.
	Vectors int
	// Found is the number of vocabulary words (the padding id excepted) that got a vector;
	// Missing the number that kept their initial vector.
	Found, Missing int
}

// LoadGloVe sets the rows of vocabulary words found in a GloVe-format text file: one word per
// line followed by Dim numbers, separated by spaces (a word2vec-style first line "count dim" is
// skipped; a ".gz" file is decompressed). vocab[i] is the word of id i. Words not in the file
// keep their current row; the padding row stays zero; when a word appears twice, the first line
// wins. A malformed line is an error naming the file and the line.
func (e *Embedding) LoadGloVe(path string, vocab []string) (PretrainedReport, error) {
	var rep PretrainedReport
	if len(vocab) != e.Vocab {
		return rep, fmt.Errorf("nn: %s: the vocabulary has %d words, the embedding %d rows", path, len(vocab), e.Vocab)
	}
	f, err := os.Open(path)
	if err != nil {
		return rep, fmt.Errorf("nn: pretrained vectors: %w", err)
	}
	defer f.Close()
	var r io.Reader = f
	if strings.HasSuffix(path, ".gz") {
		gz, err := gzip.NewReader(f)
		if err != nil {
			return rep, fmt.Errorf("nn: %s: %w", path, err)
		}
		defer gz.Close()
		r = gz
	}
	ids := make(map[string]int, len(vocab))
	for i, w := range vocab {
		if i == e.PadID {
			continue
		}
		if _, dup := ids[w]; !dup {
			ids[w] = i
		}
	}
	done := make([]bool, e.Vocab)
	w := e.Weight.Data()
	D := e.Dim
	row := make([]float32, D)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimRight(sc.Text(), " \r")
		if text == "" {
			continue
		}
		fields := strings.Split(text, " ")
		if line == 1 && len(fields) == 2 {
			if _, err1 := strconv.Atoi(fields[0]); err1 == nil {
				if _, err2 := strconv.Atoi(fields[1]); err2 == nil {
					continue // word2vec header
				}
			}
		}
		if len(fields) < D+1 {
			return rep, fmt.Errorf("nn: %s:%d: want a word and %d numbers, found %d fields", path, line, D, len(fields))
		}
		nums := fields[len(fields)-D:]
		word := strings.Join(fields[:len(fields)-D], " ")
		for j, s := range nums {
			v, err := strconv.ParseFloat(s, 32)
			if err != nil {
				if len(fields) > D+1 {
					return rep, fmt.Errorf("nn: %s:%d: %q is not a number (the vectors have %d dimensions?)", path, line, s, len(fields)-1)
				}
				return rep, fmt.Errorf("nn: %s:%d: %q is not a number", path, line, s)
			}
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return rep, fmt.Errorf("nn: %s:%d: %q is not a finite number", path, line, s)
			}
			row[j] = float32(v)
		}
		rep.Vectors++
		id, ok := ids[word]
		if !ok || done[id] {
			continue
		}
		done[id] = true
		copy(w[id*D:(id+1)*D], row)
	}
	if err := sc.Err(); err != nil {
		return rep, fmt.Errorf("nn: %s: after line %d: %w", path, line, err)
	}
	if rep.Vectors == 0 {
		return rep, fmt.Errorf("nn: %s: no vectors found", path)
	}
	for i := range vocab {
		if i == e.PadID {
			continue
		}
		if done[i] {
			rep.Found++
		} else {
			rep.Missing++
		}
	}
	e.zeroPad()
	return rep, nil
}
