// Package safetensors reads and writes the safetensors format of Hugging Face
// (https://github.com/huggingface/safetensors): an 8-byte little-endian header length, a JSON
// header naming each tensor's dtype, shape and byte range, then the raw little-endian data.
//
// Reading checks the whole header against the file (sizes, ranges, overlaps, dtypes) and names
// the file and the tensor in every error. Writing is atomic (temporary file + rename).
package safetensors

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"sort"

	"github.com/sentibench/sentibench/internal/atomicfile"
)

// DType is a tensor element type, spelled as in the format ("F32", "F16", "BF16", "I64", ...).
type DType string

// The element types this package knows.
const (
	F64  DType = "F64"
	F32  DType = "F32"
	F16  DType = "F16"
	BF16 DType = "BF16"
	I64  DType = "I64"
	I32  DType = "I32"
	I16  DType = "I16"
	I8   DType = "I8"
	U8   DType = "U8"
	BOOL DType = "BOOL"
)

// Size is the width of one element in bytes, or 0 for an unknown type.
func (d DType) Size() int {
	switch d {
	case F64, I64:
		return 8
	case F32, I32:
		return 4
	case F16, BF16, I16:
		return 2
	case I8, U8, BOOL:
		return 1
	}
	return 0
}

// maxHeader bounds the JSON header (the format's own limit is 100 MB).
const maxHeader = 100 << 20

// Info describes one tensor of a file.
type Info struct {
	Name  string
	DType DType
	Shape []int
	// Begin and End are the byte range within the data section.
	Begin, End int64
}

// Elems is the number of elements.
func (i Info) Elems() int {
	n := 1
	for _, d := range i.Shape {
		n *= d
	}
	return n
}

// File is an open safetensors file. Tensors are read on demand.
type File struct {
	path     string
	f        *os.File
	dataOff  int64
	Tensors  map[string]Info
	Metadata map[string]string
}

type headerEntry struct {
	DType       DType   `json:"dtype"`
	Shape       []int   `json:"shape"`
	DataOffsets []int64 `json:"data_offsets"`
}

// Open reads and checks the header of the safetensors file at path.
func Open(path string) (*File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	sf, err := parse(path, f)
	if err != nil {
		f.Close()
		return nil, err
	}
	return sf, nil
}

func parse(path string, f *os.File) (*File, error) {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("safetensors: %s: %s", path, fmt.Sprintf(format, a...))
	}
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	var lenBuf [8]byte
	if _, err := io.ReadFull(f, lenBuf[:]); err != nil {
		return nil, bad("too short for a safetensors file (%d bytes)", st.Size())
	}
	n := binary.LittleEndian.Uint64(lenBuf[:])
	if n == 0 || n > maxHeader || int64(n) > st.Size()-8 {
		return nil, bad("header length %d does not fit a file of %d bytes (not a safetensors file?)", n, st.Size())
	}
	hdr := make([]byte, n)
	if _, err := io.ReadFull(f, hdr); err != nil {
		return nil, bad("reading the header: %v", err)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(hdr, &raw); err != nil {
		return nil, bad("the header is not valid JSON: %v", err)
	}
	sf := &File{path: path, f: f, dataOff: 8 + int64(n), Tensors: map[string]Info{}, Metadata: map[string]string{}}
	dataLen := st.Size() - sf.dataOff
	for name, msg := range raw {
		if name == "__metadata__" {
			if err := json.Unmarshal(msg, &sf.Metadata); err != nil {
				return nil, bad("__metadata__ is not a map of strings: %v", err)
			}
			continue
		}
		var e headerEntry
		if err := json.Unmarshal(msg, &e); err != nil {
			return nil, bad("tensor %q: bad header entry: %v", name, err)
		}
		if e.DType.Size() == 0 {
			return nil, bad("tensor %q: unknown dtype %q", name, e.DType)
		}
		if len(e.DataOffsets) != 2 || e.DataOffsets[0] < 0 || e.DataOffsets[1] < e.DataOffsets[0] || e.DataOffsets[1] > dataLen {
			return nil, bad("tensor %q: data_offsets %v outside the %d data bytes (truncated file?)", name, e.DataOffsets, dataLen)
		}
		info := Info{Name: name, DType: e.DType, Shape: e.Shape, Begin: e.DataOffsets[0], End: e.DataOffsets[1]}
		want := int64(e.DType.Size()) // bytes the shape needs, checked for overflow
		for _, d := range e.Shape {
			if d < 0 {
				return nil, bad("tensor %q: negative dimension in shape %v", name, e.Shape)
			}
			if d > 0 && want > dataLen/int64(d) {
				return nil, bad("tensor %q: shape %v of %s needs more than the file's %d data bytes", name, e.Shape, e.DType, dataLen)
			}
			want *= int64(d)
		}
		if want != info.End-info.Begin {
			return nil, bad("tensor %q: shape %v of %s needs %d bytes, its range holds %d", name, e.Shape, e.DType, want, info.End-info.Begin)
		}
		sf.Tensors[name] = info
	}
	// Ranges must not overlap.
	infos := sf.List()
	sort.Slice(infos, func(i, j int) bool { return infos[i].Begin < infos[j].Begin })
	for i := 1; i < len(infos); i++ {
		if infos[i].Begin < infos[i-1].End {
			return nil, bad("tensors %q and %q overlap", infos[i-1].Name, infos[i].Name)
		}
	}
	return sf, nil
}

