package report

import (
	"image/color"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// series is one line of a plot.
type series struct {
	name  string
	xs    []float64
	ys    []float64
	color color.Color
	dash  []vg.Length
	raw   []float64 // when set: drawn as dots, ys as a line without dots
}

var (
	bridgeColor  = color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff}
	bridgeColor2 = color.RGBA{R: 0x7f, G: 0xb2, B: 0xdb, A: 0xff}
	mynetColor   = color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff}
	mynetColor2  = color.RGBA{R: 0xf0, G: 0x90, B: 0x90, A: 0xff}
	noneColor    = color.RGBA{R: 0x70, G: 0x70, B: 0x70, A: 0xff}
)

// PlotScaling draws the start time of each container of the scaling run
// against the number of endpoints already on its /16 network, both
// drivers: each start as a dot, and a running median over 11 starts as
// the line, since single starts on a shared machine are noisy.
func (r *Run) PlotScaling(path string) error {
	p := plot.New()
	p.Title.Text = "container start (create + start) vs endpoints on a /16 — Docker " + r.Machine.EngineVersion
	p.X.Label.Text = "endpoints already on the network"
	p.Y.Label.Text = "start time (ms)"
	p.X.Tick.Marker = plainTicks{}
	var s []series
	for _, d := range []struct {
		driver string
		c      color.Color
	}{{Bridge, bridgeColor}, {Mynet, mynetColor}, {None, noneColor}} {
		xs, ys := r.Curve(Scaling, StartAt, "", d.driver)
		if len(ys) == 0 {
			continue
		}
		name := d.driver
		if d.driver == None {
			name = "--network none, the engine alone"
		}
		s = append(s, series{name: name + " (running median of 11)", xs: xs, ys: RunningMedian(ys, 11), color: d.c, raw: ys})
	}
	return save(p, path, s, false)
}

// RunningMedian returns the median of the window centred on each value
// (shorter at the ends).
func RunningMedian(v []float64, window int) []float64 {
	out := make([]float64, len(v))
	for i := range v {
		lo, hi := max(0, i-window/2), min(len(v), i+window/2+1)
		out[i] = Summarize(v[lo:hi]).Median
	}
	return out
}

// plainTicks are the default ticks labelled without trailing zeros.
type plainTicks struct{}

func (plainTicks) Ticks(min, max float64) []plot.Tick {
	ticks := plot.DefaultTicks{}.Ticks(min, max)
	for i := range ticks {
		if ticks[i].Label != "" {
			ticks[i].Label = strconv.FormatFloat(ticks[i].Value, 'g', -1, 64)
		}
	}
	return ticks
}

// PlotPorts draws container start time against the number of published
// ports, log-log: bridge with and without its userland proxy, and mynet.
func (r *Run) PlotPorts(path string) error {
	p := plot.New()
	p.Title.Text = "run -d with N published ports — Docker " + r.Machine.EngineVersion
	p.X.Label.Text = "published ports"
	p.Y.Label.Text = "create + start (ms)"
	p.X.Scale, p.Y.Scale = plot.LogScale{}, plot.LogScale{}
	p.X.Tick.Marker, p.Y.Tick.Marker = plot.LogTicks{Prec: -1}, plot.LogTicks{Prec: -1}
	var s []series
	for _, d := range []struct {
		driver, variant, name string
		c                     color.Color
		dash                  []vg.Length
	}{
		{Bridge, Proxy, "bridge (userland proxy)", bridgeColor, nil},
		{Bridge, NoProxy, "bridge (--userland-proxy=false)", bridgeColor2, []vg.Length{vg.Points(4), vg.Points(3)}},
		{Mynet, Proxy, "mynet", mynetColor, nil},
		{Mynet, NoProxy, "mynet (engine without proxy)", mynetColor2, []vg.Length{vg.Points(4), vg.Points(3)}},
	} {
		xs, ys := r.Curve(Ports, PortsRun, d.variant, d.driver)
		s = append(s, series{name: d.name, xs: xs, ys: ys, color: d.c, dash: d.dash})
	}
	return save(p, path, s, true)
}

// save adds the series that have points and writes a PNG. A plot with no
// data still gets a file, saying so in its title, so a run's outputs are
// always the same set.
func save(p *plot.Plot, path string, ss []series, positiveOnly bool) error {
	p.Add(plotter.NewGrid())
	p.Legend.Top, p.Legend.Left = true, true
	drawn := 0
	for _, s := range ss {
		xys := points(s, positiveOnly)
		if len(xys) == 0 {
			continue
		}
		line, dots, err := plotter.NewLinePoints(xys)
		if err != nil {
			return err
		}
		line.Color, line.Dashes = s.color, s.dash
		line.Width = vg.Points(1.5)
		dots.Color, dots.Shape = s.color, draw.CircleGlyph{}
		dots.Radius = vg.Points(1.5)
		if s.raw != nil {
			if dots, err = plotter.NewScatter(points(series{xs: s.xs, ys: s.raw}, positiveOnly)); err != nil {
				return err
			}
			dots.Color, dots.Shape, dots.Radius = fade(s.color), draw.CircleGlyph{}, vg.Points(1.2)
		}
		p.Add(dots, line)
		p.Legend.Add(s.name, line)
		drawn++
	}
	if drawn == 0 {
		p.Title.Text += " (no data in this run)"
		p.X.Scale, p.Y.Scale = plot.LinearScale{}, plot.LinearScale{}
		p.X.Tick.Marker, p.Y.Tick.Marker = plot.DefaultTicks{}, plot.DefaultTicks{}
	}
	return p.Save(8*vg.Inch, 5*vg.Inch, path)
}

// fade is c at a third of its opacity, for raw points behind a line.
func fade(c color.Color) color.Color {
	r, g, b, _ := c.RGBA()
	return color.NRGBA{R: uint8(r >> 8), G: uint8(g >> 8), B: uint8(b >> 8), A: 0x60}
}

// points drops what a log axis cannot show.
func points(s series, positiveOnly bool) plotter.XYs {
	var xys plotter.XYs
	for i := range s.xs {
		if positiveOnly && (s.xs[i] <= 0 || s.ys[i] <= 0) {
			continue
		}
		xys = append(xys, plotter.XY{X: s.xs[i], Y: s.ys[i]})
	}
	return xys
}
