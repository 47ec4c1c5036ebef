package report

import (
	"fmt"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"github.com/sentibench/sentibench/internal/atomicfile"
)

// The chart files WriteCharts writes (besides one CurvesFile per run).
const (
	EpochTimeChart  = "epoch_time.png"
	MemoryChart     = "peak_memory.png"
	AccuracyChart   = "accuracy.png"
	ValidCurveChart = "valid_accuracy.png"
)

// CurvesFile is the name of a run's per-epoch curves chart.
func CurvesFile(runName string) string { return "curves_" + fileSafe(runName) + ".png" }

// chartDPI is the resolution of the PNGs.
const chartDPI = 144

// WriteCharts draws the runs into PNG charts in dir (created if needed) and returns their paths:
// bar charts of the mean time per epoch, the peak memory and the accuracy of each run, a line
// chart of every run's valid accuracy by epoch, and for each run its loss and accuracy curves.
func WriteCharts(dir string, runs []*Run) ([]string, error) {
	if len(runs) == 0 {
		return nil, fmt.Errorf("charts: no runs")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("charts: %w", err)
	}
	t := Compare(runs)
	type chart struct {
		name string
		draw func() (*figure, error)
	}
	charts := []chart{
		{EpochTimeChart, func() (*figure, error) { return epochTimeChart(t) }},
		{MemoryChart, func() (*figure, error) { return memoryChart(t) }},
		{AccuracyChart, func() (*figure, error) { return accuracyChart(t) }},
		{ValidCurveChart, func() (*figure, error) { return validCurveChart(runs) }},
	}
	for _, r := range runs {
		charts = append(charts, chart{CurvesFile(r.Name), func() (*figure, error) { return curvesChart(r) }})
	}
	var paths []string
	for _, c := range charts {
		f, err := c.draw()
		if err != nil {
			return paths, fmt.Errorf("chart %s: %w", c.name, err)
		}
		p := filepath.Join(dir, c.name)
		if err := f.save(p); err != nil {
			return paths, err
		}
		paths = append(paths, p)
	}
	return paths, nil
}

// figure is one or more plots side by side, of a given size, with an optional legend to their
// right (outside the plots, where it hides no data).
type figure struct {
	plots []*plot.Plot
	w, h  vg.Length
	side  *plot.Legend
}

func (f *figure) save(path string) error {
	for _, p := range f.plots {
		p.X.Tick.Marker = safeTicks{p.X.Tick.Marker}
		p.Y.Tick.Marker = safeTicks{p.Y.Tick.Marker}
	}
	var sideW vg.Length
	if f.side != nil {
		r := f.side.Rectangle(draw.Canvas{})
		sideW = r.Max.X - r.Min.X + vg.Points(16)
	}
	c := vgimg.NewWith(vgimg.UseWH(f.w+sideW, f.h), vgimg.UseDPI(chartDPI), vgimg.UseBackgroundColor(color.White))
	dc := draw.New(c)
	if f.side != nil {
		f.side.Draw(draw.Crop(dc, f.w+vg.Points(8), 0, 0, -vg.Points(40)))
		dc = draw.Crop(dc, 0, -sideW, 0, 0)
	}
	if len(f.plots) == 1 {
		f.plots[0].Draw(dc)
	} else {
		tiles := draw.Tiles{Rows: 1, Cols: len(f.plots), PadX: vg.Points(20), PadTop: vg.Points(4), PadBottom: vg.Points(4), PadLeft: vg.Points(4), PadRight: vg.Points(8)}
		canvases := plot.Align([][]*plot.Plot{f.plots}, tiles, dc)
		for i, p := range f.plots {
			p.Draw(canvases[0][i])
		}
	}
	out, err := atomicfile.Create(path)
	if err != nil {
		return fmt.Errorf("chart: %w", err)
	}
	defer out.Abort()
	if _, err := (vgimg.PngCanvas{Canvas: c}).WriteTo(out); err != nil {
		return fmt.Errorf("chart %s: %w", path, err)
	}
	return out.Commit()
}

// newPlot makes a plot with the project's readable text sizes.
func newPlot(title, xLabel, yLabel string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.Title.TextStyle.Font.Size = vg.Points(14)
	p.Title.Padding = vg.Points(8)
	p.X.Label.Text, p.Y.Label.Text = xLabel, yLabel
	for _, a := range []*plot.Axis{&p.X, &p.Y} {
		a.Label.TextStyle.Font.Size = vg.Points(12)
		a.Tick.Label.Font.Size = vg.Points(11)
	}
	p.Legend.TextStyle.Font.Size = vg.Points(11)
	p.Add(plotter.NewGrid())
	p.Y.Tick.Marker = numberTicks{} // "57.5", "1,500": no trailing zeros
	return p
}

