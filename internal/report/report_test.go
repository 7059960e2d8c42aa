package report

import (
	"bytes"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/migrun/migrun/plan"
	"github.com/migrun/migrun/runner"
	"github.com/migrun/migrun/steps"
)

const testPlan = `version: 1
name: move-engine-db
description: Move the engine database.
hosts:
  engine: {address: 192.0.2.10}
  db: {address: 192.0.2.11}
steps:
  - id: dump-schema
    host: engine
    command: {argv: ["true"]}
  - id: stop-engine
    host: engine
    service: {name: ovirt-engine, state: stopped}
  - id: restore
    host: db
    description: restore the dump
    command: {argv: ["true"]}
  - id: repoint
    host: engine
    config_set: {file: /etc/ovirt-engine/engine.conf.d/10-setup-database.conf, format: shell, values: {ENGINE_DB_HOST: 192.0.2.11}}
  - id: start-engine
    host: engine
    service: {name: ovirt-engine, state: started}
  - id: cleanup
    host: engine
    command: {argv: ["true"]}
on_failure:
  - id: start-engine-anyway
    host: engine
    service: {name: ovirt-engine, state: started}
`

// testInput is a run that stopped the engine for 12 s, with a reviewed
// plan holding a diff.
func testInput(t *testing.T) Input {
	t.Helper()
	p, err := plan.Parse("plan.yaml", []byte(testPlan), steps.Builtin(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	rec := func(id, kind, host string, from, to float64, changed bool) *runner.StepRecord {
		return &runner.StepRecord{ID: id, Kind: kind, Host: host, Status: runner.StatusDone, Changed: changed,
			Started: at(from), Ended: at(to), Ran: []string{host + ": something for " + id}}
	}
	j := &runner.Journal{Version: 1, Plan: p.Name, PlanFile: "plan.yaml", PlanDigest: p.Digest, RunID: "20261205T100000Z-abcd",
		Status: runner.StatusCompleted, Started: t0, Updated: at(40), Ended: at(40), User: "admin", Workstation: "ws1",
		Reviewed: &runner.ReviewRef{SHA256: strings.Repeat("ab", 32), File: "r.json"},
		Steps: []*runner.StepRecord{
			rec("dump-schema", "command", "engine", 0, 20, true),
			rec("stop-engine", "service", "engine", 20, 22, true),
			rec("restore", "command", "db", 22, 28, true),
			rec("repoint", "config_set", "engine", 28, 29, true),
			rec("start-engine", "service", "engine", 29, 32, true),
			rec("cleanup", "command", "engine", 32, 40, false),
		},
		History: []runner.RunRecord{{RunID: "20261205T100000Z-abcd", Mode: "fresh", Started: t0, Ended: at(40), Status: runner.StatusCompleted, User: "admin", From: "ws1"}},
	}
	rv := &runner.Reviewed{Steps: []runner.ReviewedStep{{ID: "repoint", Actions: []runner.ReviewedAction{{Host: "engine",
		Summary: "edit /etc/ovirt-engine/engine.conf.d/10-setup-database.conf",
		Diff:    "--- a\n+++ b\n-ENGINE_DB_HOST=\"localhost\"\n+ENGINE_DB_HOST=\"192.0.2.11\"\n"}}}}}
	return Input{Plan: p, Journal: j, Reviewed: rv, JournalPath: ".migrun/move-engine-db.journal.json", Generated: at(60), Migrun: "test"}
}

func TestReport(t *testing.T) {
	var buf bytes.Buffer
	if err := Write(&buf, testInput(t)); err != nil {
		t.Fatal(err)
	}
	html := buf.String()
	for _, want := range []string{
		`<svg id="timeline"`,
		"downtime of ovirt-engine on engine: 12.0 s (stop-engine → start-engine)",
		`<code id="reviewed-sha256">` + strings.Repeat("ab", 32) + `</code>`,
		"admin on ws1",
		`<span class="add">&#43;ENGINE_DB_HOST=&#34;192.0.2.11&#34;</span>`,
		"restore the dump",
		"db: something for restore",
		`<text class="lane-name" x="4" y="`, ">db</text>",
	} {
		if !strings.Contains(html, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	// Self-contained: nothing is fetched. The SVG namespace is a name,
	// not a fetch; nothing else may point outside.
	rest := strings.ReplaceAll(html, `xmlns="http://www.w3.org/2000/svg"`, "")
	if m := regexp.MustCompile(`(?i)(src=|href=|@import|url\(|https?://)`).FindString(rest); m != "" {
		t.Errorf("the report refers outside itself: %q", m)
	}
	// One bar per step that ran, on its host's lane.
	if n := strings.Count(html, "<title>"); n != 1+6 {
		t.Errorf("%d titles, want the page's and 6 bars'", n)
	}
}

func TestReportNeverApplied(t *testing.T) {
	in := testInput(t)
	in.Journal = nil
	if err := Write(new(bytes.Buffer), in); err == nil || !strings.Contains(err.Error(), "has not been applied") {
		t.Errorf("no journal: %v", err)
	}
}

// TestReportInBrowser renders the report in headless Chromium and checks
// the screenshot: the chart is there, as wide as laid out, with the
// downtime band over the 12 s the engine was stopped of the 40 s run.
func TestReportInBrowser(t *testing.T) {
	browser := ""
	for _, name := range []string{"chromium-headless-shell", "chromium", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			browser = p
			break
		}
	}
	if browser == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("no headless Chromium: CI must render the report (apt-get install chromium-headless-shell)")
		}
		t.Skip("no headless Chromium")
	}
	dir := t.TempDir()
	page := filepath.Join(dir, "report.html")
	var buf bytes.Buffer
	if err := Write(&buf, testInput(t)); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(page, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	shot := filepath.Join(dir, "shot.png")
	// REPORT_SHOT_DIR=DIR keeps the page and its screenshot there, to look at.
	if d := os.Getenv("REPORT_SHOT_DIR"); d != "" {
		shot = filepath.Join(d, "shot.png")
		os.WriteFile(filepath.Join(d, "report.html"), buf.Bytes(), 0o644)
	}
	cmd := exec.Command(browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
		"--window-size=1280,1000", "--screenshot="+shot, "file://"+page)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", browser, err, out)
	}
	f, err := os.Open(shot)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	near := func(r, g, b, wr, wg, wb uint32) bool {
		d := func(a, b uint32) uint32 {
			if a > b {
				return a - b
			}
			return b - a
		}
		return d(r, wr) <= 12 && d(g, wg) <= 12 && d(b, wb) <= 12
	}
	// The bars of changed steps are #2f81f7, the band is #cf222e at 12%
	// over white (about #f9e4e5). Each one's horizontal extent is taken
	// over the columns holding its colour in more rows than the legend's
	// 12 px swatch: bars are 18 px high, the band covers the lanes.
	extent := func(wr, wg, wb uint32, tall, fromY, toY int) (minX, maxX, minY, maxY int) {
		minX, maxX, minY, maxY = -1, -1, 1<<30, -1
		bounds := img.Bounds()
		for x := bounds.Min.X; x < bounds.Max.X; x++ {
			n, y0, y1 := 0, -1, -1
			for y := max(bounds.Min.Y, fromY); y < min(bounds.Max.Y, toY); y++ {
				r, g, b, _ := img.At(x, y).RGBA()
				if near(r>>8, g>>8, b>>8, wr, wg, wb) {
					n++
					if y0 < 0 {
						y0 = y
					}
					y1 = y
				}
			}
			if n >= tall {
				if minX < 0 {
					minX = x
				}
				maxX, minY, maxY = x, min(minY, y0), max(maxY, y1)
			}
		}
		return minX, maxX, minY, maxY
	}
	barMin, barMax, laneTop, laneBottom := extent(0x2f, 0x81, 0xf7, 15, 0, 1<<30)
	if barMin < 0 || barMax-barMin < 600 {
		t.Fatalf("the chart's bars span x %d..%d; want a chart across the page", barMin, barMax)
	}
	// The band is looked for on the lanes, where the bars are.
	bandMin, bandMax, _, _ := extent(0xf9, 0xe4, 0xe5, 20, laneTop-10, laneBottom+10)
	if bandMin < 0 {
		t.Fatal("no downtime band in the screenshot")
	}
	// The changed (blue) steps run from 0 to 32 s; the band covers the
	// 12 s from 20 to 32 s of them.
	want := float64(barMax-barMin) * 12 / 32
	if got := float64(bandMax - bandMin); got < want*0.9 || got > want*1.1 {
		t.Errorf("downtime band %.0f px wide, want about %.0f (12 s of the 32 s the blue bars span over %d px)", got, want, barMax-barMin)
	}
	if bandMax < barMax-5 || bandMax > barMax+5 {
		t.Errorf("the band ends at x %d, the engine's start at x %d", bandMax, barMax)
	}
}
