// Package torchbin reads the tensors of a PyTorch checkpoint written by torch.save (the zip format
// of PyTorch >= 1.6, such as a Hugging Face pytorch_model.bin) WITHOUT running any of its pickle
// code.
//
// A torch.save file is a zip archive: <name>/data.pkl holds a pickle (protocol 2) of the saved
// object, <name>/data/<key> the raw bytes of each tensor storage, <name>/byteorder the byte order.
// This package interprets the pickle's opcodes itself, with a fixed allow-list: the containers a
// state dict is made of (dict, collections.OrderedDict, tuples, lists, strings, numbers) and the
// tensor rebuild functions (torch._utils._rebuild_tensor_v2, _rebuild_parameter) over storages
// named by persistent ids ("storage", torch.<Type>Storage, key, location, numel). Any other global
// is refused with an error; nothing is ever called or imported. The result is a flat map from
// names to tensors (shape, strides, storage offset, dtype), read on demand as float32.
package torchbin

import (
	"archive/zip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"path"
	"sort"
	"strings"

	"github.com/sentibench/sentibench/internal/safetensors"
)

// DType is a storage element type, spelled as in safetensors ("F32", "F16", "BF16", "I64", ...).
type DType = safetensors.DType

// Info describes one tensor of the checkpoint.
type Info struct {
	Name   string
	DType  DType
	Shape  []int
	Stride []int
	// Offset is the storage offset in elements.
	Offset int64
	// Storage is the key of the storage (the file <name>/data/<key>).
	Storage string
}

// Elems is the number of elements.
func (i Info) Elems() int {
	n := 1
	for _, d := range i.Shape {
		n *= d
	}
	return n
}

// maxElems bounds a tensor's size.
const maxElems = 1 << 32

// maxBroadcast bounds a view with more elements than its storage holds (strides that revisit
// elements, as torch's expand makes). Without it a file of a few hundred bytes could claim a view
// of 2^32 elements of a one-element storage and make a reader allocate 16 GiB.
const maxBroadcast = 1 << 24

// File is an open torch.save checkpoint.
type File struct {
	path    string
	zr      *zip.ReadCloser
	prefix  string // "<name>/"
	Tensors map[string]Info
	storage map[string]*zip.File
	numel   map[string]int64
}

// storageTypes maps the pickled storage class to its element type.
var storageTypes = map[string]DType{
	"FloatStorage": safetensors.F32, "HalfStorage": safetensors.F16, "BFloat16Storage": safetensors.BF16,
	"DoubleStorage": safetensors.F64, "LongStorage": safetensors.I64, "IntStorage": safetensors.I32,
	"ShortStorage": safetensors.I16, "CharStorage": safetensors.I8, "ByteStorage": safetensors.U8,
	"BoolStorage": safetensors.BOOL,
}

// Open reads the checkpoint's pickle and checks every tensor against its storage.
func Open(p string) (*File, error) {
	zr, err := zip.OpenReader(p)
	if err != nil {
		if errors.Is(err, zip.ErrFormat) {
			return nil, fmt.Errorf("torchbin: %s: not a zip archive: only the zip format of torch.save (PyTorch >= 1.6) is supported; the legacy format can be converted with a current PyTorch or to safetensors", p)
		}
		return nil, fmt.Errorf("torchbin: %w", err)
	}
	f, err := open(p, zr)
	if err != nil {
		zr.Close()
		return nil, err
	}
	return f, nil
}

