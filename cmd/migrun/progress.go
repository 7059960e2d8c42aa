package main

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/migrun/migrun/steps"
)

// lineProgress reports transfers: on a terminal one line redrawn in place,
// otherwise (CI, pipes) a plain line every interval, so logs stay readable.
type lineProgress struct {
	w        io.Writer
	tty      bool
	interval time.Duration
	now      func() time.Time
}

func (p *lineProgress) Start(label string, total, done int64) steps.Bar {
	now := p.now()
	return &lineBar{p: p, label: label, total: total, done: done, start: now, startDone: done, last: now}
}

type lineBar struct {
	p         *lineProgress
	mu        sync.Mutex
	label     string
	total     int64
	done      int64
	startDone int64
	start     time.Time
	last      time.Time
}

func (b *lineBar) Add(n int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.done += n
	now := b.p.now()
	every := b.p.interval
	if b.p.tty {
		every = 200 * time.Millisecond
	}
	if now.Sub(b.last) < every {
		return
	}
	b.last = now
	b.print(now, false)
}

func (b *lineBar) Done(err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.print(b.p.now(), true)
}

func (b *lineBar) print(now time.Time, final bool) {
	elapsed := now.Sub(b.start).Seconds()
	rate := 0.0
	if elapsed > 0 {
		rate = float64(b.done-b.startDone) / elapsed
	}
	line := fmt.Sprintf("    %s: %s", b.label, byteSize(b.done))
	if b.total >= 0 {
		pct := 100.0
		if b.total > 0 {
			pct = 100 * float64(b.done) / float64(b.total)
		}
		line += fmt.Sprintf(" / %s (%.0f%%)", byteSize(b.total), pct)
	}
	line += fmt.Sprintf(", %s/s", byteSize(int64(rate)))
	if !final && b.total > 0 && rate > 0 {
		eta := time.Duration(float64(b.total-b.done)/rate) * time.Second
		line += ", ETA " + eta.Round(time.Second).String()
	}
	if b.p.tty {
		if b.total > 0 {
			line += " " + bar(b.done, b.total, 24)
		}
		end := ""
		if final {
			end = "\n"
		}
		fmt.Fprintf(b.p.w, "\r\033[K%s%s", line, end)
		return
	}
	fmt.Fprintln(b.p.w, line)
}

func byteSize(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
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
