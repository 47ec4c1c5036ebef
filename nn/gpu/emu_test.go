package gpu

import (
	"fmt"
	"math"
	"sort"
	"testing"
	"unsafe"
)

// emu is a backend without a GPU: device memory is host memory in separate allocations (an
// address resolves to one allocation, and every view ends where it ends, so Go's bounds checks
// catch a kernel or GEMM reaching past its buffer), GEMMs follow cuBLAS's column-major contract
// (with its argument checks), and each kernel of kernels.cu has a Go twin below, line for line.
// It tests the executor's plumbing (sizes, offsets, strides, GEMM shapes, argument lists); the
// CUDA kernels themselves are checked against the CPU on a GPU (gpu_test.go).
type emu struct {
	t      testing.TB
	mem    *Pool
	blocks map[uintptr][]uint32
	bases  []uintptr // sorted
	next   uintptr
	sigs   map[string][]cParam
	// launches counts kernel launches by name; gemms counts GEMM calls.
	launches map[string]int
	gemms    int
	// entered counts enter calls not yet ended: the CUDA device needs its context current on
	// the thread for every driver call, so the emulator refuses work outside enter.
	entered int
}

// inside fails a driver call made outside enter.
func (e *emu) inside(what string) {
	if e.entered == 0 {
		panic("emu: " + what + " outside enter (no current context)")
	}
}

func newEmu(t testing.TB) *emu {
	sigs, err := kernelSignatures(kernelSource)
	if err != nil {
		t.Fatal(err)
	}
	e := &emu{t: t, blocks: map[uintptr][]uint32{}, next: 1 << 32, sigs: sigs, launches: map[string]int{}}
	e.mem = newPool(e)
	return e
}

// allocator
func (e *emu) alloc(n int64) (uintptr, error) {
	e.inside("cuMemAlloc")
	p := e.next
	e.next += uintptr(n) + 1<<16 // a gap: an address past the end resolves to no block
	w := make([]uint32, (n+3)/4)
	for i := range w {
		w[i] = 0x7fc00000 // NaN: reading memory never written shows up
	}
	e.blocks[p] = w
	e.bases = append(e.bases, p)
	return p, nil
}

func (e *emu) free(p uintptr) error {
	if _, ok := e.blocks[p]; !ok {
		return fmt.Errorf("emu: free of %#x", p)
	}
	delete(e.blocks, p)
	i := sort.Search(len(e.bases), func(i int) bool { return e.bases[i] >= p })
	e.bases = append(e.bases[:i], e.bases[i+1:]...)
	return nil
}

// words returns the allocation's words from address p to its end.
func (e *emu) words(p uintptr) []uint32 {
	i := sort.Search(len(e.bases), func(i int) bool { return e.bases[i] > p }) - 1
	if i < 0 {
		panic(fmt.Sprintf("emu: address %#x is in no allocation", p))
	}
	b := e.bases[i]
	w := e.blocks[b]
	off := p - b
	if off%4 != 0 || off/4 > uintptr(len(w)) {
		panic(fmt.Sprintf("emu: address %#x is outside the allocation at %#x (%d words)", p, b, len(w)))
	}
	return w[off/4:]
}

func (e *emu) f32(p uintptr) []float32 {
	w := e.words(p)
	if len(w) == 0 {
		return nil
	}
	return unsafe.Slice((*float32)(unsafe.Pointer(&w[0])), len(w))
}

func (e *emu) i32(p uintptr) []int32 {
	w := e.words(p)
	if len(w) == 0 {
		return nil
	}
	return unsafe.Slice((*int32)(unsafe.Pointer(&w[0])), len(w))
}

func (e *emu) f64(p uintptr) []float64 {
	w := e.words(p)
	if p%8 != 0 {
		panic(fmt.Sprintf("emu: double at unaligned address %#x", p))
	}
	if len(w) < 2 {
		return nil
	}
	return unsafe.Slice((*float64)(unsafe.Pointer(&w[0])), len(w)/2)
}

func (e *emu) bytes(p uintptr, n int) []byte {
	w := e.words(p)
	if n > 4*len(w) {
		panic(fmt.Sprintf("emu: %d bytes at %#x overrun the allocation", n, p))
	}
	if n == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&w[0])), n)
}

