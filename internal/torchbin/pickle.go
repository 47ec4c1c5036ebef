package torchbin

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
)

// The values the unpickler builds. Python objects outside this list are refused.
type (
	pyTuple  []any
	pyList   struct{ items []any }
	pyGlobal struct{ module, name string }
	// pyDict keeps insertion order (a state dict's order).
	pyDict struct {
		keys, vals []any
		index      map[any]int
	}
	storageRef struct {
		dtype DType
		key   string
		numel int64
	}
	tensorRef struct {
		storage *storageRef
		offset  int64
		shape   []int
		stride  []int
	}
)

func newDict() *pyDict { return &pyDict{index: map[any]int{}} }

func (d *pyDict) set(k, v any) error {
	switch k.(type) {
	case string, int64, bool, nil:
	default:
		return fmt.Errorf("dict key of type %s is not supported", typeName(k))
	}
	if i, ok := d.index[k]; ok {
		d.vals[i] = v
		return nil
	}
	d.index[k] = len(d.keys)
	d.keys = append(d.keys, k)
	d.vals = append(d.vals, v)
	return nil
}

func typeName(v any) string {
	switch v := v.(type) {
	case nil:
		return "None"
	case bool:
		return "bool"
	case int64:
		return "int"
	case float64:
		return "float"
	case string:
		return "str"
	case []byte:
		return "bytes"
	case pyTuple:
		return "tuple"
	case *pyList:
		return "list"
	case *pyDict:
		return "dict"
	case *pyGlobal:
		return "global " + v.module + "." + v.name
	case *storageRef:
		return "storage"
	case *tensorRef:
		return "tensor"
	}
	return fmt.Sprintf("%T", v)
}

// allowedGlobals are the only globals a checkpoint may name; everything else is refused.
var allowedGlobals = map[string]bool{
	"collections.OrderedDict":                    true,
	"torch._utils._rebuild_tensor_v2":            true,
	"torch._utils._rebuild_parameter":            true,
	"torch._utils._rebuild_parameter_with_state": true,
}

type unpickler struct {
	code  []byte
	pos   int
	stack []any
	marks []int
	memo  map[int64]any
}

func (u *unpickler) read(n int) ([]byte, error) {
	if n < 0 || u.pos+n > len(u.code) {
		return nil, fmt.Errorf("truncated pickle at byte %d (want %d more bytes)", u.pos, n)
	}
	b := u.code[u.pos : u.pos+n]
	u.pos += n
	return b, nil
}

func (u *unpickler) readLine() (string, error) {
	i := strings.IndexByte(string(u.code[u.pos:]), '\n')
	if i < 0 {
		return "", fmt.Errorf("truncated pickle at byte %d (no end of line)", u.pos)
	}
	s := string(u.code[u.pos : u.pos+i])
	u.pos += i + 1
	return s, nil
}

func (u *unpickler) push(v any) { u.stack = append(u.stack, v) }

func (u *unpickler) pop() (any, error) {
	if len(u.stack) == 0 || (len(u.marks) > 0 && len(u.stack) <= u.marks[len(u.marks)-1]) {
		return nil, fmt.Errorf("stack underflow at byte %d", u.pos)
	}
	v := u.stack[len(u.stack)-1]
	u.stack = u.stack[:len(u.stack)-1]
	return v, nil
}

// popMark returns the items above the last mark and removes them and the mark.
func (u *unpickler) popMark() ([]any, error) {
	if len(u.marks) == 0 {
		return nil, fmt.Errorf("no mark on the stack at byte %d", u.pos)
	}
	m := u.marks[len(u.marks)-1]
	u.marks = u.marks[:len(u.marks)-1]
	items := append([]any(nil), u.stack[m:]...)
	u.stack = u.stack[:m]
	return items, nil
}

func (u *unpickler) top() (any, error) {
	if len(u.stack) == 0 {
		return nil, fmt.Errorf("empty stack at byte %d", u.pos)
	}
	return u.stack[len(u.stack)-1], nil
}

func (u *unpickler) uint(n int) (uint64, error) {
	b, err := u.read(n)
	if err != nil {
		return 0, err
	}
	var v uint64
	for i := n - 1; i >= 0; i-- {
		v = v<<8 | uint64(b[i])
	}
	return v, nil
}

