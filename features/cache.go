package features

import (
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"syscall"

	"github.com/sentibench/sentibench/internal/atomicfile"
	"github.com/sentibench/sentibench/internal/safetensors"
	"github.com/sentibench/sentibench/nn"
)

// Format names this layout; a directory written in another format is rebuilt, never read.
const Format = "sentibench-features-v1"

// File names inside a cache directory.
const (
	MetaFile     = "meta.json"
	IndexFile    = "index.bin"
	DataFile     = "features.f16"
	ProgressFile = "progress.json"
	LockFile     = "lock"
)

// indexMagic starts index.bin; then the 32-byte key, the review count (uint64), the width
// (uint32), then per review the offset in rows (uint64) and the length (uint32).
const indexMagic = "SBFIDX01"

const indexHeader = len(indexMagic) + 32 + 8 + 4

// Meta is the content of meta.json: the key, what it was computed from, and the layout.
type Meta struct {
	Format string `json:"format"`
	// Key is the hex SHA-256 that identifies the cache (see package documentation).
	Key string `json:"key"`
	// What the key was made of.
	Encoder        string `json:"encoder"`
	ModelType      string `json:"model_type"`
	WeightsHash    string `json:"weights_hash"`
	TokenizerHash  string `json:"tokenizer_hash"`
	MaxLen         int    `json:"max_len"`
	TruncateHead   int    `json:"truncate_head,omitempty"`
	Layers         string `json:"layers,omitempty"`
	DataHash       string `json:"data_hash"`
	Reviews        int    `json:"reviews"`
	Dim            int    `json:"dim"`
	WordPieces     int64  `json:"word_pieces"`
	Bytes          int64  `json:"bytes"`
	DType          string `json:"dtype"`
	BatchTokens    int    `json:"batch_tokens"`
	BatchSize      int    `json:"batch_size"`
	ChunkTokens    int    `json:"chunk_tokens"`
	Chunks         int    `json:"chunks"`
	EncoderWorkers int    `json:"encoder_workers"`
}

type progressState struct {
	Key        string `json:"key"`
	ChunksDone int    `json:"chunks_done"`
	Chunks     int    `json:"chunks"`
}

func readMeta(dir string) (Meta, error) {
	p := filepath.Join(dir, MetaFile)
	b, err := os.ReadFile(p)
	if err != nil {
		return Meta{}, fmt.Errorf("features: %w", err)
	}
	var m Meta
	if err := json.Unmarshal(b, &m); err != nil {
		return Meta{}, fmt.Errorf("features: %s is damaged (not valid JSON: %v); delete %s to rebuild", p, err, dir)
	}
	if m.Format != Format {
		return Meta{}, fmt.Errorf("features: %s has format %q, want %q; delete %s to rebuild", p, m.Format, Format, dir)
	}
	// The sizes are checked with divisions, so that no product can overflow into agreement.
	if len(m.Key) != 64 || m.Reviews < 0 || m.Dim <= 0 || m.WordPieces < 0 || m.Chunks < 0 ||
		m.WordPieces > math.MaxInt64/2/int64(m.Dim) || m.Bytes != m.WordPieces*int64(m.Dim)*2 {
		return Meta{}, fmt.Errorf("features: %s is damaged (inconsistent sizes or key); delete %s to rebuild", p, dir)
	}
	return m, nil
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("features: %w", err)
	}
	if err := atomicfile.WriteFile(path, append(b, '\n')); err != nil {
		return fmt.Errorf("features: %w", err)
	}
	return nil
}

// readProgress returns the number of complete chunks (of chunks) recorded for key (0 when none).
func readProgress(dir, key string, chunks int) (int, error) {
	p := filepath.Join(dir, ProgressFile)
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("features: %w", err)
	}
	var s progressState
	if err := json.Unmarshal(b, &s); err != nil {
		return 0, fmt.Errorf("features: %s is damaged (%v); delete %s to rebuild", p, err, dir)
	}
	if s.Key != key {
		return 0, fmt.Errorf("features: %s belongs to another cache (key %.16s, want %.16s)", p, s.Key, key)
	}
	if s.Chunks != chunks || s.ChunksDone < 0 || s.ChunksDone > chunks {
		return 0, fmt.Errorf("features: %s is damaged (%d of %d chunks done, meta.json plans %d); delete %s to rebuild", p, s.ChunksDone, s.Chunks, chunks, dir)
	}
	return s.ChunksDone, nil
}

