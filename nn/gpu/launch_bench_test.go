package gpu

import "testing"

// nopBackend takes launches and does nothing: the host-side cost of queueing one.
type nopBackend struct{ backend }

func (nopBackend) launch(string, int, int, []uint64) error { return nil }

// BenchmarkQueueLaunch is the host cost of queueing a cell kernel (argument packing and the
// check against kernels.cu's signature), without the driver's.
func BenchmarkQueueLaunch(b *testing.B) {
	sigs, err := kernelSignatures(kernelSource)
	if err != nil {
		b.Fatal(err)
	}
	q := &queue{be: nopBackend{}, sigs: sigs}
	var p uintptr = 1 << 40
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		q.launch("lstm_fwd_cell", 8, 2, p, int64(1<<20), p+4096, int64(1<<16), p+8192, p+9000, int64(300000), p+10000,
			int64(1<<18), p+20000, p+30000, p+40000, 256, 64, 512, dir{row: 1000, n: 64}, dir{row: 2000, n: 60})
	}
	if q.err != nil {
		b.Fatal(q.err)
	}
}