// run executes the pickle and returns the object STOP leaves.
func (u *unpickler) run() (any, error) {
	u.memo = map[int64]any{}
	for {
		if u.pos >= len(u.code) {
			return nil, fmt.Errorf("pickle ends without STOP")
		}
		op := u.code[u.pos]
		at := u.pos
		u.pos++
		if err := u.step(op); err != nil {
			if err == errStop {
				if len(u.stack) != 1 {
					return nil, fmt.Errorf("STOP with %d values on the stack", len(u.stack))
				}
				return u.stack[0], nil
			}
			return nil, fmt.Errorf("opcode 0x%02x at byte %d: %w", op, at, err)
		}
	}
}

var errStop = fmt.Errorf("stop")

func (u *unpickler) step(op byte) error {
	switch op {
	case 0x80: // PROTO
		v, err := u.uint(1)
		if err != nil {
			return err
		}
		if v > 5 {
			return fmt.Errorf("pickle protocol %d is not supported", v)
		}
	case 0x95: // FRAME
		_, err := u.uint(8)
		return err
	case '.': // STOP
		return errStop
	case '(': // MARK
		u.marks = append(u.marks, len(u.stack))
	case '0': // POP
		if len(u.marks) > 0 && len(u.stack) == u.marks[len(u.marks)-1] {
			u.marks = u.marks[:len(u.marks)-1]
			return nil
		}
		_, err := u.pop()
		return err
	case '1': // POP_MARK
		_, err := u.popMark()
		return err
	case '2': // DUP
		v, err := u.top()
		if err != nil {
			return err
		}
		u.push(v)
	case 'N':
		u.push(nil)
	case 0x88:
		u.push(true)
	case 0x89:
		u.push(false)
	case 'I': // INT (text)
		s, err := u.readLine()
		if err != nil {
			return err
		}
		switch s {
		case "01":
			u.push(true)
		case "00":
			u.push(false)
		default:
			v, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				return fmt.Errorf("INT %q: %v", s, err)
			}
			u.push(v)
		}
	case 'J': // BININT
		v, err := u.uint(4)
		if err != nil {
			return err
		}
		u.push(int64(int32(uint32(v))))
	case 'K': // BININT1
		v, err := u.uint(1)
		if err != nil {
			return err
		}
		u.push(int64(v))
	case 'M': // BININT2
		v, err := u.uint(2)
		if err != nil {
			return err
		}
		u.push(int64(v))
	case 0x8a, 0x8b: // LONG1, LONG4
		size := 1
		if op == 0x8b {
			size = 4
		}
		n, err := u.uint(size)
		if err != nil {
			return err
		}
		if n > 8 {
			return fmt.Errorf("integer of %d bytes is out of range", n)
		}
		b, err := u.read(int(n))
		if err != nil {
			return err
		}
		var v int64
		if n > 0 {
			x := new(big.Int)
			be := make([]byte, n)
			for i := range be {
				be[i] = b[int(n)-1-i]
			}
			x.SetBytes(be)
			if b[n-1]&0x80 != 0 { // negative: two's complement
				x.Sub(x, new(big.Int).Lsh(big.NewInt(1), uint(8*n)))
			}
			if !x.IsInt64() {
				return fmt.Errorf("integer %s is out of range", x)
			}
			v = x.Int64()
		}
		u.push(v)
	case 'G': // BINFLOAT
		b, err := u.read(8)
		if err != nil {
			return err
		}
		u.push(math.Float64frombits(binary.BigEndian.Uint64(b)))
	case 'X', 0x8c, 0x8d, 'T', 'U': // BINUNICODE, SHORT_BINUNICODE, BINUNICODE8, BINSTRING, SHORT_BINSTRING
		size := map[byte]int{'X': 4, 0x8c: 1, 0x8d: 8, 'T': 4, 'U': 1}[op]
		n, err := u.uint(size)
		if err != nil {
			return err
		}
		if n > uint64(len(u.code)) {
			return fmt.Errorf("string of %d bytes in a pickle of %d", n, len(u.code))
		}
		b, err := u.read(int(n))
		if err != nil {
			return err
		}
		u.push(string(b))
	case 'B', 'C': // BINBYTES, SHORT_BINBYTES
		size := 4
		if op == 'C' {
			size = 1
		}
		n, err := u.uint(size)
		if err != nil {
			return err
		}
		if n > uint64(len(u.code)) {
			return fmt.Errorf("bytes of %d bytes in a pickle of %d", n, len(u.code))
		}
		b, err := u.read(int(n))
		if err != nil {
			return err
		}
		u.push(append([]byte(nil), b...))
	case ')':
		u.push(pyTuple{})
	case 't':
		items, err := u.popMark()
		if err != nil {
			return err
		}
		u.push(pyTuple(items))
	case 0x85, 0x86, 0x87: // TUPLE1..3
		n := int(op - 0x84)
		if len(u.stack) < n || (len(u.marks) > 0 && len(u.stack)-n < u.marks[len(u.marks)-1]) {
			return fmt.Errorf("stack underflow")
		}
		items := append(pyTuple(nil), u.stack[len(u.stack)-n:]...)
		u.stack = u.stack[:len(u.stack)-n]
		u.push(items)
	case ']':
		u.push(&pyList{})
	case 'l':
		items, err := u.popMark()
		if err != nil {
			return err
		}
		u.push(&pyList{items: items})
	case 'a', 'e': // APPEND, APPENDS
		var items []any
		if op == 'a' {
			v, err := u.pop()
			if err != nil {
				return err
			}
			items = []any{v}
		} else {
			var err error
			if items, err = u.popMark(); err != nil {
				return err
			}
		}
		t, err := u.top()
		if err != nil {
			return err
		}
		l, ok := t.(*pyList)
		if !ok {
			return fmt.Errorf("APPEND to a %s", typeName(t))
		}
		l.items = append(l.items, items...)
	case '}':
		u.push(newDict())
	case 'd', 's', 'u': // DICT, SETITEM, SETITEMS
		var items []any
		if op == 's' {
			v, err := u.pop()
			if err != nil {
				return err
			}
			k, err := u.pop()
			if err != nil {
				return err
			}
			items = []any{k, v}
		} else {
			var err error
			if items, err = u.popMark(); err != nil {
				return err
			}
		}
		if len(items)%2 != 0 {
			return fmt.Errorf("odd number of dict items")
		}
		var d *pyDict
		if op == 'd' {
			d = newDict()
			u.push(d)
		} else {
			t, err := u.top()
			if err != nil {
				return err
			}
			var ok bool
			if d, ok = t.(*pyDict); !ok {
				return fmt.Errorf("SETITEM on a %s", typeName(t))
			}
		}
		for i := 0; i < len(items); i += 2 {
			if err := d.set(items[i], items[i+1]); err != nil {
				return err
			}
		}
	case 'c': // GLOBAL
		mod, err := u.readLine()
		if err != nil {
			return err
		}
		name, err := u.readLine()
		if err != nil {
			return err
		}
		return u.global(mod, name)
	case 0x93: // STACK_GLOBAL
		name, err := u.pop()
		if err != nil {
			return err
		}
		mod, err := u.pop()
		if err != nil {
			return err
		}
		m, ok1 := mod.(string)
		n, ok2 := name.(string)
		if !ok1 || !ok2 {
			return fmt.Errorf("STACK_GLOBAL with non-string names")
		}
		return u.global(m, n)
	case 'Q': // BINPERSID
		pid, err := u.pop()
		if err != nil {
			return err
		}
		s, err := persistentStorage(pid)
		if err != nil {
			return err
		}
		u.push(s)
	case 'R': // REDUCE
		args, err := u.pop()
		if err != nil {
			return err
		}
		fn, err := u.pop()
		if err != nil {
			return err
		}
		v, err := reduce(fn, args)
		if err != nil {
			return err
		}
		u.push(v)
	case 'b': // BUILD: the state of an OrderedDict (its _metadata) or of a tensor is dropped
		if _, err := u.pop(); err != nil {
			return err
		}
		t, err := u.top()
		if err != nil {
			return err
		}
		switch t.(type) {
		case *pyDict, *tensorRef:
		default:
			return fmt.Errorf("BUILD on a %s", typeName(t))
		}
	case 'h', 'j', 'g': // BINGET, LONG_BINGET, GET
		var idx int64
		switch op {
		case 'h':
			v, err := u.uint(1)
			if err != nil {
				return err
			}
			idx = int64(v)
		case 'j':
			v, err := u.uint(4)
			if err != nil {
				return err
			}
			idx = int64(v)
		default:
			s, err := u.readLine()
			if err != nil {
				return err
			}
			if idx, err = strconv.ParseInt(s, 10, 64); err != nil {
				return fmt.Errorf("GET %q: %v", s, err)
			}
		}
		v, ok := u.memo[idx]
		if !ok {
			return fmt.Errorf("memo entry %d is not set", idx)
		}
		u.push(v)
	case 'q', 'r', 'p', 0x94: // BINPUT, LONG_BINPUT, PUT, MEMOIZE
		var idx int64
		switch op {
		case 'q':
			v, err := u.uint(1)
			if err != nil {
				return err
			}
			idx = int64(v)
		case 'r':
			v, err := u.uint(4)
			if err != nil {
				return err
			}
			idx = int64(v)
		case 'p':
			s, err := u.readLine()
			if err != nil {
				return err
			}
			if idx, err = strconv.ParseInt(s, 10, 64); err != nil {
				return fmt.Errorf("PUT %q: %v", s, err)
			}
		default:
			idx = int64(len(u.memo))
		}
		v, err := u.top()
		if err != nil {
			return err
		}
		u.memo[idx] = v
	default:
		return fmt.Errorf("opcode not supported in a tensor checkpoint (only plain state dicts can be read)")
	}
	return nil
}