// Path is the file's path.
func (sf *File) Path() string { return sf.path }

// Close closes the file.
func (sf *File) Close() error { return sf.f.Close() }

// List returns the tensors sorted by name.
func (sf *File) List() []Info {
	out := make([]Info, 0, len(sf.Tensors))
	for _, t := range sf.Tensors {
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// ErrNotFound is wrapped by the error for a tensor the file does not hold.
var ErrNotFound = errors.New("no such tensor")

// Raw returns the bytes of the named tensor.
func (sf *File) Raw(name string) (Info, []byte, error) {
	info, ok := sf.Tensors[name]
	if !ok {
		return Info{}, nil, fmt.Errorf("safetensors: %s: tensor %q: %w", sf.path, name, ErrNotFound)
	}
	buf := make([]byte, info.End-info.Begin)
	if _, err := sf.f.ReadAt(buf, sf.dataOff+info.Begin); err != nil {
		return Info{}, nil, fmt.Errorf("safetensors: %s: tensor %q: %w", sf.path, name, err)
	}
	return info, buf, nil
}

// Float32 reads the named tensor as float32, converting F16, BF16 and F64. It checks the shape
// when want is not nil.
func (sf *File) Float32(name string, want ...int) ([]float32, error) {
	info, raw, err := sf.Raw(name)
	if err != nil {
		return nil, err
	}
	if want != nil && !sameShape(info.Shape, want) {
		return nil, fmt.Errorf("safetensors: %s: tensor %q has shape %v, want %v", sf.path, name, info.Shape, want)
	}
	out := make([]float32, info.Elems())
	switch info.DType {
	case F32:
		for i := range out {
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
		}
	case F16:
		for i := range out {
			out[i] = F16ToF32(binary.LittleEndian.Uint16(raw[2*i:]))
		}
	case BF16:
		for i := range out {
			out[i] = math.Float32frombits(uint32(binary.LittleEndian.Uint16(raw[2*i:])) << 16)
		}
	case F64:
		for i := range out {
			out[i] = float32(math.Float64frombits(binary.LittleEndian.Uint64(raw[8*i:])))
		}
	default:
		return nil, fmt.Errorf("safetensors: %s: tensor %q has dtype %s, want a floating-point type", sf.path, name, info.DType)
	}
	return out, nil
}

// Int64 reads the named tensor as int64 (from I64 or I32).
func (sf *File) Int64(name string) ([]int64, error) {
	info, raw, err := sf.Raw(name)
	if err != nil {
		return nil, err
	}
	out := make([]int64, info.Elems())
	switch info.DType {
	case I64:
		for i := range out {
			out[i] = int64(binary.LittleEndian.Uint64(raw[8*i:]))
		}
	case I32:
		for i := range out {
			out[i] = int64(int32(binary.LittleEndian.Uint32(raw[4*i:])))
		}
	default:
		return nil, fmt.Errorf("safetensors: %s: tensor %q has dtype %s, want an integer type", sf.path, name, info.DType)
	}
	return out, nil
}

func sameShape(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// Tensor is one tensor to write.
type Tensor struct {
	Name  string
	DType DType
	Shape []int
	// Data holds the little-endian bytes; see FromFloat32 and FromInt64.
	Data []byte
}

// FromFloat32 makes an F32 tensor.
func FromFloat32(name string, shape []int, v []float32) Tensor {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return Tensor{Name: name, DType: F32, Shape: append([]int(nil), shape...), Data: b}
}

// FromInt64 makes an I64 tensor.
func FromInt64(name string, shape []int, v []int64) Tensor {
	b := make([]byte, 8*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint64(b[8*i:], uint64(x))
	}
	return Tensor{Name: name, DType: I64, Shape: append([]int(nil), shape...), Data: b}
}

// Encode writes the tensors (in name order) and the metadata in the safetensors format.
func Encode(w io.Writer, tensors []Tensor, metadata map[string]string) error {
	ts := append([]Tensor(nil), tensors...)
	sort.Slice(ts, func(i, j int) bool { return ts[i].Name < ts[j].Name })
	hdr := map[string]any{}
	if len(metadata) > 0 {
		hdr["__metadata__"] = metadata
	}
	var off int64
	for i, t := range ts {
		if i > 0 && ts[i-1].Name == t.Name {
			return fmt.Errorf("safetensors: tensor %q given twice", t.Name)
		}
		n := 1
		for _, d := range t.Shape {
			n *= d
		}
		if t.DType.Size() == 0 || n*t.DType.Size() != len(t.Data) {
			return fmt.Errorf("safetensors: tensor %q: %d bytes do not match shape %v of %s", t.Name, len(t.Data), t.Shape, t.DType)
		}
		shape := t.Shape
		if shape == nil {
			shape = []int{}
		}
		hdr[t.Name] = headerEntry{DType: t.DType, Shape: shape, DataOffsets: []int64{off, off + int64(len(t.Data))}}
		off += int64(len(t.Data))
	}
	js, err := json.Marshal(hdr)
	if err != nil {
		return fmt.Errorf("safetensors: %w", err)
	}
	for len(js)%8 != 0 { // the reference implementation pads the header with spaces to 8 bytes
		js = append(js, ' ')
	}
	var lenBuf [8]byte
	binary.LittleEndian.PutUint64(lenBuf[:], uint64(len(js)))
	if _, err := w.Write(lenBuf[:]); err != nil {
		return err
	}
	if _, err := w.Write(js); err != nil {
		return err
	}
	for _, t := range ts {
		if _, err := w.Write(t.Data); err != nil {
			return err
		}
	}
	return nil
}

// WriteFile writes the tensors to path atomically.
func WriteFile(path string, tensors []Tensor, metadata map[string]string) error {
	f, err := atomicfile.Create(path)
	if err != nil {
		return fmt.Errorf("safetensors: %w", err)
	}
	defer f.Abort()
	if err := Encode(f, tensors, metadata); err != nil {
		return fmt.Errorf("safetensors: write %s: %w", path, err)
	}
	if err := f.Commit(); err != nil {
		return fmt.Errorf("safetensors: %w", err)
	}
	return nil
}

// F16ToF32 converts an IEEE 754 half-precision number to float32.
func F16ToF32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h) & 0x3ff
	switch {
	case exp == 0x1f: // Inf or NaN
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	case exp == 0:
		if mant == 0 {
			return math.Float32frombits(sign)
		}
		// subnormal: normalise
		e := uint32(127 - 15 + 1)
		for mant&0x400 == 0 {
			mant <<= 1
			e--
		}
		mant &= 0x3ff
		return math.Float32frombits(sign | e<<23 | mant<<13)
	}
	return math.Float32frombits(sign | (exp+127-15)<<23 | mant<<13)
}

// F32ToF16 converts a float32 to half precision, rounding to nearest even.
func F32ToF16(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int32(b>>23) & 0xff
	mant := b & 0x7fffff
	if exp == 0xff { // Inf/NaN
		if mant != 0 {
			return sign | 0x7e00
		}
		return sign | 0x7c00
	}
	e := exp - 127 + 15
	if e >= 0x1f {
		return sign | 0x7c00 // overflow -> Inf
	}
	if e <= 0 {
		if e < -10 {
			return sign // underflow -> 0
		}
		mant |= 0x800000
		shift := uint32(14 - e)
		half := uint32(1) << (shift - 1)
		r := mant >> shift
		rem := mant & (1<<shift - 1)
		if rem > half || (rem == half && r&1 == 1) {
			r++
		}
		return sign | uint16(r)
	}
	r := uint16(e)<<10 | uint16(mant>>13)
	rem := mant & 0x1fff
	if rem > 0x1000 || (rem == 0x1000 && r&1 == 1) {
		r++ // may carry into the exponent, which is the right result
	}
	return sign | r
}