func open(p string, zr *zip.ReadCloser) (*File, error) {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("torchbin: %s: %s", p, fmt.Sprintf(format, a...))
	}
	var pkl *zip.File
	for _, zf := range zr.File {
		if path.Base(zf.Name) == "data.pkl" && strings.Count(zf.Name, "/") == 1 {
			if pkl != nil {
				return nil, bad("holds two data.pkl records (%s, %s)", pkl.Name, zf.Name)
			}
			pkl = zf
		}
	}
	if pkl == nil {
		return nil, bad("no <name>/data.pkl record: not a torch.save checkpoint")
	}
	f := &File{path: p, zr: zr, prefix: path.Dir(pkl.Name) + "/", Tensors: map[string]Info{},
		storage: map[string]*zip.File{}, numel: map[string]int64{}}
	for _, zf := range zr.File {
		if key, ok := strings.CutPrefix(zf.Name, f.prefix+"data/"); ok {
			f.storage[key] = zf
		}
		if zf.Name == f.prefix+"byteorder" {
			b, err := readAll(zf, 16)
			if err != nil {
				return nil, bad("reading byteorder: %v", err)
			}
			if s := strings.TrimSpace(string(b)); s != "little" {
				return nil, bad("byte order %q is not supported (little-endian only)", s)
			}
		}
	}
	if pkl.UncompressedSize64 > 1<<30 {
		return nil, bad("data.pkl is %d bytes: too large for a state dict", pkl.UncompressedSize64)
	}
	code, err := readAll(pkl, int64(pkl.UncompressedSize64))
	if err != nil {
		return nil, bad("reading data.pkl: %v", err)
	}
	u := &unpickler{code: code}
	top, err := u.run()
	if err != nil {
		return nil, bad("data.pkl: %v", err)
	}
	d, ok := top.(*pyDict)
	if !ok {
		return nil, bad("the saved object is a %s, not a state dict (a dict of tensors)", typeName(top))
	}
	for i, k := range d.keys {
		name, ok := k.(string)
		if !ok {
			return nil, bad("state dict key %v is not a string", k)
		}
		t, ok := d.vals[i].(*tensorRef)
		if !ok {
			continue // metadata entries hold no weights
		}
		info := Info{Name: name, DType: t.storage.dtype, Shape: t.shape, Stride: t.stride, Offset: t.offset, Storage: t.storage.key}
		zf, ok := f.storage[t.storage.key]
		if !ok {
			return nil, bad("tensor %q: storage %q has no record %sdata/%s", name, t.storage.key, f.prefix, t.storage.key)
		}
		size := int64(t.storage.dtype.Size())
		if n := int64(zf.UncompressedSize64) / size; int64(zf.UncompressedSize64)%size != 0 || n < t.storage.numel {
			return nil, bad("tensor %q: storage %q holds %d bytes, want %d elements of %s (truncated file?)", name, t.storage.key, zf.UncompressedSize64, t.storage.numel, t.storage.dtype)
		}
		if len(t.shape) != len(t.stride) {
			return nil, bad("tensor %q: shape %v and stride %v differ in rank", name, t.shape, t.stride)
		}
		elems := int64(1)
		for j, d := range t.shape {
			if d < 0 || t.stride[j] < 0 {
				return nil, bad("tensor %q: negative size or stride (shape %v, stride %v)", name, t.shape, t.stride)
			}
			if d > maxElems || (d > 0 && elems > maxElems/int64(d)) {
				return nil, bad("tensor %q: shape %v is too large (over %d elements)", name, t.shape, int64(maxElems))
			}
			elems *= int64(d)
		}
		if elems > t.storage.numel && elems > maxBroadcast {
			return nil, bad("tensor %q: a view of %d elements over a storage of %d (shape %v, stride %v): over %d elements repeated is not a weight", name, elems, t.storage.numel, t.shape, t.stride, int64(maxBroadcast))
		}
		if elems > 0 {
			// The last element a view reaches: offset + sum (size-1)*stride, checked term by
			// term so that no sum can overflow.
			beyond := t.offset < 0 || t.offset >= t.storage.numel
			last := t.offset
			for j, d := range t.shape {
				st := int64(t.stride[j])
				if beyond || (st > 0 && int64(d-1) > (t.storage.numel-1-last)/st) {
					beyond = true
					break
				}
				last += int64(d-1) * st
			}
			if beyond {
				return nil, bad("tensor %q: shape %v, stride %v at offset %d reach beyond its storage of %d elements", name, t.shape, t.stride, t.offset, t.storage.numel)
			}
		}
		f.numel[t.storage.key] = t.storage.numel
		f.Tensors[name] = info
	}
	return f, nil
}

func readAll(zf *zip.File, limit int64) ([]byte, error) {
	r, err := zf.Open()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return io.ReadAll(io.LimitReader(r, limit))
}

// Path is the file's path.
func (f *File) Path() string { return f.path }

// Close closes the file.
func (f *File) Close() error { return f.zr.Close() }

