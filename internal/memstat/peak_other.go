//go:build !(linux || dragonfly || freebsd || netbsd || openbsd || darwin)

package memstat

func peakRSS() (int64, bool) { return 0, false }