// backend
func (e *emu) pool() *Pool { return e.mem }
func (e *emu) enter() func() {
	e.entered++
	return func() { e.entered-- }
}

func (e *emu) memset32(p uintptr, n int64, v uint32) error {
	e.inside("memset32")
	w := e.words(p)[:n]
	for i := range w {
		w[i] = v
	}
	return nil
}

func (e *emu) copyDD(dst, src uintptr, n int64) error {
	e.inside("copyDD")
	copy(e.bytes(dst, int(n)), e.bytes(src, int(n)))
	return nil
}

func (e *emu) upload(dst uintptr, src [][]byte) error {
	e.inside("upload")
	o := 0
	for _, s := range src {
		copy(e.bytes(dst+uintptr(o), len(s)), s)
		o += len(s)
	}
	return nil
}

func (e *emu) download(parts []part) error {
	e.inside("download")
	for _, pt := range parts {
		b := pt.bytes()
		copy(b, e.bytes(pt.src, len(b)))
	}
	return nil
}

func (e *emu) write(dst uintptr, src []byte) error {
	e.inside("write")
	copy(e.bytes(dst, len(src)), src)
	return nil
}

func (e *emu) read(dst []byte, src uintptr) error {
	e.inside("read")
	copy(dst, e.bytes(src, len(dst)))
	return nil
}
func (e *emu) record(int) error                  { return nil }
func (e *emu) elapsed(int, int) (float64, error) { return 0, nil }

// gemm is cuBLAS's column-major SGEMM, with its argument checks.
func (e *emu) gemm(tA, tB bool, m, n, k int, alpha float32, a uintptr, lda int, sa int64, b uintptr, ldb int, sb int64,
	beta float32, c uintptr, ldc int, sc int64, count int) error {
	e.inside("gemm")
	e.gemms++
	rowsA, rowsB := m, k
	if tA {
		rowsA = k
	}
	if tB {
		rowsB = n
	}
	if m < 0 || n < 0 || k < 0 || lda < max(1, rowsA) || ldb < max(1, rowsB) || ldc < max(1, m) || count < 1 {
		return fmt.Errorf("emu: cuBLAS would reject SGEMM m=%d n=%d k=%d lda=%d ldb=%d ldc=%d (tA %v tB %v)", m, n, k, lda, ldb, ldc, tA, tB)
	}
	for q := 0; q < count; q++ {
		A := e.f32(f32(a, int64(q)*sa))
		B := e.f32(f32(b, int64(q)*sb))
		C := e.f32(f32(c, int64(q)*sc))
		for j := 0; j < n; j++ {
			for i := 0; i < m; i++ {
				var s float32
				for l := 0; l < k; l++ {
					var x, y float32
					if tA {
						x = A[l+i*lda]
					} else {
						x = A[i+l*lda]
					}
					if tB {
						y = B[j+l*ldb]
					} else {
						y = B[l+j*ldb]
					}
					s += x * y
				}
				if beta == 0 {
					C[i+j*ldc] = alpha * s
				} else {
					C[i+j*ldc] = alpha*s + beta*C[i+j*ldc]
				}
			}
		}
	}
	return nil
}

// args decodes a launch's 8-byte slots.
type args []uint64

func (a args) p(i int) uintptr  { return uintptr(a[i]) }
func (a args) i(i int) int      { return int(int32(uint32(a[i]))) }
func (a args) l(i int) int64    { return int64(a[i]) }
func (a args) u64(i int) uint64 { return a[i] }
func (a args) u32(i int) uint32 { return uint32(a[i]) }
func (a args) f(i int) float32  { return math.Float32frombits(uint32(a[i])) }
func (a args) d(i int) float64  { return math.Float64frombits(a[i]) }
func (a args) dirs(i int) []dir { return []dir{a.dir(i), a.dir(i + 5)} }
func (a args) dir(i int) dir {
	return dir{row: a.i(i), n: a.i(i + 1), prow: a.i(i + 2), m: a.i(i + 3), cont: a.i(i + 4)}
}

func sig32(x float32) float32  { return float32(1 / (1 + math.Exp(-float64(x)))) }
func tanh32(x float32) float32 { return float32(math.Tanh(float64(x))) }

