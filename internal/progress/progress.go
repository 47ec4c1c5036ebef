// Package progress reports how far a long piece of work has got: a download, reading a data
// set, an epoch of training, filling a feature cache.
//
// A Reporter counts units (bytes, reviews, batches, ...) towards a total that may or may not be
// known. On a terminal it keeps one line up to date (rewritten with \r, at most a few times a
// second): a bar, the percentage, the count, the rate and the time left. When the output is not
// a terminal (CI logs, files) it writes a plain line now and then instead, and one at the end.
// In quiet mode, or with a nil Reporter, it writes nothing.
//
// Everything goes to the io.Writer given to New, and the clock can be replaced, so a test can
// check the output byte for byte. Add may be called from several goroutines.
//
//	p := progress.New(os.Stderr, progress.Options{Label: "download", Unit: "B", Total: size})
//	defer p.Done()
//	io.Copy(dst, p.Reader(resp.Body))
package progress

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

// Mode says how a Reporter writes.
type Mode int

const (
	// Auto picks Bar when the writer is a terminal, else Lines.
	Auto Mode = iota
	// Bar keeps one line up to date with \r (for terminals).
	Bar
	// Lines writes a full line now and then (for logs and files).
	Lines
	// Quiet writes nothing.
	Quiet
)

// ParseMode reads a mode name: "auto", "bar", "lines" or "quiet".
func ParseMode(s string) (Mode, error) {
	switch strings.ToLower(s) {
	case "", "auto":
		return Auto, nil
	case "bar":
		return Bar, nil
	case "lines", "plain":
		return Lines, nil
	case "quiet", "none", "off":
		return Quiet, nil
	}
	return Auto, fmt.Errorf("unknown progress mode %q (want auto, bar, lines or quiet)", s)
}

// Options configure a Reporter. Every field has a usable zero value.
type Options struct {
	// Label starts every line, e.g. "download aclImdb_v1.tar.gz" or "epoch 1".
	Label string
	// Unit names what is counted. "B" counts bytes and prints them as KiB, MiB, GiB; any other
	// unit is printed after the plain count ("1,234 reviews").
	Unit string
	// Total is the count at which the work is done; 0 when not known (then no bar, no
	// percentage and no time left are shown).
	Total int64
	// Mode is how to write (default Auto).
	Mode Mode
	// Interval is the least time between two updates: default 200ms for Bar, 10s for Lines.
	Interval time.Duration
	// Width is the width of the bar in characters (default 24).
	Width int
	// Now is the clock (default time.Now); tests replace it.
	Now func() time.Time
}

// Reporter counts work done and reports it. The zero value is not usable; a nil *Reporter is,
// and reports nothing.
type Reporter struct {
	w     io.Writer
	o     Options
	mu    sync.Mutex
	n     int64     // units done
	base  int64     // units already done when the Reporter started (resumed downloads)
	t0    time.Time // start
	last  time.Time // last write
	width int       // length of the last bar line, to blank it out when it shrinks
	done  bool
	note  string // shown after the rate and time left ("loss 0.412, acc 81.3%")
}

// New returns a Reporter writing to w. A nil w means quiet.
func New(w io.Writer, o Options) *Reporter {
	if o.Now == nil {
		o.Now = time.Now
	}
	if w == nil {
		o.Mode = Quiet
	}
	if o.Mode == Auto {
		if IsTerminal(w) {
			o.Mode = Bar
		} else {
			o.Mode = Lines
		}
	}
	if o.Interval <= 0 {
		if o.Mode == Bar {
			o.Interval = 200 * time.Millisecond
		} else {
			o.Interval = 10 * time.Second
		}
	}
	if o.Width <= 0 {
		o.Width = 24
	}
	t := o.Now()
	return &Reporter{w: w, o: o, t0: t, last: t}
}

// IsTerminal reports whether w is a terminal (a character device such as a tty), the test
// that Auto mode uses. Anything that is not an *os.File is not a terminal.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok || f == nil {
		return false
	}
	fi, err := f.Stat()
	if err != nil {
		return false
	}
	return fi.Mode()&os.ModeCharDevice != 0
}

// Mode returns the mode in effect (Auto resolved to Bar or Lines).
func (r *Reporter) Mode() Mode {
	if r == nil {
		return Quiet
	}
	return r.o.Mode
}

