package main

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
)

// The plots are plain SVG written by hand: a few lines, circles and text
// elements, no plotting library.

// plotFile is one written plot.
type plotFile struct {
	title string
	file  string
}

// series is one line of a plot: a server's figures by connection count.
type series struct {
	name   string
	color  string
	dashed bool
	points [][2]float64 // x, y
}

// colors gives every server the same color in every plot.
var colors = map[string]string{
	"05 loop":             "#7f7f7f",
	"06 goroutines":       "#1f77b4",
	"07 poll":             "#ff7f0e",
	"07 epoll":            "#d62728",
	"08 sequential":       "#8c564b",
	"08 concurrent":       "#2ca02c",
	"py threads":          "#17becf",
	"py selectors":        "#9467bd",
	"py busy loop":        "#e377c2",
	"C epoll (reference)": "#000000",
}

func colorOf(name string) string {
	if c, ok := colors[name]; ok {
		return c
	}
	return "#bcbd22"
}

func (r results) writePlots(dir string) ([]plotFile, error) {
	var files []plotFile
	for _, size := range r.plan.sizes {
		for _, kind := range []struct {
			file, title, unit string
			value             func(cell) float64
			logY              bool
		}{
			{"throughput", "requests per second", "requests/s", func(c cell) float64 { return c.rps }, false},
			{"p99", "p99 latency", "µs", func(c cell) float64 { return float64(c.p99.Microseconds()) }, true},
		} {
			var all []series
			for _, name := range r.serverNames() {
				s := series{name: name, color: colorOf(name), dashed: strings.HasPrefix(name, "py ")}
				for _, c := range r.cells {
					if c.server == name && c.size == size && c.note == "" {
						s.points = append(s.points, [2]float64{float64(c.conns), math.Max(kind.value(c), 1)})
					}
				}
				if len(s.points) > 0 {
					all = append(all, s)
				}
			}
			title := fmt.Sprintf("%s by connections, %s messages", kind.title, sizeString(size))
			svg := lineChart(title, "connections", kind.unit, all, kind.logY)
			name := fmt.Sprintf("%s-%d.svg", kind.file, size)
			if err := os.WriteFile(filepath.Join(dir, name), svg, 0o644); err != nil {
				return nil, err
			}
			files = append(files, plotFile{title: title, file: name})
		}
	}
	var bars []bar
	for _, i := range r.idle {
		if i.note == "" {
			bars = append(bars, bar{label: i.server, value: i.perConn, color: colorOf(i.server)})
		}
	}
	if len(bars) > 0 {
		title := fmt.Sprintf("resident memory per idle connection (%d idle clients)", r.idle[0].conns)
		if err := os.WriteFile(filepath.Join(dir, "idle-memory.svg"), barChart(title, bars), 0o644); err != nil {
			return nil, err
		}
		files = append(files, plotFile{title: title, file: "idle-memory.svg"})
	}
	return files, nil
}

// serverNames lists the servers in the order they were measured.
func (r results) serverNames() []string {
	var names []string
	seen := map[string]bool{}
	for _, c := range r.cells {
		if !seen[c.server] {
			seen[c.server] = true
			names = append(names, c.server)
		}
	}
	return names
}

const (
	width, height            = 720, 420
	left, right, top, bottom = 70, 170, 40, 50
)

