// Package memstat reads the process's peak resident memory (getrusage's ru_maxrss) wherever the
// system reports it, so that train and profile share one portable reading.
package memstat

// PeakRSS returns the process's peak resident set size in bytes since it started; false where
// the system does not report it.
func PeakRSS() (int64, bool) { return peakRSS() }
