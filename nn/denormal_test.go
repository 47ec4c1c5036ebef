package nn

import "testing"

// TestCellGradientsFlushSubnormals checks that the recurrent cells' backward passes write no
// subnormal gradient (see denormal.go): a cell-state gradient of 1e-30 through a forget gate of
// 1e-9 (the LSTM) and a hidden-state gradient of 1e-30 through an update gate of 1e-9 (the GRU)
// would carry 1e-39 to the step before.
func TestCellGradientsFlushSubnormals(t *testing.T) {
	// LSTM, H = 1: gates i, f, g, o; tanh(c); previous c; dh; dc.
	g := []float32{0.5, 1e-9, 0.5, 0.5}
	dh, dc := []float32{0}, []float32{1e-30}
	lstmCellBackward(g, []float32{0.5}, []float32{1e-9}, dh, dc)
	for name, v := range map[string]float32{"dc": dc[0], "d forget gate": g[1]} {
		if v != 0 || isSubnormal(v) {
			t.Errorf("LSTM %s = %g, want 0 (a subnormal flushed)", name, v)
		}
	}
	if g[0] == 0 {
		t.Errorf("LSTM d input gate = 0, want 1e-30*0.5*0.25 (a normal float32 kept)")
	}

	// GRU, H = 1: gates r, z, n; the new gate's pre-activation part hn; previous h; dh.
	gg := []float32{0.5, 1e-9, 0.5}
	dhg := []float32{1e-30}
	gruCellBackward(gg, []float32{0.5}, []float32{0.25}, dhg)
	if dhg[0] != 0 {
		t.Errorf("GRU dh of the previous step = %g, want 0 (1e-39 flushed)", dhg[0])
	}
}
