package profile

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/sentibench/sentibench/internal/memstat"
)

// rssProbe measures peak resident memory: the kernel's VmHWM reset through clear_refs where it
// can, otherwise getrusage's ru_maxrss.
type rssProbe struct {
	procDir string // "/proc/self"; tests point it elsewhere
	hwm     bool   // clear_refs is writable: VmHWM is per epoch
}

func newRSSProbe() rssProbe { return newRSSProbeAt("/proc/self") }

func newRSSProbeAt(procDir string) rssProbe {
	p := rssProbe{procDir: procDir}
	p.hwm = p.clearRefs() == nil
	if p.hwm {
		if _, err := readVmHWM(filepath.Join(procDir, "status")); err != nil {
			p.hwm = false
		}
	}
	return p
}

func (p *rssProbe) method() string {
	if p.hwm {
		return "vmhwm"
	}
	return "ru_maxrss"
}

// clearRefs resets VmHWM to the current RSS ("5": reset the peak RSS; cheap, it walks no page
// tables).
func (p *rssProbe) clearRefs() error {
	f, err := os.OpenFile(filepath.Join(p.procDir, "clear_refs"), os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = f.Write([]byte("5"))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func (p *rssProbe) reset() {
	if p.hwm && p.clearRefs() != nil {
		p.hwm = false // it worked before; fall back for good rather than mix the two
	}
}

// peak returns the peak RSS in bytes.
func (p *rssProbe) peak() (int64, bool) {
	if p.hwm {
		if b, err := readVmHWM(filepath.Join(p.procDir, "status")); err == nil {
			return b, true
		}
	}
	b, ok := memstat.PeakRSS()
	if !ok {
		return 0, false
	}
	p.hwm = false
	return b, true
}

// readVmHWM reads the "VmHWM:   1234 kB" line of a /proc/PID/status file.
func readVmHWM(path string) (int64, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := sc.Bytes()
		rest, ok := bytes.CutPrefix(line, []byte("VmHWM:"))
		if !ok {
			continue
		}
		f := bytes.Fields(rest)
		if len(f) != 2 || string(f[1]) != "kB" {
			return 0, fmt.Errorf("%s: unexpected VmHWM line %q", path, line)
		}
		kb, err := strconv.ParseInt(string(f[0]), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s: unexpected VmHWM line %q", path, line)
		}
		return kb << 10, nil
	}
	return 0, fmt.Errorf("%s: no VmHWM line", path)
}
