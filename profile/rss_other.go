//go:build !linux

package profile

// rssProbe measures nothing outside Linux: peak RSS stays zero.
type rssProbe struct{}

func newRSSProbe() rssProbe             { return rssProbe{} }
func (p *rssProbe) method() string      { return "" }
func (p *rssProbe) reset()              {}
func (p *rssProbe) peak() (int64, bool) { return 0, false }