// series is one set of bars: a value per run (NaN: none).
type series struct {
	name   string
	values []float64
	label  func(i int, v float64) string // the text above run i's bar
}

// barsWidth is the width of a bar chart with n groups of k bars: room for each bar, within
// 6 to 12 inches.
func barsWidth(n, k int) vg.Length {
	return min(12*vg.Inch, max(6*vg.Inch, vg.Inch*vg.Length(1+0.4*float64(n*k))))
}

// barChart draws groups of bars, one group per run, with each bar's value written above it.
// The y axis starts at yMin (0, or 50 for accuracies: chance level), its ticks labelled with
// thousands separators.
func barChart(title, yLabel string, names []string, ss []series, yMin float64) (*figure, error) {
	p := newPlot(title, "", yLabel)
	h := vg.Inch * 4.2
	if rotateLongNames(p, names) {
		h += vg.Inch
	}
	n, k := len(names), len(ss)
	w := barsWidth(n, k)
	group := (w - vg.Inch) / vg.Length(n) // the room of one run's bars
	barW := min(vg.Points(48), 0.8*group/vg.Length(k))
	labelSize := vg.Points(9)
	if barW < vg.Points(22) {
		labelSize = vg.Points(7)
	}
	top := 0.0
	for si, s := range ss {
		vals := make(plotter.Values, n)
		xys := make(plotter.XYs, n)
		labels := make([]string, n)
		for i, v := range s.values {
			xys[i].X = float64(i)
			if math.IsNaN(v) || v < yMin {
				labels[i] = "n/a"
				continue
			}
			vals[i], xys[i].Y, labels[i] = v-yMin, v-yMin, s.label(i, v)
			top = max(top, v-yMin)
		}
		bars, err := plotter.NewBarChart(vals, barW)
		if err != nil {
			return nil, err
		}
		bars.Color = plotutil.Color(si)
		bars.LineStyle.Width = vg.Points(0.5)
		bars.Offset = vg.Length(float64(si)-float64(k-1)/2) * barW
		p.Add(bars)
		if k > 1 {
			p.Legend.Add(s.name, bars)
		}
		lab, err := plotter.NewLabels(plotter.XYLabels{XYs: xys, Labels: labels})
		if err != nil {
			return nil, err
		}
		for i := range lab.TextStyle {
			lab.TextStyle[i].XAlign = draw.XCenter
			lab.TextStyle[i].Font.Size = labelSize
		}
		lab.Offset = vg.Point{X: bars.Offset, Y: vg.Points(3)}
		p.Add(lab)
	}
	p.NominalX(names...)
	p.X.Min, p.X.Max = -0.5, float64(n)-0.5
	if top == 0 { // nothing measured
		top = 1
	}
	headroom := 1.12 // for the labels above the bars
	if k > 1 {
		headroom = 1.4 // and for the legend
		p.Legend.Top, p.Legend.Left = true, true
		p.Legend.XOffs = vg.Points(6)
		p.Legend.Padding = vg.Points(3)
	}
	p.Y.Min, p.Y.Max = 0, top*headroom
	p.Y.Tick.Marker = numberTicks{offset: yMin}
	return &figure{plots: []*plot.Plot{p}, w: w, h: h}, nil
}

// safeTicks guards a tick marker against an axis range it cannot handle: gonum's default
// ticks loop forever when hi-lo overflows (a run log of losses near ±1e308) and panic for an
// empty range. Such a range gets a tick at each end, labelled in exponent form.
type safeTicks struct{ plot.Ticker }