func encodeIndex(key string, dim int, offsets []int64, lengths []int32) ([]byte, error) {
	k, err := hex.DecodeString(key)
	if err != nil || len(k) != 32 {
		return nil, fmt.Errorf("features: bad key %q", key)
	}
	b := make([]byte, indexHeader+12*len(offsets))
	copy(b, indexMagic)
	copy(b[len(indexMagic):], k)
	binary.LittleEndian.PutUint64(b[len(indexMagic)+32:], uint64(len(offsets)))
	binary.LittleEndian.PutUint32(b[len(indexMagic)+40:], uint32(dim))
	for i := range offsets {
		binary.LittleEndian.PutUint64(b[indexHeader+12*i:], uint64(offsets[i]))
		binary.LittleEndian.PutUint32(b[indexHeader+12*i+8:], uint32(lengths[i]))
	}
	return b, nil
}

// readIndex reads index.bin and checks it against the metadata.
func readIndex(dir string, m Meta) (offsets []int64, lengths []int32, err error) {
	p := filepath.Join(dir, IndexFile)
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, nil, fmt.Errorf("features: %w", err)
	}
	bad := func(format string, a ...any) error {
		return fmt.Errorf("features: %s: %s; delete %s to rebuild", p, fmt.Sprintf(format, a...), dir)
	}
	if len(b) < indexHeader || (len(b)-indexHeader)%12 != 0 || (len(b)-indexHeader)/12 != m.Reviews {
		return nil, nil, bad("%d bytes, want %d + 12 per review for %d reviews (truncated or damaged)", len(b), indexHeader, m.Reviews)
	}
	if string(b[:len(indexMagic)]) != indexMagic {
		return nil, nil, bad("not an index file")
	}
	if key := hex.EncodeToString(b[len(indexMagic) : len(indexMagic)+32]); key != m.Key {
		return nil, nil, bad("key %.16s does not match meta.json's %.16s", key, m.Key)
	}
	if n := binary.LittleEndian.Uint64(b[len(indexMagic)+32:]); n != uint64(m.Reviews) {
		return nil, nil, bad("%d reviews, meta.json says %d", n, m.Reviews)
	}
	if d := binary.LittleEndian.Uint32(b[len(indexMagic)+40:]); d != uint32(m.Dim) {
		return nil, nil, bad("width %d, meta.json says %d", d, m.Dim)
	}
	offsets = make([]int64, m.Reviews)
	lengths = make([]int32, m.Reviews)
	for i := range offsets {
		off := binary.LittleEndian.Uint64(b[indexHeader+12*i:])
		n := binary.LittleEndian.Uint32(b[indexHeader+12*i+8:])
		if n == 0 || n > math.MaxInt32 || off > uint64(m.WordPieces) || uint64(n) > uint64(m.WordPieces)-off {
			return nil, nil, bad("review %d: %d word pieces at row %d lie outside the %d rows", i, n, off, m.WordPieces)
		}
		offsets[i], lengths[i] = int64(off), int32(n)
	}
	return offsets, lengths, nil
}

// Reader reads a complete feature cache through a read-only memory map. It is safe for
// concurrent use; Close unmaps the file, after which no batch may be read.
type Reader struct {
	dir     string
	meta    Meta
	f       *os.File
	data    []byte
	offsets []int64
	lengths []int32
}

// Open maps the complete cache in dir. It checks every file against meta.json (sizes, key,
// index bounds) and fails with a message naming the file for a missing, truncated or damaged
// one, or for a build that has not finished (run Build again to resume it).
func Open(dir string) (*Reader, error) {
	m, err := readMeta(dir)
	if err != nil {
		return nil, err
	}
	done, err := readProgress(dir, m.Key, m.Chunks)
	if err != nil {
		return nil, err
	}
	if done != m.Chunks {
		return nil, fmt.Errorf("features: %s is incomplete (%d of %d chunks built); run the build again to resume it", dir, done, m.Chunks)
	}
	offsets, lengths, err := readIndex(dir, m)
	if err != nil {
		return nil, err
	}
	p := filepath.Join(dir, DataFile)
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("features: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("features: %w", err)
	}
	if st.Size() != m.Bytes {
		f.Close()
		return nil, fmt.Errorf("features: %s is %d bytes, want %d (truncated or damaged); delete %s to rebuild", p, st.Size(), m.Bytes, dir)
	}
	r := &Reader{dir: dir, meta: m, f: f, offsets: offsets, lengths: lengths}
	if m.Bytes > 0 {
		if m.Bytes > math.MaxInt {
			f.Close()
			return nil, fmt.Errorf("features: %s is too large to map on this platform", p)
		}
		if r.data, err = syscall.Mmap(int(f.Fd()), 0, int(m.Bytes), syscall.PROT_READ, syscall.MAP_SHARED); err != nil {
			f.Close()
			return nil, fmt.Errorf("features: mapping %s: %w", p, err)
		}
	}
	return r, nil
}