func (u *unpickler) global(mod, name string) error {
	full := mod + "." + name
	if mod == "torch" {
		if _, ok := storageTypes[name]; ok {
			u.push(&pyGlobal{mod, name})
			return nil
		}
	}
	if !allowedGlobals[full] {
		return fmt.Errorf("refusing to load the global %s (only plain tensor state dicts can be read; nothing in the file is executed)", full)
	}
	u.push(&pyGlobal{mod, name})
	return nil
}

// persistentStorage decodes torch.save's persistent id ("storage", torch.<T>Storage, key, location, numel).
func persistentStorage(pid any) (*storageRef, error) {
	t, ok := pid.(pyTuple)
	if !ok || len(t) != 5 || t[0] != "storage" {
		return nil, fmt.Errorf("persistent id %v is not a tensor storage", pid)
	}
	g, ok := t[1].(*pyGlobal)
	if !ok || g.module != "torch" {
		return nil, fmt.Errorf("persistent id: storage type %v is not a torch storage class", t[1])
	}
	dtype, ok := storageTypes[g.name]
	if !ok {
		return nil, fmt.Errorf("storage type torch.%s is not supported", g.name)
	}
	key, ok := t[2].(string)
	if !ok || key == "" || strings.ContainsAny(key, "/\\") {
		return nil, fmt.Errorf("persistent id: bad storage key %v", t[2])
	}
	numel, ok := t[4].(int64)
	if !ok || numel < 0 {
		return nil, fmt.Errorf("persistent id: bad storage size %v", t[4])
	}
	return &storageRef{dtype: dtype, key: key, numel: numel}, nil
}