// Start sets the count already done before this Reporter started (a resumed download) without
// counting it in the rate, and restarts the clock.
func (r *Reporter) Start(done int64) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.n, r.base = done, done
	r.t0 = r.o.Now()
	r.last = r.t0
}

// SetTotal changes the total (0: unknown), e.g. once a server has said how large a file is.
func (r *Reporter) SetTotal(total int64) {
	if r == nil {
		return
	}
	r.mu.Lock()
	r.o.Total = total
	r.mu.Unlock()
}

// Add counts n more units done, and writes an update when one is due.
func (r *Reporter) Add(n int64) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.n += n
	r.maybeWrite()
}

// Set sets the count of units done, and writes an update when one is due.
func (r *Reporter) Set(n int64) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.n = n
	r.maybeWrite()
}

// Count returns the units done so far.
func (r *Reporter) Count() int64 {
	if r == nil {
		return 0
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n
}

// Done writes the final state (count, time taken, mean rate) and ends the bar's line. Only the
// first call writes; later calls do nothing, so `defer p.Done()` is safe after an explicit one.
func (r *Reporter) Done() {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.done {
		return
	}
	r.done = true
	if r.o.Mode == Quiet {
		return
	}
	now := r.o.Now()
	el := now.Sub(r.t0)
	line := r.label() + r.count() + " in " + formatDuration(el)
	if rate := r.rate(el); rate > 0 {
		line += ", " + r.formatRate(rate)
	}
	r.writeLine(line, true)
}

// Reader returns a reader that counts every byte read from rd.
func (r *Reporter) Reader(rd io.Reader) io.Reader { return &countingReader{rd: rd, p: r} }

// Writer returns a writer that counts every byte written to w.
func (r *Reporter) Writer(w io.Writer) io.Writer { return &countingWriter{w: w, p: r} }

type countingReader struct {
	rd io.Reader
	p  *Reporter
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.rd.Read(b)
	if n > 0 {
		c.p.Add(int64(n))
	}
	return n, err
}

type countingWriter struct {
	w io.Writer
	p *Reporter
}

func (c *countingWriter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	if n > 0 {
		c.p.Add(int64(n))
	}
	return n, err
}

// maybeWrite writes an update when the interval has passed. r.mu is held.
func (r *Reporter) maybeWrite() {
	if r.o.Mode == Quiet || r.done {
		return
	}
	now := r.o.Now()
	if now.Sub(r.last) < r.o.Interval {
		return
	}
	r.last = now
	el := now.Sub(r.t0)
	if r.o.Mode == Bar {
		r.writeLine(r.barLine(el), false)
		return
	}
	r.writeLine(r.plainLine(el), true)
}

// writeLine writes s: on a terminal over the current line (ending it when final), elsewhere as
// a line of its own.
func (r *Reporter) writeLine(s string, final bool) {
	if r.o.Mode == Bar {
		pad := ""
		if n := len([]rune(s)); n < r.width {
			pad = strings.Repeat(" ", r.width-n)
		}
		r.width = len([]rune(s))
		end := ""
		if final {
			end = "\n"
		}
		fmt.Fprint(r.w, "\r"+s+pad+end)
		return
	}
	fmt.Fprintln(r.w, s)
}

func (r *Reporter) label() string {
	if r.o.Label == "" {
		return ""
	}
	return r.o.Label + ": "
}

// count formats "12.3 MiB / 84.1 MiB" or "1,234 / 5,000 reviews" or "1,234 reviews".
func (r *Reporter) count() string {
	if r.o.Unit == "B" {
		if r.o.Total > 0 {
			return formatBytes(r.n) + " / " + formatBytes(r.o.Total)
		}
		return formatBytes(r.n)
	}
	s := formatInt(r.n)
	if r.o.Total > 0 {
		s += " / " + formatInt(r.o.Total)
	}
	if r.o.Unit != "" {
		s += " " + r.o.Unit
	}
	return s
}

// rate is units per second since the start, not counting the units done before Start.
func (r *Reporter) rate(el time.Duration) float64 {
	if el <= 0 {
		return 0
	}
	return float64(r.n-r.base) / el.Seconds()
}

func (r *Reporter) formatRate(rate float64) string {
	if r.o.Unit == "B" {
		return formatBytes(int64(rate)) + "/s"
	}
	unit := r.o.Unit
	if unit == "" {
		unit = "units"
	}
	if rate >= 100 {
		return fmt.Sprintf("%s %s/s", formatInt(int64(rate+0.5)), unit)
	}
	return fmt.Sprintf("%.3g %s/s", rate, unit)
}

// eta is the time left at the mean rate so far, or -1 when it cannot be told.
func (r *Reporter) eta(el time.Duration) time.Duration {
	rate := r.rate(el)
	if r.o.Total <= 0 || rate <= 0 || r.n >= r.o.Total {
		if r.o.Total > 0 && r.n >= r.o.Total {
			return 0
		}
		return -1
	}
	return time.Duration(float64(r.o.Total-r.n) / rate * float64(time.Second))
}

func (r *Reporter) percent() float64 {
	p := 100 * float64(r.n) / float64(r.o.Total)
	if p > 100 {
		p = 100
	}
	return p
}

// barLine: "label: [=======>      ]  45.2% 12.3 MiB / 26.9 MiB, 3.1 MiB/s, ETA 5s".
func (r *Reporter) barLine(el time.Duration) string {
	var b strings.Builder
	b.WriteString(r.label())
	if r.o.Total > 0 {
		p := r.percent()
		fill := int(p / 100 * float64(r.o.Width))
		b.WriteByte('[')
		for i := 0; i < r.o.Width; i++ {
			switch {
			case i < fill:
				b.WriteByte('=')
			case i == fill:
				b.WriteByte('>')
			default:
				b.WriteByte(' ')
			}
		}
		fmt.Fprintf(&b, "] %5.1f%% ", p)
	}
	b.WriteString(r.count())
	r.tail(&b, el)
	return b.String()
}

// plainLine: "label: 45.2%, 12.3 MiB / 26.9 MiB, 3.1 MiB/s, ETA 5s".
func (r *Reporter) plainLine(el time.Duration) string {
	var b strings.Builder
	b.WriteString(r.label())
	if r.o.Total > 0 {
		fmt.Fprintf(&b, "%.1f%%, ", r.percent())
	}
	b.WriteString(r.count())
	r.tail(&b, el)
	return b.String()
}

func (r *Reporter) tail(b *strings.Builder, el time.Duration) {
	if rate := r.rate(el); rate > 0 {
		b.WriteString(", " + r.formatRate(rate))
	}
	if eta := r.eta(el); eta >= 0 {
		b.WriteString(", ETA " + formatDuration(eta))
	} else {
		b.WriteString(", " + formatDuration(el) + " so far")
	}
	if r.note != "" {
		b.WriteString(" | " + r.note)
	}
}

// SetNote sets a short status shown at the end of each update, such as the running loss and
// accuracy of an epoch. It does not write by itself: the next update shows it.
func (r *Reporter) SetNote(note string) {
	if r == nil {
		return
	}
	r.mu.Lock()
	r.note = note
	r.mu.Unlock()
}

// formatBytes prints n bytes with a binary unit: "512 B", "1.5 KiB", "26.9 MiB", "1.02 GiB".
func formatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	f := float64(n)
	for _, u := range []string{"KiB", "MiB", "GiB", "TiB"} {
		f /= unit
		if f < unit || u == "TiB" {
			if f < 10 {
				return fmt.Sprintf("%.2f %s", f, u)
			}
			return fmt.Sprintf("%.1f %s", f, u)
		}
	}
	return fmt.Sprintf("%d B", n)
}

// formatInt prints n with thousands separators: 1234567 -> "1,234,567".
// FormatBytes writes n bytes with a binary unit: "512 B", "26.9 MiB", "1.02 GiB".
func FormatBytes(n int64) string { return formatBytes(n) }

// FormatCount writes n with thousands separators: 4,810,857.
func FormatCount(n int64) string { return formatInt(n) }

func formatInt(n int64) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	if neg {
		s = s[1:]
	}
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// formatDuration prints a duration for people: "850ms", "4.2s", "3m05s", "1h02m".
func formatDuration(d time.Duration) string {
	switch {
	case d < time.Second:
		return fmt.Sprintf("%dms", d.Milliseconds())
	case d < time.Minute:
		return fmt.Sprintf("%.1fs", d.Seconds())
	case d < time.Hour:
		s := int(d.Round(time.Second).Seconds())
		return fmt.Sprintf("%dm%02ds", s/60, s%60)
	}
	m := int(d.Round(time.Minute).Minutes())
	return fmt.Sprintf("%dh%02dm", m/60, m%60)
}