// Close unmaps and closes the data file.
func (r *Reader) Close() error {
	var err error
	if r.data != nil {
		err = syscall.Munmap(r.data)
		r.data = nil
	}
	if cerr := r.f.Close(); err == nil {
		err = cerr
	}
	return err
}

// Dir is the cache directory.
func (r *Reader) Dir() string { return r.dir }

// Meta returns the cache's metadata.
func (r *Reader) Meta() Meta { return r.meta }

// Len is the number of reviews.
func (r *Reader) Len() int { return len(r.lengths) }

// Dim is the width of a hidden state.
func (r *Reader) Dim() int { return r.meta.Dim }

// Length is review i's length in word pieces, [CLS] and [SEP] included.
func (r *Reader) Length(i int) int { return int(r.lengths[i]) }

// Lengths returns every review's length in word pieces.
func (r *Reader) Lengths() []int {
	out := make([]int, len(r.lengths))
	for i, n := range r.lengths {
		out[i] = int(n)
	}
	return out
}

// Review returns review i's hidden states as float32, [Length(i), Dim()] row-major, in dst when
// it is large enough.
func (r *Reader) Review(i int, dst []float32) ([]float32, error) {
	if r.data == nil {
		return nil, fmt.Errorf("features: %s: reader is closed", r.dir)
	}
	if i < 0 || i >= len(r.lengths) {
		return nil, fmt.Errorf("features: review %d out of range [0, %d)", i, len(r.lengths))
	}
	n := int(r.lengths[i]) * r.meta.Dim
	if cap(dst) < n {
		dst = make([]float32, n)
	}
	dst = dst[:n]
	src := r.data[r.offsets[i]*int64(r.meta.Dim)*2:]
	for j := range dst {
		dst[j] = f16[binary.LittleEndian.Uint16(src[2*j:])]
	}
	return dst, nil
}

// Batch returns the batch of the given reviews as the bigru head reads it: Lengths, T (the
// longest), Dim, and Feats time-major [T, B, Dim] (the state of review b at step t starts at
// (t*B+b)*Dim), float32, zero past each review's end. The indices must be sorted by length,
// longest first (as the recipe's batches are).
func (r *Reader) Batch(indices []int) (*nn.Input, error) {
	in := &nn.Input{}
	return in, r.BatchInto(indices, in)
}

// BatchInto is Batch reusing in's Feats and Lengths when large enough, so a training loop
// allocates nothing per batch.
func (r *Reader) BatchInto(indices []int, in *nn.Input) error {
	if r.data == nil {
		return fmt.Errorf("features: %s: reader is closed", r.dir)
	}
	if len(indices) == 0 {
		return fmt.Errorf("features: empty batch")
	}
	for k, i := range indices {
		if i < 0 || i >= len(r.lengths) {
			return fmt.Errorf("features: review %d out of range [0, %d)", i, len(r.lengths))
		}
		if k > 0 && r.lengths[i] > r.lengths[indices[k-1]] {
			return fmt.Errorf("features: batch not sorted by length, longest first: review %d (%d word pieces) follows review %d (%d)",
				i, r.lengths[i], indices[k-1], r.lengths[indices[k-1]])
		}
	}
	B, D := len(indices), r.meta.Dim
	T := int(r.lengths[indices[0]])
	in.T, in.Dim, in.IDs = T, D, nil
	in.Lengths = in.Lengths[:0]
	n := T * B * D
	if cap(in.Feats) < n {
		in.Feats = make([]float32, n)
	}
	in.Feats = in.Feats[:n]
	for b, i := range indices {
		L := int(r.lengths[i])
		in.Lengths = append(in.Lengths, L)
		src := r.data[r.offsets[i]*int64(D)*2:]
		for t := 0; t < T; t++ {
			dst := in.Feats[(t*B+b)*D : (t*B+b+1)*D]
			if t >= L {
				clear(dst)
				continue
			}
			row := src[t*D*2:]
			for j := range dst {
				dst[j] = f16[binary.LittleEndian.Uint16(row[2*j:])]
			}
		}
	}
	return nil
}

// f16 maps every float16 bit pattern to its float32 value (256 KiB, computed once).
var f16 = func() []float32 {
	t := make([]float32, 1<<16)
	for h := range t {
		t[h] = safetensors.F16ToF32(uint16(h))
	}
	return t
}()