func intTuple(v any, what string) ([]int, error) {
	t, ok := v.(pyTuple)
	if !ok {
		return nil, fmt.Errorf("%s is a %s, want a tuple", what, typeName(v))
	}
	out := make([]int, len(t))
	for i, x := range t {
		n, ok := x.(int64)
		if !ok || n < 0 || n > math.MaxInt32*64 {
			return nil, fmt.Errorf("%s holds %v, want sizes", what, x)
		}
		out[i] = int(n)
	}
	return out, nil
}

// reduce applies one of the allowed globals to its arguments.
func reduce(fn, args any) (any, error) {
	g, ok := fn.(*pyGlobal)
	if !ok {
		return nil, fmt.Errorf("REDUCE on a %s", typeName(fn))
	}
	a, ok := args.(pyTuple)
	if !ok {
		return nil, fmt.Errorf("REDUCE of %s.%s with arguments of type %s", g.module, g.name, typeName(args))
	}
	switch g.module + "." + g.name {
	case "collections.OrderedDict":
		if len(a) != 0 {
			return nil, fmt.Errorf("OrderedDict with arguments is not supported")
		}
		return newDict(), nil
	case "torch._utils._rebuild_tensor_v2":
		// (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
		if len(a) < 4 {
			return nil, fmt.Errorf("_rebuild_tensor_v2 with %d arguments", len(a))
		}
		s, ok := a[0].(*storageRef)
		if !ok {
			return nil, fmt.Errorf("_rebuild_tensor_v2 of a %s, not a storage", typeName(a[0]))
		}
		off, ok := a[1].(int64)
		if !ok {
			return nil, fmt.Errorf("_rebuild_tensor_v2: storage offset %v", a[1])
		}
		shape, err := intTuple(a[2], "tensor size")
		if err != nil {
			return nil, err
		}
		stride, err := intTuple(a[3], "tensor stride")
		if err != nil {
			return nil, err
		}
		return &tensorRef{storage: s, offset: off, shape: shape, stride: stride}, nil
	case "torch._utils._rebuild_parameter", "torch._utils._rebuild_parameter_with_state":
		if len(a) < 1 {
			return nil, fmt.Errorf("%s without arguments", g.name)
		}
		t, ok := a[0].(*tensorRef)
		if !ok {
			return nil, fmt.Errorf("%s of a %s", g.name, typeName(a[0]))
		}
		return t, nil
	}
	return nil, fmt.Errorf("calling %s.%s is not supported", g.module, g.name)
}