func (e *emu) launch(name string, gx, gy int, a []uint64) error {
	e.inside("launch " + name)
	e.launches[name]++
	if len(a) != len(e.sigs[name]) {
		return fmt.Errorf("emu: kernel %s: %d slots for %d parameters", name, len(a), len(e.sigs[name]))
	}
	if gx < 1 || gy < 1 || gx > maxBlocks || gy > 2 {
		return fmt.Errorf("emu: kernel %s: grid %d x %d", name, gx, gy)
	}
	x := args(a)
	switch name {
	case "dropout":
		y, in, n := e.f32(x.p(0)), e.f32(x.p(1)), x.l(2)
		for i := int64(0); i < n; i++ {
			if keep(x.u64(3), i, x.u32(4)) {
				y[i] = in[i] * x.f(5)
			} else {
				y[i] = 0
			}
		}
	case "keep_mask":
		y := e.f32(x.p(0))
		for i := int64(0); i < x.l(1); i++ {
			y[i] = float32(b2int(keep(x.u64(2), i, x.u32(3))))
		}
	case "embed_gather":
		out, table, ids, n, E := e.f32(x.p(0)), e.f32(x.p(1)), e.i32(x.p(2)), x.l(3), x.i(4)
		for r := int64(0); r < n; r++ {
			copy(out[r*int64(E):(r+1)*int64(E)], table[int(ids[r])*E:int(ids[r]+1)*E])
		}
	case "embed_grad":
		dt, dout, uniq, start, rows, nu, E := e.f32(x.p(0)), e.f32(x.p(1)), e.i32(x.p(2)), e.i32(x.p(3)), e.i32(x.p(4)), x.i(5), x.i(6)
		for u := 0; u < nu; u++ {
			for j := 0; j < E; j++ {
				var s float32
				for k := start[u]; k < start[u+1]; k++ {
					s += dout[int(rows[k])*E+j]
				}
				dt[int(uniq[u])*E+j] = s
			}
		}
	case "lstm_fwd_cell":
		gates, gs, rec, rs := e.f32(x.p(0)), x.l(1), e.f32(x.p(2)), x.l(3)
		bih, bhh, ps, aux, as := e.f32(x.p(4)), e.f32(x.p(5)), x.l(6), e.f32(x.p(7)), x.l(8)
		cs, hs, hcat, H, B, W := e.f32(x.p(9)), e.f32(x.p(10)), e.f32(x.p(11)), x.i(12), x.i(13), x.i(14)
		for d, s := range x.dirs(15)[:gy] {
			for b := 0; b < s.n; b++ {
				for j := 0; j < H; j++ {
					G := 4 * H
					g := gates[int64(d)*gs+int64(s.row+b)*int64(G):]
					r := rec[int64(d)*rs+int64(b*G):]
					bi, bh := bih[int64(d)*ps:], bhh[int64(d)*ps:]
					gi := sig32((g[j] + r[j]) + (bi[j] + bh[j]))
					gf := sig32((g[H+j] + r[H+j]) + (bi[H+j] + bh[H+j]))
					gg := tanh32((g[2*H+j] + r[2*H+j]) + (bi[2*H+j] + bh[2*H+j]))
					gout := sig32((g[3*H+j] + r[3*H+j]) + (bi[3*H+j] + bh[3*H+j]))
					g[j], g[H+j], g[2*H+j], g[3*H+j] = gi, gf, gg, gout
					st := d*B*H + b*H + j
					c := gf*cs[st] + gi*gg
					h := gout * tanh32(c)
					aux[int64(d)*as+int64((s.row+b)*H+j)] = c
					cs[st], hs[st] = c, h
					hcat[(s.row+b)*W+d*H+j] = h
				}
			}
		}
	case "lstm_bwd_cell":
		gates, gs, aux, as := e.f32(x.p(0)), x.l(1), e.f32(x.p(2)), x.l(3)
		dH, dprev, carry, dg, H, B, W := e.f32(x.p(4)), e.f32(x.p(5)), e.f32(x.p(6)), e.f32(x.p(7)), x.i(8), x.i(9), x.i(10)
		for d, s := range x.dirs(11)[:gy] {
			for b := 0; b < s.n; b++ {
				for j := 0; j < H; j++ {
					G := 4 * H
					row := s.row + b
					st := d*B*H + b*H + j
					g := gates[int64(d)*gs+int64(row*G):]
					gi, gf, gg, gout := g[j], g[H+j], g[2*H+j], g[3*H+j]
					c := aux[int64(d)*as+int64(row*H+j)]
					tc := tanh32(c)
					dh := dH[row*W+d*H+j]
					var dc float32
					if b < s.cont {
						dh += dprev[st]
						dc = carry[st]
					}
					dcv := dc + dh*gout*(1-tc*tc)
					ri := dcv * gg * gi * (1 - gi)
					var rf float32
					if b < s.m {
						rf = dcv * aux[int64(d)*as+int64((s.prow+b)*H+j)] * gf * (1 - gf)
					}
					rg := dcv * gi * (1 - gg*gg)
					ro := dh * tc * gout * (1 - gout)
					g[j], g[H+j], g[2*H+j], g[3*H+j] = ri, rf, rg, ro
					q := dg[d*B*G+b*G:]
					q[j], q[H+j], q[2*H+j], q[3*H+j] = ri, rf, rg, ro
					carry[st] = dcv * gf
				}
			}
		}
	case "gru_fwd_cell":
		gates, gs, rec, rs := e.f32(x.p(0)), x.l(1), e.f32(x.p(2)), x.l(3)
		bih, bhh, ps, aux, as := e.f32(x.p(4)), e.f32(x.p(5)), x.l(6), e.f32(x.p(7)), x.l(8)
		hs, hcat, H, B, W := e.f32(x.p(9)), e.f32(x.p(10)), x.i(11), x.i(12), x.i(13)
		for d, s := range x.dirs(14)[:gy] {
			for b := 0; b < s.n; b++ {
				for j := 0; j < H; j++ {
					G := 3 * H
					g := gates[int64(d)*gs+int64((s.row+b)*G):]
					r := rec[int64(d)*rs+int64(b*G):]
					bi, bh := bih[int64(d)*ps:], bhh[int64(d)*ps:]
					gr := sig32(g[j] + ((bi[j] + bh[j]) + r[j]))
					gz := sig32(g[H+j] + ((bi[H+j] + bh[H+j]) + r[H+j]))
					hn := r[2*H+j] + bh[2*H+j]
					gn := tanh32(g[2*H+j] + (bi[2*H+j] + gr*hn))
					st := d*B*H + b*H + j
					h := (1-gz)*gn + gz*hs[st]
					g[j], g[H+j], g[2*H+j] = gr, gz, gn
					aux[int64(d)*as+int64((s.row+b)*H+j)] = hn
					hs[st] = h
					hcat[(s.row+b)*W+d*H+j] = h
				}
			}
		}
	case "gru_bwd_cell":
		gates, gs, aux, as := e.f32(x.p(0)), x.l(1), e.f32(x.p(2)), x.l(3)
		hcat, dH, dprev, dg, H, B, W := e.f32(x.p(4)), e.f32(x.p(5)), e.f32(x.p(6)), e.f32(x.p(7)), x.i(8), x.i(9), x.i(10)
		for d, s := range x.dirs(11)[:gy] {
			for b := 0; b < s.n; b++ {
				for j := 0; j < H; j++ {
					G := 3 * H
					row := s.row + b
					st := d*B*H + b*H + j
					g := gates[int64(d)*gs+int64(row*G):]
					rv, zv, nv := g[j], g[H+j], g[2*H+j]
					hn := aux[int64(d)*as+int64(row*H+j)]
					dh := dH[row*W+d*H+j]
					if b < s.cont {
						dh += dprev[st]
					}
					var hp float32
					if b < s.m {
						hp = hcat[(s.prow+b)*W+d*H+j]
					}
					dnp := dh * (1 - zv) * (1 - nv*nv)
					dr := dnp * hn * rv * (1 - rv)
					dz := dh * (hp - nv) * zv * (1 - zv)
					dn := dnp * rv
					g[j], g[H+j], g[2*H+j] = dr, dz, dn
					q := dg[d*B*G+b*G:]
					q[j], q[H+j], q[2*H+j] = dr, dz, dn
					aux[int64(d)*as+int64(row*H+j)] = dnp
					if b < s.m {
						dprev[st] = dh * zv
					} else {
						dprev[st] = 0
					}
				}
			}
		}
	case "rnn_align_prev":
		hprev, hcat, rowT, nb, off := e.f32(x.p(0)), e.f32(x.p(1)), e.i32(x.p(2)), e.i32(x.p(3)), e.i32(x.p(4))
		N, T, H, W, D := x.i(5), x.i(6), x.i(7), x.i(8), x.i(9)
		for d := 0; d < D; d++ {
			for r := 0; r < N; r++ {
				for j := 0; j < H; j++ {
					t := int(rowT[r])
					b := r - int(off[t])
					var v float32
					if d == 0 {
						if t > 0 {
							v = hcat[(int(off[t-1])+b)*W+j]
						}
					} else if t+1 < T && b < int(nb[t+1]) {
						v = hcat[(int(off[t+1])+b)*W+H+j]
					}
					hprev[(d*N+r)*H+j] = v
				}
			}
		}
	case "rnn_final":
		out, hs, B, H, D := e.f32(x.p(0)), e.f32(x.p(1)), x.i(2), x.i(3), x.i(4)
		for i := 0; i < D*B*H; i++ {
			d, b, j := i/(B*H), i%(B*H)/H, i%H
			out[b*D*H+d*H+j] = hs[i]
		}
	case "rnn_final_bwd":
		dH, dout, last, B, H, D := e.f32(x.p(0)), e.f32(x.p(1)), e.i32(x.p(2)), x.i(3), x.i(4), x.i(5)
		for i := 0; i < D*B*H; i++ {
			d, b, j := i/(B*H), i%(B*H)/H, i%H
			row := b
			if d == 0 {
				row = int(last[b])
			}
			dH[row*D*H+d*H+j] = dout[b*D*H+d*H+j]
		}
	case "bias_rows":
		y, bias, rows, n := e.f32(x.p(0)), e.f32(x.p(1)), x.l(2), x.i(3)
		for i := int64(0); i < rows*int64(n); i++ {
			y[i] = bias[i%int64(n)]
		}
	case "bce":
		z, y, per, dz, loss, n := e.f32(x.p(0)), e.f32(x.p(1)), e.f32(x.p(2)), e.f32(x.p(3)), e.f64(x.p(4)), x.i(5)
		var sum float64
		for i := 0; i < n; i++ {
			zz, yy := float64(z[i]), float64(y[i])
			l := math.Max(zz, 0) - zz*yy + math.Log1p(math.Exp(-math.Abs(zz)))
			s := 1 / (1 + math.Exp(-zz))
			per[i], dz[i] = float32(l), float32((s-yy)*(1/float64(n)))
			sum += l
		}
		loss[0] = sum / float64(n)
	case "adam":
		w, g, m, v, n := e.f32(x.p(0)), e.f32(x.p(1)), e.f32(x.p(2)), e.f32(x.p(3)), x.l(4)
		w1, b2, w2, eps, wd, negStep, bc2sqrt := x.f(5), x.f(6), x.f(7), x.f(8), x.f(9), x.f(10), x.f(11)
		c := e.f32(x.p(12))[0]
		for i := int64(0); i < n; i++ {
			gi := g[i] * c
			if wd != 0 {
				gi += wd * w[i]
			}
			mi := m[i] + w1*(gi-m[i])
			vi := v[i]*b2 + w2*gi*gi
			den := float32(math.Sqrt(float64(vi)))/bc2sqrt + eps
			m[i], v[i] = mi, vi
			w[i] += negStep * mi / den
		}
	case "sumsq":
		g, n, out := e.f32(x.p(0)), x.l(1), e.f64(x.p(2))
		threads := int64(gx * blockSize)
		for b := 0; b < gx; b++ {
			out[b] = 0
		}
		for i := int64(0); i < n; i++ {
			out[(i%threads)/blockSize] += float64(g[i]) * float64(g[i])
		}
	case "clip_coef":
		partials, count, maxNorm, coef, norm := e.f64(x.p(0)), x.i(1), x.d(2), e.f32(x.p(3)), e.f64(x.p(4))
		var s float64
		for i := 0; i < count; i++ {
			s += partials[i]
		}
		nrm := math.Sqrt(s)
		c := maxNorm / (nrm + 1e-6)
		coef[0] = 1
		if c < 1 {
			coef[0] = float32(c)
		}
		norm[0] = nrm
	case "cnn_pack_weights":
		wf, W, F, E, w := e.f32(x.p(0)), e.f32(x.p(1)), x.i(2), x.i(3), x.i(4)
		for i := 0; i < F*E*w; i++ {
			f, e2, k := i/(E*w), i%(E*w)/w, i%w
			wf[f*w*E+k*E+e2] = W[i]
		}
	case "cnn_pool":
		out, arg, conv, bias, lengths := e.f32(x.p(0)), e.i32(x.p(1)), e.f32(x.p(2)), e.f32(x.p(3)), e.i32(x.p(4))
		B, T, F, nWF, col0, w, minLen := x.i(5), x.i(6), x.i(7), x.i(8), x.i(9), x.i(10), x.i(11)
		for b := 0; b < B; b++ {
			for f := 0; f < F; f++ {
				windows := max(int(lengths[b]), minLen) - w + 1
				best, at := float32(math.Inf(-1)), int32(-1)
				for t := 0; t < windows; t++ {
					if v := conv[(b*T+t)*nWF+col0+f]; v > best {
						best, at = v, int32(t)
					}
				}
				out[b*nWF+col0+f] = max(best+bias[f], 0)
				arg[b*nWF+col0+f] = at
			}
		}
	case "cnn_bias_grad":
		db, dy, out, B, F, nWF, col0 := e.f32(x.p(0)), e.f32(x.p(1)), e.f32(x.p(2)), x.i(3), x.i(4), x.i(5), x.i(6)
		for f := 0; f < F; f++ {
			var s float32
			for b := 0; b < B; b++ {
				j := b*nWF + col0 + f
				if out[j] > 0 && dy[j] != 0 {
					s += dy[j]
				}
			}
			db[f] = s
		}
	case "cnn_weight_grad":
		dW, xx, dy, out, arg := e.f32(x.p(0)), e.f32(x.p(1)), e.f32(x.p(2)), e.f32(x.p(3)), e.i32(x.p(4))
		B, T, E, F, nWF, col0, w := x.i(5), x.i(6), x.i(7), x.i(8), x.i(9), x.i(10), x.i(11)
		for i := 0; i < F*E*w; i++ {
			f, e2, k := i/(E*w), i%(E*w)/w, i%w
			var s float32
			for b := 0; b < B; b++ {
				j := b*nWF + col0 + f
				if out[j] > 0 && dy[j] != 0 {
					s += dy[j] * xx[(b*T+int(arg[j])+k)*E+e2]
				}
			}
			dW[i] = s
		}
	case "cnn_input_grad":
		dx, wf, dy, out, arg := e.f32(x.p(0)), e.f32(x.p(1)), e.f32(x.p(2)), e.f32(x.p(3)), e.i32(x.p(4))
		B, T, E, F, nWF, col0, w, first := x.i(5), x.i(6), x.i(7), x.i(8), x.i(9), x.i(10), x.i(11), x.i(12)
		for b := 0; b < B; b++ {
			for e2 := 0; e2 < E; e2++ {
				if first != 0 {
					for t := 0; t < T; t++ {
						dx[(b*T+t)*E+e2] = 0
					}
				}
				for f := 0; f < F; f++ {
					j := b*nWF + col0 + f
					if !(out[j] > 0 && dy[j] != 0) {
						continue
					}
					for k := 0; k < w; k++ {
						dx[(b*T+int(arg[j])+k)*E+e2] += dy[j] * wf[f*w*E+k*E+e2]
					}
				}
			}
		}
	case "bert_embed":
		out, word, pos, typ0, g, b := e.f32(x.p(0)), e.f32(x.p(1)), e.f32(x.p(2)), e.f32(x.p(3)), e.f32(x.p(4)), e.f32(x.p(5))
		ids, rows, T, H, eps := e.i32(x.p(6)), x.i(7), x.i(8), x.i(9), x.d(10)
		for r := 0; r < rows; r++ {
			y := out[r*H : (r+1)*H]
			for j := range y {
				y[j] = (word[int(ids[r])*H+j] + typ0[j]) + pos[(r%T)*H+j]
			}
			emuLayerNorm(y, g, b, eps)
		}
	case "residual_norm":
		out, a, res, g, b, rows, H, eps := e.f32(x.p(0)), e.f32(x.p(1)), e.f32(x.p(2)), e.f32(x.p(3)), e.f32(x.p(4)), x.i(5), x.i(6), x.d(7)
		for r := 0; r < rows; r++ {
			y := out[r*H : (r+1)*H]
			for j := range y {
				y[j] = a[r*H+j] + res[r*H+j]
			}
			emuLayerNorm(y, g, b, eps)
		}
	case "attn_softmax":
		s, lens, rows, T, B := e.f32(x.p(0)), e.i32(x.p(1)), x.l(2), x.i(3), x.i(4)
		for r := int64(0); r < rows; r++ {
			y := s[r*int64(T) : (r+1)*int64(T)]
			L := int(lens[(r/int64(T))%int64(B)])
			m := float32(-math.MaxFloat32)
			for _, v := range y[:L] {
				m = max(m, v)
			}
			var sum float64
			for j := range y {
				if j < L {
					y[j] = float32(math.Exp(float64(y[j] - m)))
				} else {
					y[j] = 0
				}
				sum += float64(y[j])
			}
			inv := float32(1 / sum)
			for j := range y[:L] {
				y[j] *= inv
			}
		}
	case "ffn_act":
		y, n, kind := e.f32(x.p(0)), x.l(1), x.i(2)
		for i := int64(0); i < n; i++ {
			v := float64(y[i])
			switch kind {
			case 0:
				y[i] = float32(0.5 * v * (1 + math.Erf(v/math.Sqrt2)))
			case 1:
				y[i] = float32(0.5 * v * (1 + math.Tanh(0.7978845608028654*(v+0.044715*v*v*v))))
			default:
				y[i] = float32(math.Max(v, 0))
			}
		}
	case "axpby":
		y, in, n, a, b := e.f32(x.p(0)), e.f32(x.p(1)), x.l(2), x.f(3), x.f(4)
		for i := int64(0); i < n; i++ {
			y[i] = a*y[i] + b*in[i]
		}
	default:
		return fmt.Errorf("emu: no emulation of kernel %s", name)
	}
	return nil
}