func (s safeTicks) Ticks(lo, hi float64) []plot.Tick {
	finite := func(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
	if finite(lo) && finite(hi) && finite(hi-lo) && hi > lo {
		if s.Ticker == nil {
			return plot.DefaultTicks{}.Ticks(lo, hi)
		}
		return s.Ticker.Ticks(lo, hi)
	}
	var ticks []plot.Tick
	for _, v := range []float64{lo, hi} {
		if finite(v) && (len(ticks) == 0 || ticks[0].Value != v) {
			ticks = append(ticks, plot.Tick{Value: v, Label: strconv.FormatFloat(v, 'g', 3, 64)})
		}
	}
	return ticks
}

// numberTicks labels the y axis with thousands separators, adding offset to every value (for
// bars drawn from an axis that does not start at zero).
type numberTicks struct{ offset float64 }

func (nt numberTicks) Ticks(lo, hi float64) []plot.Tick {
	ticks := plot.DefaultTicks{}.Ticks(lo+nt.offset, hi+nt.offset)
	for i := range ticks {
		ticks[i].Value -= nt.offset
		if ticks[i].Label == "" {
			continue
		}
		v := math.Round((ticks[i].Value+nt.offset)*1e6) / 1e6
		switch {
		case v == math.Trunc(v) && math.Abs(v) >= 1000:
			ticks[i].Label = count(int64(v))
		default:
			ticks[i].Label = strconv.FormatFloat(v, 'f', -1, 64)
		}
	}
	return ticks
}

// rotateLongNames slants the run names under the bars when they would collide.
// It reports whether it did (the chart then needs more height).
func rotateLongNames(p *plot.Plot, names []string) bool {
	longest := 0
	for _, n := range names {
		longest = max(longest, len(n))
	}
	if longest > 14 || len(names)*longest > 70 {
		p.X.Tick.Label.Rotation = math.Pi / 6
		p.X.Tick.Label.XAlign = draw.XRight
		p.X.Tick.Label.YAlign = draw.YCenter
		return true
	}
	return false
}

func epochTimeChart(t Table) (*figure, error) {
	names, secs := make([]string, len(t.Rows)), make([]float64, len(t.Rows))
	for i, s := range t.Rows {
		names[i], secs[i] = s.Name, s.MeanEpochSeconds
	}
	return barChart("Mean time per epoch", "seconds per epoch (train + valid)", names,
		[]series{{"time", secs, func(_ int, v float64) string { return fmt.Sprintf("%.1f s", v) }}}, 0)
}

func memoryChart(t Table) (*figure, error) {
	n := len(t.Rows)
	names := make([]string, n)
	rss, heap, gpu := make([]float64, n), make([]float64, n), make([]float64, n)
	anyGPU, anyWhole := false, false
	for i, s := range t.Rows {
		names[i], rss[i], heap[i], gpu[i] = s.Name, s.PeakRSSMiB, s.PeakHeapMiB, s.PeakGPUMiB
		anyGPU = anyGPU || !math.IsNaN(s.PeakGPUMiB)
		anyWhole = anyWhole || (s.PeakRSSMethod == "ru_maxrss" && !math.IsNaN(s.PeakRSSMiB))
	}
	mib := func(_ int, v float64) string { return count(int64(math.Round(v))) }
	rssLabel := func(i int, v float64) string {
		if t.Rows[i].PeakRSSMethod == "ru_maxrss" {
			return mib(i, v) + "*"
		}
		return mib(i, v)
	}
	rssName := "peak RSS, per epoch"
	if anyWhole {
		rssName = "peak RSS, per epoch (*: whole process)"
	}
	ss := []series{{rssName, rss, rssLabel}, {"Go heap peak", heap, mib}}
	if anyGPU {
		ss = append(ss, series{"peak GPU (allocator)", gpu, mib})
	}
	return barChart("Peak memory during training", "MiB", names, ss, 0)
}

func accuracyChart(t Table) (*figure, error) {
	n := len(t.Rows)
	names, valid, test := make([]string, n), make([]float64, n), make([]float64, n)
	for i, s := range t.Rows {
		names[i], valid[i], test[i] = s.Name, 100*s.BestValidAcc, 100*s.TestAcc
	}
	p2 := func(_ int, v float64) string { return fmt.Sprintf("%.2f", v) }
	return barChart("Accuracy (best-valid checkpoint)", "accuracy (%), axis from 50% (chance)", names,
		[]series{{"best valid", valid, p2}, {"test", test, p2}}, 50)
}

// validCurveChart draws every run's valid accuracy by epoch.
func validCurveChart(runs []*Run) (*figure, error) {
	p := newPlot("Valid accuracy by epoch", "epoch", "valid accuracy (%)")
	legend := sideLegend()
	maxEpoch := 1
	for i, r := range runs {
		var xys plotter.XYs
		for _, e := range r.Epochs {
			if !math.IsNaN(e.ValidAcc) {
				xys = append(xys, plotter.XY{X: float64(e.Epoch), Y: 100 * e.ValidAcc})
				maxEpoch = max(maxEpoch, e.Epoch)
			}
		}
		if len(xys) == 0 {
			continue
		}
		line, points, err := plotter.NewLinePoints(xys)
		if err != nil {
			return nil, fmt.Errorf("run %s: %w", r.Name, err)
		}
		style(line, points, i, false)
		p.Add(line, points)
		legend.Add(r.Name, line, points)
	}
	p.X.Tick.Marker = epochTicks{}
	p.X.Min, p.X.Max = 0.8, float64(maxEpoch)+0.2
	return &figure{plots: []*plot.Plot{p}, w: vg.Inch * 7, h: vg.Inch * 4.2, side: legend}, nil
}

// curvesChart draws one run's train and valid loss (left) and accuracy (right) by epoch.
func curvesChart(r *Run) (*figure, error) {
	s := Summarize(r)
	what := []string{}
	if s.Model != "" {
		what = append(what, s.Model)
	}
	if !math.IsNaN(s.Dropout) {
		what = append(what, fmt.Sprintf("dropout %g", s.Dropout))
	}
	if s.Device != "" {
		what = append(what, s.Device)
	}
	title := r.Name
	if len(what) > 0 {
		title += " (" + strings.Join(what, ", ") + ")"
	}
	loss := newPlot(title+": loss", "epoch", "loss (binary cross-entropy)")
	acc := newPlot(title+": accuracy", "epoch", "accuracy (%)")
	for _, p := range []*plot.Plot{loss, acc} {
		p.Title.TextStyle.Font.Size = vg.Points(12)
	}
	type curve struct {
		name  string
		p     *plot.Plot
		value func(e int) float64
		valid bool
	}
	curves := []curve{
		{"train", loss, func(i int) float64 { return r.Epochs[i].TrainLoss }, false},
		{"valid", loss, func(i int) float64 { return r.Epochs[i].ValidLoss }, true},
		{"train", acc, func(i int) float64 { return 100 * r.Epochs[i].TrainAcc }, false},
		{"valid", acc, func(i int) float64 { return 100 * r.Epochs[i].ValidAcc }, true},
	}
	legend := sideLegend()
	maxEpoch := 1
	yRange := map[*plot.Plot][2]float64{} // the y extent of each plot's curves, for the best-epoch line
	for ci, c := range curves {
		var xys plotter.XYs
		for i, e := range r.Epochs {
			v := c.value(i)
			if math.IsNaN(v) || math.IsInf(v, 0) {
				continue // a diverged epoch: leave a gap rather than fail
			}
			xys = append(xys, plotter.XY{X: float64(e.Epoch), Y: v})
			maxEpoch = max(maxEpoch, e.Epoch)
			r, ok := yRange[c.p]
			if !ok {
				r = [2]float64{v, v}
			}
			yRange[c.p] = [2]float64{min(r[0], v), max(r[1], v)}
		}
		if len(xys) == 0 {
			continue
		}
		line, points, err := plotter.NewLinePoints(xys)
		if err != nil {
			return nil, fmt.Errorf("run %s: %w", r.Name, err)
		}
		style(line, points, ci%2, !c.valid)
		c.p.Add(line, points)
		if c.p == loss { // one legend for both panels: the styles are the same
			legend.Add(c.name, line, points)
		}
	}
	if s.BestEpoch > 0 {
		for _, p := range []*plot.Plot{loss, acc} {
			lo, hi := yRange[p][0], yRange[p][1]
			x := float64(s.BestEpoch)
			best, err := plotter.NewLine(plotter.XYs{{X: x, Y: lo}, {X: x, Y: hi}})
			if err != nil {
				return nil, err
			}
			best.LineStyle.Color = color.Gray{Y: 150}
			best.LineStyle.Dashes = []vg.Length{vg.Points(2), vg.Points(2)}
			p.Add(best)
			if p == loss {
				legend.Add(fmt.Sprintf("best epoch (%d)", s.BestEpoch), best)
			}
		}
	}
	if len(r.Epochs) == 0 {
		for _, p := range []*plot.Plot{loss, acc} {
			p.Title.Text += " - no epochs logged yet"
		}
	}
	for _, p := range []*plot.Plot{loss, acc} {
		p.X.Tick.Marker = epochTicks{}
		p.X.Min, p.X.Max = 0.8, float64(maxEpoch)+0.2
	}
	return &figure{plots: []*plot.Plot{loss, acc}, w: vg.Inch * 10.5, h: vg.Inch * 4.2, side: legend}, nil
}

// sideLegend is a legend for the right of a figure.
func sideLegend() *plot.Legend {
	l := plot.NewLegend()
	l.TextStyle.Font.Size = vg.Points(11)
	l.Top, l.Left = true, true
	l.Padding = vg.Points(3)
	return &l
}

// style gives series i its colour and marker; dashed for train curves.
func style(line *plotter.Line, points *plotter.Scatter, i int, dashed bool) {
	c := plotutil.DarkColors[i%len(plotutil.DarkColors)]
	line.LineStyle.Color = c
	line.LineStyle.Width = vg.Points(1.5)
	if dashed {
		line.LineStyle.Dashes = []vg.Length{vg.Points(5), vg.Points(3)}
	}
	points.GlyphStyle.Color = c
	points.GlyphStyle.Shape = plotutil.Shape(i)
	points.GlyphStyle.Radius = vg.Points(3)
}

// epochTicks marks whole epochs only.
type epochTicks struct{}

func (epochTicks) Ticks(lo, hi float64) []plot.Tick {
	step := math.Max(1, math.Ceil((hi-lo)/12))
	var ticks []plot.Tick
	for e := math.Ceil(lo); e <= hi; e += step {
		ticks = append(ticks, plot.Tick{Value: e, Label: fmt.Sprintf("%d", int(e))})
	}
	return ticks
}

// fileSafe makes a run name usable as part of a file name.
func fileSafe(name string) string {
	var b strings.Builder
	for _, r := range name {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '.', r == '_':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	return b.String()
}
