package report

import (
	"fmt"
	"math"
	"time"
)

// The chart is drawn here, as SVG coordinates the template only prints:
// no script runs in the page.

const (
	labelWidth = 190 // the lane names' column
	plotWidth  = 960
	laneHeight = 30
	barHeight  = 18
	bandLabel  = 18 // a line above the lanes per downtime label
	axisHeight = 24
)

type chart struct {
	Width, Height       int
	LabelWidth          int
	PlotTop, PlotBottom int
	Lanes               []chartLane
	Bars                []chartBar
	Bands               []chartBand
	Ticks               []chartTick
	Empty               bool // no step ran: nothing to draw
}

type chartLane struct {
	Name string
	Y    int // top of the lane
	Mid  int
}

type chartBar struct {
	X, Y, W, H int
	Class      string // the verdict, and "rollback" for on_failure steps
	Label      string // shown inside when it fits
	Title      string // the tooltip
}

type chartBand struct {
	X, W   int
	LabelY int
	Label  string
}

type chartTick struct {
	X     int
	Label string
}

func layout(v view) chart {
	all := append(append([]stepView(nil), v.Steps...), v.OnFailure...)
	var t0, t1 time.Time
	for _, s := range all {
		if s.Started.IsZero() {
			continue
		}
		end := s.Ended
		if end.IsZero() {
			end = v.Journal.Updated // a step left running: up to the last record
		}
		if t0.IsZero() || s.Started.Before(t0) {
			t0 = s.Started
		}
		if end.After(t1) {
			t1 = end
		}
	}
	c := chart{LabelWidth: labelWidth, Width: labelWidth + plotWidth + 20}
	if t0.IsZero() || !t1.After(t0) {
		c.Empty = true
		c.Height = 40
		return c
	}
	span := t1.Sub(t0)
	x := func(t time.Time) int { return labelWidth + int(float64(plotWidth)*float64(t.Sub(t0))/float64(span)) }

	c.PlotTop = 10 + bandLabel*len(v.Downtimes)
	lanes := map[string]int{}
	for _, s := range all {
		if _, ok := lanes[s.Lane]; !ok && !s.Started.IsZero() {
			y := c.PlotTop + laneHeight*len(c.Lanes)
			lanes[s.Lane] = len(c.Lanes)
			c.Lanes = append(c.Lanes, chartLane{Name: s.Lane, Y: y, Mid: y + laneHeight/2})
		}
	}
	c.PlotBottom = c.PlotTop + laneHeight*len(c.Lanes)
	c.Height = c.PlotBottom + axisHeight + 10

	for _, s := range all {
		if s.Started.IsZero() {
			continue
		}
		end := s.Ended
		if end.IsZero() {
			end = t1
		}
		l := c.Lanes[lanes[s.Lane]]
		b := chartBar{X: x(s.Started), Y: l.Y + (laneHeight-barHeight)/2, H: barHeight, Class: s.Verdict,
			Title: fmt.Sprintf("%s (%s) on %s: %s, %s", s.ID, s.Kind, s.Lane, s.Verdict, duration(end.Sub(s.Started)))}
		b.W = max(x(end)-b.X, 2)
		if s.Rollback {
			b.Class += " rollback"
		}
		if b.W >= 7*len(s.ID)+6 {
			b.Label = s.ID
		}
		c.Bars = append(c.Bars, b)
	}
	for i, d := range v.Downtimes {
		bx := x(d.From)
		c.Bands = append(c.Bands, chartBand{X: bx, W: max(x(d.To)-bx, 2), LabelY: 10 + bandLabel*i + 12,
			Label: fmt.Sprintf("downtime of %s on %s: %s (%s → %s)", d.Service, d.Host, duration(d.Length()), d.StopID, d.StartID)})
	}
	step := tickStep(span)
	for t := t0; !t.After(t1); t = t.Add(step) {
		label := "0"
		if t.After(t0) {
			label = "+" + duration(t.Sub(t0))
		}
		c.Ticks = append(c.Ticks, chartTick{X: x(t), Label: label})
	}
	return c
}

// tickStep is a round interval giving about eight ticks over span.
func tickStep(span time.Duration) time.Duration {
	raw := span.Seconds() / 8
	if raw <= 0.001 {
		return time.Millisecond
	}
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if raw <= m*p {
			return time.Duration(m * p * float64(time.Second))
		}
	}
	return time.Duration(10 * p * float64(time.Second))
}
