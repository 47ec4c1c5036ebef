package gpu

import (
	"errors"
	"testing"
)

// hostAllocator hands out fake addresses and counts what it holds; limit > 0 makes it fail
// with errOutOfMemory beyond that many bytes.
type hostAllocator struct {
	next   uintptr
	held   map[uintptr]int64
	bytes  int64
	limit  int64
	allocs int
}

func (h *hostAllocator) alloc(n int64) (uintptr, error) {
	if h.limit > 0 && h.bytes+n > h.limit {
		return 0, errOutOfMemory
	}
	if h.held == nil {
		h.held = map[uintptr]int64{}
		h.next = 1 << 20
	}
	p := h.next
	h.next += uintptr(n)
	h.held[p] = n
	h.bytes += n
	h.allocs++
	return p, nil
}

func (h *hostAllocator) free(p uintptr) error {
	n, ok := h.held[p]
	if !ok {
		return errors.New("double free")
	}
	delete(h.held, p)
	h.bytes -= n
	return nil
}

func TestSizeClass(t *testing.T) {
	for _, c := range []struct{ n, want int64 }{
		{1, 512}, {512, 512}, {513, 640}, {640, 640}, {641, 768}, {1000, 1024}, {1024, 1024},
		{1025, 1280}, {3 << 20, 3 << 20}, {3<<20 + 1, 7 << 19}, {1 << 30, 1 << 30},
	} {
		if got := sizeClass(c.n); got != c.want {
			t.Errorf("sizeClass(%d) = %d, want %d", c.n, got, c.want)
		}
	}
	// Every class holds the request and wastes at most a quarter of it.
	for n := int64(1); n < 1<<16; n += 7 {
		c := sizeClass(n)
		if c < n || (n > minClass && float64(c) > 1.25*float64(n)) || sizeClass(c) != c {
			t.Fatalf("sizeClass(%d) = %d", n, c)
		}
	}
}

func TestPoolReuseAndPeak(t *testing.T) {
	be := &hostAllocator{}
	p := newPool(be)
	a, err := p.alloc(1000) // class 1024
	if err != nil {
		t.Fatal(err)
	}
	b, _ := p.alloc(3000) // class 3072
	if p.InUse() != 1024+3072 || p.PeakBytes() != 1024+3072 || be.allocs != 2 {
		t.Fatalf("in use %d, peak %d, driver allocations %d", p.InUse(), p.PeakBytes(), be.allocs)
	}
	if err := p.free(a); err != nil {
		t.Fatal(err)
	}
	// A request of the same class reuses the cached block without the driver.
	c, _ := p.alloc(900)
	if c != a || be.allocs != 2 {
		t.Fatalf("got block %#x (want the cached %#x), %d driver allocations", c, a, be.allocs)
	}
	// Another class does not.
	d, _ := p.alloc(100)
	if d == a || be.allocs != 3 {
		t.Fatalf("a 512-byte request reused %#x or did not reach the driver (%d allocations)", d, be.allocs)
	}
	if p.PeakBytes() != 1024+3072+512 {
		t.Fatalf("peak %d", p.PeakBytes())
	}
	for _, x := range []uintptr{b, c, d} {
		if err := p.free(x); err != nil {
			t.Fatal(err)
		}
	}
	if p.InUse() != 0 || p.Reserved() != 1024+3072+512 || p.PeakBytes() != 1024+3072+512 {
		t.Fatalf("after freeing all: in use %d, reserved %d, peak %d", p.InUse(), p.Reserved(), p.PeakBytes())
	}
	p.ResetPeak()
	if p.PeakBytes() != 0 {
		t.Fatalf("peak after reset %d", p.PeakBytes())
	}
	if err := p.free(b); err == nil {
		t.Fatal("freeing a block twice was accepted")
	}
	if err := p.Release(); err != nil || be.bytes != 0 || p.Reserved() != 0 {
		t.Fatalf("release: %v, driver still holds %d, reserved %d", err, be.bytes, p.Reserved())
	}
	if _, err := p.alloc(0); err == nil {
		t.Fatal("a zero-byte request was accepted")
	}
}

func TestPoolReleasesCacheWhenFull(t *testing.T) {
	be := &hostAllocator{limit: 4096}
	p := newPool(be)
	a, err := p.alloc(2048)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := p.alloc(1024)
	p.free(a)
	p.free(b)
	// 4096 bytes of another class do not fit beside the cached 3072: the cache goes first.
	c, err := p.alloc(4096)
	if err != nil {
		t.Fatalf("the pool did not free its cache to make room: %v", err)
	}
	if p.Reserved() != 4096 || be.bytes != 4096 {
		t.Fatalf("reserved %d, driver holds %d", p.Reserved(), be.bytes)
	}
	if _, err := p.alloc(512); !errors.Is(err, errOutOfMemory) {
		t.Fatalf("a request beyond the device's memory: %v", err)
	}
	p.free(c)
}
