//go:build !linux

package profile

import "github.com/sentibench/sentibench/internal/memstat"

// rssProbe reads getrusage's peak (memstat) outside Linux, where the system reports it: the
// process's peak since it started, not per epoch.
type rssProbe struct{}

func newRSSProbe() rssProbe { return rssProbe{} }

func (p *rssProbe) method() string {
	if _, ok := memstat.PeakRSS(); ok {
		return "ru_maxrss"
	}
	return ""
}

func (p *rssProbe) reset() {}

func (p *rssProbe) peak() (int64, bool) { return memstat.PeakRSS() }
