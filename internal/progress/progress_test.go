package progress

import (
	"bytes"
	"io"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeClock is a clock the test moves by hand.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }
func newClock() *fakeClock                   { return &fakeClock{t: time.Unix(1_000_000, 0)} }

func TestLinesModeKnownTotal(t *testing.T) {
	var out bytes.Buffer
	c := newClock()
	p := New(&out, Options{Label: "download x", Unit: "B", Total: 4 << 20, Mode: Lines, Interval: 10 * time.Second, Now: c.now})
	c.advance(5 * time.Second)
	p.Add(1 << 20) // before the interval: nothing written
	if out.Len() != 0 {
		t.Fatalf("wrote before the interval: %q", out.String())
	}
	c.advance(5 * time.Second)
	p.Add(1 << 20) // 2 MiB in 10 s: 204.8 KiB/s, 10 s left
	want := "download x: 50.0%, 2.00 MiB / 4.00 MiB, 204.8 KiB/s, ETA 10.0s\n"
	if out.String() != want {
		t.Fatalf("line = %q, want %q", out.String(), want)
	}
	c.advance(10 * time.Second)
	p.Add(2 << 20)
	out.Reset()
	p.Done()
	p.Done() // second call writes nothing
	if want := "download x: 4.00 MiB / 4.00 MiB in 20.0s, 204.8 KiB/s\n"; out.String() != want {
		t.Fatalf("done = %q, want %q", out.String(), want)
	}
}

func TestLinesModeUnknownTotal(t *testing.T) {
	var out bytes.Buffer
	c := newClock()
	p := New(&out, Options{Label: "read", Unit: "reviews", Mode: Lines, Interval: time.Second, Now: c.now})
	c.advance(2 * time.Second)
	p.Add(12345)
	if want := "read: 12,345 reviews, 6,173 reviews/s, 2.0s so far\n"; out.String() != want {
		t.Fatalf("line = %q, want %q", out.String(), want)
	}
}

func TestBarMode(t *testing.T) {
	var out bytes.Buffer
	c := newClock()
	p := New(&out, Options{Label: "epoch 1", Unit: "batches", Total: 10, Mode: Bar, Width: 10, Now: c.now})
	c.advance(time.Second)
	p.Add(5)
	want := "\repoch 1: [=====>    ]  50.0% 5 / 10 batches, 5 batches/s, ETA 1.0s"
	if out.String() != want {
		t.Fatalf("bar = %q, want %q", out.String(), want)
	}
	c.advance(100 * time.Millisecond) // throttled: under the 200ms default interval
	p.Add(1)
	if out.String() != want {
		t.Fatalf("bar updated before the interval: %q", out.String())
	}
	c.advance(900 * time.Millisecond)
	out.Reset()
	p.Set(10)
	p.Done()
	s := out.String()
	if !strings.HasPrefix(s, "\repoch 1: [==========] 100.0% 10 / 10 batches") || !strings.HasSuffix(s, "\n") {
		t.Fatalf("end of bar = %q", s)
	}
	if !strings.Contains(s, "\repoch 1: 10 / 10 batches in 2.0s, 5 batches/s") {
		t.Fatalf("done line missing: %q", s)
	}
}

func TestBarBlanksShorterLine(t *testing.T) {
	var out bytes.Buffer
	c := newClock()
	p := New(&out, Options{Label: "x", Mode: Bar, Now: c.now})
	c.advance(time.Second)
	p.Add(100000)
	first := out.String()
	out.Reset()
	p.Done()
	done := out.String()
	// The final line is shorter than the bar: the rest of the bar is overwritten by spaces.
	if len(done)-2 < len(first)-1 {
		t.Fatalf("done line %q does not cover the previous line %q", done, first)
	}
}

func TestQuietAndNil(t *testing.T) {
	var out bytes.Buffer
	p := New(&out, Options{Mode: Quiet, Total: 10})
	p.Add(10)
	p.Done()
	if out.Len() != 0 {
		t.Fatalf("quiet wrote %q", out.String())
	}
	var nilp *Reporter
	nilp.Add(1)
	nilp.SetTotal(3)
	nilp.Start(1)
	nilp.Done()
	if nilp.Count() != 0 || nilp.Mode() != Quiet {
		t.Fatal("nil reporter not inert")
	}
	if New(nil, Options{}).Mode() != Quiet {
		t.Fatal("nil writer is not quiet")
	}
}

func TestAutoModeNotTerminal(t *testing.T) {
	if New(&bytes.Buffer{}, Options{}).Mode() != Lines {
		t.Fatal("a buffer should get Lines")
	}
	f, err := os.CreateTemp(t.TempDir(), "p")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if IsTerminal(f) {
		t.Fatal("a regular file is not a terminal")
	}
	if New(f, Options{}).Mode() != Lines {
		t.Fatal("a file should get Lines")
	}
}

func TestStartExcludesResumedBytesFromRate(t *testing.T) {
	var out bytes.Buffer
	c := newClock()
	p := New(&out, Options{Unit: "B", Total: 3000, Mode: Lines, Interval: time.Second, Now: c.now})
	p.Start(2000)
	c.advance(time.Second)
	p.Add(500)
	if want := "83.3%, 2.44 KiB / 2.93 KiB, 500 B/s, ETA 1.0s\n"; out.String() != want {
		t.Fatalf("line = %q, want %q", out.String(), want)
	}
}

func TestReaderWriterCount(t *testing.T) {
	p := New(nil, Options{})
	n, err := io.Copy(p.Writer(io.Discard), p.Reader(strings.NewReader("hello world")))
	if err != nil || n != 11 {
		t.Fatal(n, err)
	}
	if p.Count() != 22 {
		t.Fatalf("count = %d, want 22 (11 read + 11 written)", p.Count())
	}
}

func TestConcurrentAdd(t *testing.T) {
	p := New(io.Discard, Options{Mode: Lines, Interval: time.Nanosecond})
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 1000; i++ {
				p.Add(1)
			}
		}()
	}
	wg.Wait()
	if p.Count() != 8000 {
		t.Fatalf("count = %d", p.Count())
	}
}

func TestFormatters(t *testing.T) {
	for _, c := range []struct {
		got, want string
	}{
		{formatBytes(0), "0 B"}, {formatBytes(1023), "1023 B"}, {formatBytes(1536), "1.50 KiB"},
		{formatBytes(84125825), "80.2 MiB"}, {formatBytes(3 << 30), "3.00 GiB"},
		{formatInt(0), "0"}, {formatInt(999), "999"}, {formatInt(1000), "1,000"}, {formatInt(-1234567), "-1,234,567"},
		{formatDuration(850 * time.Millisecond), "850ms"}, {formatDuration(4200 * time.Millisecond), "4.2s"},
		{formatDuration(185 * time.Second), "3m05s"}, {formatDuration(62 * time.Minute), "1h02m"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
	for _, s := range []string{"auto", "bar", "lines", "quiet"} {
		if _, err := ParseMode(s); err != nil {
			t.Error(err)
		}
	}
	if _, err := ParseMode("loud"); err == nil {
		t.Error("ParseMode(loud) accepted")
	}
}