// List returns the tensors sorted by name.
func (f *File) List() []Info {
	out := make([]Info, 0, len(f.Tensors))
	for _, t := range f.Tensors {
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// ErrNotFound is wrapped by the error for a tensor the file does not hold.
var ErrNotFound = errors.New("no such tensor")

// Float32 reads the named tensor in row-major order as float32, converting F16, BF16 and F64. It
// checks the shape when want is not nil.
func (f *File) Float32(name string, want ...int) ([]float32, error) {
	info, ok := f.Tensors[name]
	if !ok {
		return nil, fmt.Errorf("torchbin: %s: tensor %q: %w", f.path, name, ErrNotFound)
	}
	if want != nil && !sameShape(info.Shape, want) {
		return nil, fmt.Errorf("torchbin: %s: tensor %q has shape %v, want %v", f.path, name, info.Shape, want)
	}
	var conv func(b []byte) float32
	switch info.DType {
	case safetensors.F32:
		conv = func(b []byte) float32 { return math.Float32frombits(binary.LittleEndian.Uint32(b)) }
	case safetensors.F16:
		conv = func(b []byte) float32 { return safetensors.F16ToF32(binary.LittleEndian.Uint16(b)) }
	case safetensors.BF16:
		conv = func(b []byte) float32 { return math.Float32frombits(uint32(binary.LittleEndian.Uint16(b)) << 16) }
	case safetensors.F64:
		conv = func(b []byte) float32 { return float32(math.Float64frombits(binary.LittleEndian.Uint64(b))) }
	default:
		return nil, fmt.Errorf("torchbin: %s: tensor %q has dtype %s, want a floating-point type", f.path, name, info.DType)
	}
	raw, err := f.storageBytes(info.Storage)
	if err != nil {
		return nil, fmt.Errorf("torchbin: %s: tensor %q: %w", f.path, name, err)
	}
	out := make([]float32, info.Elems())
	size := int64(info.DType.Size())
	gather(info.Shape, info.Stride, info.Offset, func(i int, at int64) {
		out[i] = conv(raw[at*size:])
	})
	return out, nil
}

// Int64 reads the named tensor as int64 (from I64 or I32).
func (f *File) Int64(name string) ([]int64, error) {
	info, ok := f.Tensors[name]
	if !ok {
		return nil, fmt.Errorf("torchbin: %s: tensor %q: %w", f.path, name, ErrNotFound)
	}
	var conv func(b []byte) int64
	switch info.DType {
	case safetensors.I64:
		conv = func(b []byte) int64 { return int64(binary.LittleEndian.Uint64(b)) }
	case safetensors.I32:
		conv = func(b []byte) int64 { return int64(int32(binary.LittleEndian.Uint32(b))) }
	default:
		return nil, fmt.Errorf("torchbin: %s: tensor %q has dtype %s, want an integer type", f.path, name, info.DType)
	}
	raw, err := f.storageBytes(info.Storage)
	if err != nil {
		return nil, fmt.Errorf("torchbin: %s: tensor %q: %w", f.path, name, err)
	}
	out := make([]int64, info.Elems())
	size := int64(info.DType.Size())
	gather(info.Shape, info.Stride, info.Offset, func(i int, at int64) {
		out[i] = conv(raw[at*size:])
	})
	return out, nil
}

func (f *File) storageBytes(key string) ([]byte, error) {
	zf := f.storage[key]
	n := int64(zf.UncompressedSize64)
	b, err := readAll(zf, n)
	if err != nil {
		return nil, fmt.Errorf("reading storage %q: %w", key, err)
	}
	if int64(len(b)) != n {
		return nil, fmt.Errorf("storage %q: read %d of %d bytes (truncated file?)", key, len(b), n)
	}
	return b, nil
}

// gather visits every element of a strided view in row-major order: fn(index, storage position).
func gather(shape, stride []int, offset int64, fn func(i int, at int64)) {
	n := 1
	for _, d := range shape {
		n *= d
	}
	if n == 0 {
		return
	}
	idx := make([]int, len(shape))
	at := offset
	for i := 0; i < n; i++ {
		fn(i, at)
		for j := len(shape) - 1; j >= 0; j-- {
			idx[j]++
			at += int64(stride[j])
			if idx[j] < shape[j] {
				break
			}
			at -= int64(stride[j]) * int64(shape[j])
			idx[j] = 0
		}
	}
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
