package abreport

import (
	"errors"
	"fmt"
	"image/color"
	"math"
	"os"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// WritePNG draws how the evidence moved, with gonum.org/v1/plot: above, the
// always-valid interval and the estimate of treatment minus control against
// the minutes since the window's start, with 0 and ±MDE; below, the
// always-valid p-value (log scale) against alpha.
func (r *Report) WritePNG(path string) error {
	if len(r.History) == 0 {
		return errors.New("no look has an accuracy estimate yet: nothing to plot")
	}
	mde, alpha := r.spec.Primary.MinimumDetectableEffect, r.spec.Alpha
	x := func(i int) float64 { return r.History[i].At.Sub(r.Start).Minutes() }
	n := len(r.History)
	est, low, high, pv := make(plotter.XYs, n), plotter.XYs{}, plotter.XYs{}, make(plotter.XYs, n)
	for i, p := range r.History {
		est[i] = plotter.XY{X: x(i), Y: p.Diff}
		if p.Low != nil {
			low = append(low, plotter.XY{X: x(i), Y: *p.Low})
		}
		if p.High != nil {
			high = append(high, plotter.XY{X: x(i), Y: *p.High})
		}
		pv[i] = plotter.XY{X: x(i), Y: math.Max(p.PValue, 1e-12)}
	}
	xmax := math.Max(x(n-1), 1e-3)

	top := plot.New()
	top.Title.Text = fmt.Sprintf("%s: %s minus %s, accuracy (verdict %s)", r.Experiment, r.Treatment, r.Control, r.Result.Verdict)
	top.X.Label.Text = "minutes since the split started"
	top.Y.Label.Text = "difference"
	blue := color.RGBA{R: 31, G: 119, B: 180, A: 255}
	grey := color.RGBA{R: 128, G: 128, B: 128, A: 255}
	for _, h := range []struct {
		y     float64
		label string
		dash  bool
	}{{0, "0", false}, {mde, "+MDE", true}, {-mde, "-MDE", true}} {
		l, err := plotter.NewLine(plotter.XYs{{X: 0, Y: h.y}, {X: xmax, Y: h.y}})
		if err != nil {
			return err
		}
		l.Color = grey
		if h.dash {
			l.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
		}
		top.Add(l)
	}
	for _, s := range []struct {
		xy    plotter.XYs
		label string
		width vg.Length
	}{{low, "always-valid interval", 1}, {high, "", 1}, {est, "estimate", 2}} {
		if len(s.xy) == 0 {
			continue
		}
		l, err := plotter.NewLine(s.xy)
		if err != nil {
			return err
		}
		l.Color, l.Width = blue, vg.Points(float64(s.width))
		if s.label == "estimate" {
			l.Color = color.RGBA{R: 214, G: 39, B: 40, A: 255}
		}
		top.Add(l)
		if s.label != "" {
			top.Legend.Add(s.label, l)
		}
	}
	top.Legend.Top = true
	// The first looks' intervals are wide; the scale is set by the effects
	// that matter (the MDE and the estimates), and the rest is clipped.
	span := 3 * mde
	for _, p := range est {
		span = math.Max(span, 1.5*math.Abs(p.Y))
	}
	top.Y.Min, top.Y.Max = -span, span

	bottom := plot.New()
	bottom.X.Label.Text = "minutes since the split started"
	bottom.Y.Label.Text = "always-valid p-value"
	bottom.Y.Scale = plot.LogScale{}
	bottom.Y.Tick.Marker = plot.LogTicks{Prec: 1}
	bottom.Y.Min, bottom.Y.Max = 1e-6, 1
	for i := range pv {
		pv[i].Y = math.Max(pv[i].Y, 1e-6)
	}
	pl, err := plotter.NewLine(pv)
	if err != nil {
		return err
	}
	pl.Color, pl.Width = blue, vg.Points(2)
	al, err := plotter.NewLine(plotter.XYs{{X: 0, Y: alpha}, {X: xmax, Y: alpha}})
	if err != nil {
		return err
	}
	al.Color, al.Dashes = grey, []vg.Length{vg.Points(4), vg.Points(3)}
	bottom.Add(pl, al)
	bottom.Legend.Add("p-value", pl)
	bottom.Legend.Add(fmt.Sprintf("alpha %g", alpha), al)

	const w, h = 8 * vg.Inch, 7 * vg.Inch
	img := vgimg.New(w, h)
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: 2, Cols: 1, PadTop: vg.Points(6), PadBottom: vg.Points(6), PadLeft: vg.Points(6), PadRight: vg.Points(6), PadY: vg.Points(10)}
	canvases := plot.Align([][]*plot.Plot{{top}, {bottom}}, tiles, dc)
	top.Draw(canvases[0][0])
	bottom.Draw(canvases[1][0])
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Close()
}