// emuLayerNorm is kernels.cu's row_layer_norm (sums in double).
func emuLayerNorm(y, g, b []float32, eps float64) {
	var s float64
	for _, v := range y {
		s += float64(v)
	}
	mean := s / float64(len(y))
	var ss float64
	for _, v := range y {
		d := float64(v) - mean
		ss += d * d
	}
	inv := 1 / math.Sqrt(ss/float64(len(y))+eps)
	for j, v := range y {
		y[j] = float32((float64(v)-mean)*inv)*g[j] + b[j]
	}
}

// TestEmulatorCoversKernels checks that every kernel of kernels.cu has a Go twin and a parsed
// signature.
func TestEmulatorCoversKernels(t *testing.T) {
	e := newEmu(t)
	if len(e.sigs) < 20 {
		t.Fatalf("parsed %d kernels from kernels.cu", len(e.sigs))
	}
	for name, sig := range e.sigs {
		err := func() (err error) {
			defer func() { // a twin given zero arguments panics on its first access: it exists
				if recover() != nil {
					err = nil
				}
			}()
			defer e.enter()()
			return e.launch(name, 1, 1, make([]uint64, len(sig)))
		}()
		if err != nil && err.Error() == "emu: no emulation of kernel "+name {
			t.Errorf("kernel %s has no emulation", name)
		}
	}
	if want := []cParam{"ptr", "i64", "ptr", "i64", "ptr", "ptr", "i64", "ptr", "i64", "ptr", "ptr", "ptr", "int", "int", "int",
		"int", "int", "int", "int", "int", "int", "int", "int", "int", "int"}; fmt.Sprint(e.sigs["lstm_fwd_cell"]) != fmt.Sprint(want) {
		t.Fatalf("lstm_fwd_cell's parameters parsed as %v", e.sigs["lstm_fwd_cell"])
	}
}
