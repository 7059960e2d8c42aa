package main

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/migrun/migrun/internal/bytesize"
	"github.com/migrun/migrun/steps"
)

// termProgress draws progress on a terminal as one line redrawn in place:
// a bar for a task whose total is known, the count and rate otherwise, and
// "running" with the time so far for a long step with no task of its own.
// It is used only when stderr is a terminal; logs and pipes get nothing
// extra (--output json carries progress events instead).
type termProgress struct {
	mu      sync.Mutex
	w       io.Writer
	now     func() time.Time
	drawn   bool      // a line is on screen without its newline
	lastBar time.Time // when a bar last drew
}

// redrawEvery keeps a fast task from spending its time on the terminal.
const redrawEvery = 200 * time.Millisecond

func (p *termProgress) Start(t steps.Task) steps.Bar {
	now := p.now()
	return &termBar{p: p, task: t, done: t.Done, start: now}
}

// running shows that step is still at work, unless a bar is showing more.
func (p *termProgress) running(step string, d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.now().Sub(p.lastBar) < time.Second {
		return
	}
	fmt.Fprintf(p.w, "\r\033[K    %s: running, %s", step, d.Round(time.Second))
	p.drawn = true
}

// clear removes an unfinished line before other output.
func (p *termProgress) clear() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.drawn {
		fmt.Fprint(p.w, "\r\033[K")
		p.drawn = false
	}
}

type termBar struct {
	p     *termProgress
	task  steps.Task
	mu    sync.Mutex
	done  int64
	start time.Time
	last  time.Time
}

func (b *termBar) Add(n int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.done += n
	now := b.p.now()
	if now.Sub(b.last) < redrawEvery {
		return
	}
	b.last = now
	b.draw(now, false)
}

func (b *termBar) Done(err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.draw(b.p.now(), true)
}

func (b *termBar) draw(now time.Time, final bool) {
	line := progressLine(b.task, b.done, now.Sub(b.start), final)
	if b.task.Total > 0 {
		line += " " + bar(b.done, b.task.Total, 24)
	}
	b.p.mu.Lock()
	defer b.p.mu.Unlock()
	end := ""
	if final {
		end = "\n"
	}
	fmt.Fprintf(b.p.w, "\r\033[K%s%s", line, end)
	b.p.drawn, b.p.lastBar = !final, now
}

// progressLine is "    label: done / total (pct), rate, ETA" in the
// task's unit; the rate counts this run's work only (a resumed copy's
// earlier bytes are not this run's speed).
func progressLine(t steps.Task, done int64, elapsed time.Duration, final bool) string {
	line := fmt.Sprintf("    %s: %s", t.Label, amount(t.Unit, done))
	if t.Total >= 0 {
		pct := 100.0
		if t.Total > 0 {
			pct = 100 * float64(done) / float64(t.Total)
		}
		line += fmt.Sprintf(" / %s (%.0f%%)", amount(t.Unit, t.Total), pct)
	}
	rate := 0.0
	if s := elapsed.Seconds(); s > 0 {
		rate = float64(done-t.Done) / s
	}
	if t.Unit == steps.UnitBytes {
		line += fmt.Sprintf(", %s/s", bytesize.Format(int64(rate)))
	}
	if !final && t.Total > 0 && rate > 0 {
		eta := time.Duration(float64(t.Total-done)/rate) * time.Second
		line += ", ETA " + eta.Round(time.Second).String()
	}
	return line
}

func amount(u steps.Unit, n int64) string {
	if u == steps.UnitBytes {
		return bytesize.Format(n)
	}
	return fmt.Sprintf("%d %s", n, u)
}

// bar draws [=====>     ] for done of total in width cells.
func bar(done, total int64, width int) string {
	filled := int(float64(width) * float64(min(done, total)) / float64(total))
	s := strings.Repeat("=", filled)
	if filled < width {
		s += ">" + strings.Repeat(" ", width-filled-1)
	}
	return "[" + s + "]"
}