// lineChart draws series on a logarithmic x axis (connections: 1 to
// 10,000) and a linear or logarithmic y axis.
func lineChart(title, xLabel, yLabel string, all []series, logY bool) []byte {
	var b bytes.Buffer
	header(&b, title)
	xMin, xMax := 1.0, 1.0
	yMax, yMin := 1.0, math.Inf(1)
	for _, s := range all {
		for _, p := range s.points {
			xMax = math.Max(xMax, p[0])
			yMax = math.Max(yMax, p[1])
			yMin = math.Min(yMin, p[1])
		}
	}
	xMax = math.Pow(10, math.Ceil(math.Log10(xMax)))
	if xMax <= xMin {
		xMax = 10
	}
	var yTicks []float64
	if logY {
		yMin = math.Pow(10, math.Floor(math.Log10(math.Max(yMin, 1))))
		yMax = math.Pow(10, math.Ceil(math.Log10(yMax)))
		if yMax <= yMin {
			yMax = yMin * 10
		}
		for v := yMin; v <= yMax*1.001; v *= 10 {
			yTicks = append(yTicks, v)
		}
	} else {
		yMin = 0
		step := niceStep(yMax / 5)
		yMax = math.Ceil(yMax/step) * step
		for v := 0.0; v <= yMax*1.001; v += step {
			yTicks = append(yTicks, v)
		}
	}
	plotW, plotH := float64(width-left-right), float64(height-top-bottom)
	xPos := func(x float64) float64 {
		return left + plotW*math.Log10(x/xMin)/math.Log10(xMax/xMin)
	}
	yPos := func(y float64) float64 {
		f := (y - yMin) / (yMax - yMin)
		if logY {
			f = math.Log10(y/yMin) / math.Log10(yMax/yMin)
		}
		return top + plotH*(1-f)
	}

	// Grid and axes.
	for x := xMin; x <= xMax*1.001; x *= 10 {
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#ddd"/>`+"\n", xPos(x), top, xPos(x), height-bottom)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", xPos(x), height-bottom+18, number(x))
	}
	for _, y := range yTicks {
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/>`+"\n", left, yPos(y), width-right, yPos(y))
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n", left-6, yPos(y)+4, number(y))
	}
	fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%.0f" height="%.0f" fill="none" stroke="#333"/>`+"\n", left, top, plotW, plotH)
	fmt.Fprintf(&b, `<text x="%.0f" y="%d" text-anchor="middle">%s (log scale)</text>`+"\n", left+plotW/2, height-12, xLabel)
	scale := ""
	if logY {
		scale = " (log scale)"
	}
	fmt.Fprintf(&b, `<text transform="translate(16,%.0f) rotate(-90)" text-anchor="middle">%s%s</text>`+"\n", top+plotH/2, yLabel, scale)

	// One line per series, and the legend.
	for i, s := range all {
		var pts []string
		for _, p := range s.points {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", xPos(p[0]), yPos(p[1])))
		}
		dash := ""
		if s.dashed {
			dash = ` stroke-dasharray="6 4"`
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="2"%s points="%s"/>`+"\n", s.color, dash, strings.Join(pts, " "))
		for _, p := range pts {
			x, y, _ := strings.Cut(p, ",")
			fmt.Fprintf(&b, `<circle cx="%s" cy="%s" r="3" fill="%s"/>`+"\n", x, y, s.color)
		}
		ly := top + 10 + 20*i
		fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="2"%s/>`+"\n", width-right+12, ly, width-right+36, ly, s.color, dash)
		fmt.Fprintf(&b, `<text x="%d" y="%d">%s</text>`+"\n", width-right+42, ly+4, escapeXML(s.name))
	}
	b.WriteString("</svg>\n")
	return b.Bytes()
}

// bar is one bar of a bar chart.
type bar struct {
	label string
	value float64
	color string
}

// barChart draws horizontal bars with their values written beside them.
func barChart(title string, bars []bar) []byte {
	var b bytes.Buffer
	header(&b, title)
	maxV := 1.0
	for _, br := range bars {
		maxV = math.Max(maxV, br.value)
	}
	const labelW, barH, gap = 150, 22, 10
	plotW := float64(width - left - labelW)
	for i, br := range bars {
		y := top + 10 + i*(barH+gap)
		w := math.Max(plotW*br.value/maxV, 1)
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end">%s</text>`+"\n", labelW, y+barH-6, escapeXML(br.label))
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%.1f" height="%d" fill="%s"/>`+"\n", labelW+8, y, w, barH, br.color)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d">%s</text>`+"\n", float64(labelW+8)+w+6, y+barH-6, bytesString(int64(br.value)))
	}
	b.WriteString("</svg>\n")
	return b.Bytes()
}

func header(b *bytes.Buffer, title string) {
	fmt.Fprintf(b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", width, height, width, height)
	fmt.Fprintf(b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(b, `<text x="%d" y="24" font-size="15" font-weight="bold">%s</text>`+"\n", left, escapeXML(title))
}

// niceStep rounds a raw tick step up to 1, 2 or 5 times a power of ten.
func niceStep(raw float64) float64 {
	if raw <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if raw <= m*p {
			return m * p
		}
	}
	return 10 * p
}

// number prints an axis value compactly: 500, 20k, 1.5M.
func number(v float64) string {
	switch {
	case v >= 1e6:
		return strings.TrimSuffix(fmt.Sprintf("%.1f", v/1e6), ".0") + "M"
	case v >= 1e3:
		return strings.TrimSuffix(fmt.Sprintf("%.1f", v/1e3), ".0") + "k"
	default:
		return strings.TrimSuffix(fmt.Sprintf("%.1f", v), ".0")
	}
}

func escapeXML(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;").Replace(s)
}
