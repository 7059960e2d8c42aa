package runner

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/migrun/migrun/executors"
	"github.com/migrun/migrun/internal/secret"
	"github.com/migrun/migrun/plan"
	"github.com/migrun/migrun/steps"
)

const reviewPassword = "pa55-Review!x"

// reviewPlan is a real plan on the workstation: a config file edited
// twice (the second edit is known only after the first), a command whose
// check is a probe, one guarded by a file, and a secret written to a file.
const reviewPlan = `version: 1
name: review
vars:
  dir: DIR
secrets:
  pw: {env: REVIEW_PW}
hosts:
  here: {local: true}
steps:
  - id: probe
    host: here
    command: {argv: [touch, "${dir}/probed"], unless: "cat ${dir}/state; test -e ${dir}/probed"}
  - id: guarded
    host: here
    command: {argv: [touch, "${dir}/guard"], creates: "${dir}/guard"}
  - id: set-host
    host: here
    config_set: {file: "${dir}/app.conf", format: shell, values: {DB_HOST: db2, DB_PASSWORD: "${pw}"}}
  - id: set-port
    host: here
    config_set: {file: "${dir}/app.conf", format: shell, values: {DB_PORT: "5433"}}
`

type reviewFixture struct {
	t   *testing.T
	dir string
	p   *plan.Plan
	sec secret.Values
}

func newReviewFixture(t *testing.T) *reviewFixture {
	t.Helper()
	dir := t.TempDir()
	src := strings.ReplaceAll(reviewPlan, "DIR", dir)
	p, err := plan.Parse(filepath.Join(dir, "review.yaml"), []byte(src), steps.Builtin(), nil)
	if err != nil {
		t.Fatal(err)
	}
	sec, err := p.ResolveSecrets(func(string) string { return reviewPassword }, nil)
	if err != nil {
		t.Fatal(err)
	}
	f := &reviewFixture{t: t, dir: dir, p: p, sec: sec}
	f.write("state", "active\n", 0o644)
	f.write("app.conf", "DB_HOST=\"db1\"\nDB_PASSWORD=\"old-secret\"\n", 0o644)
	f.write("guard", "", 0o644)
	return f
}

func (f *reviewFixture) write(name, content string, mode os.FileMode) {
	f.t.Helper()
	p := filepath.Join(f.dir, name)
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		f.t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		f.t.Fatal(err)
	}
}

func (f *reviewFixture) review() *Reviewed {
	f.t.Helper()
	connect := func(ctx context.Context, h plan.Host) (executors.Executor, error) {
		return executors.NewLocal(h.Name), nil
	}
	now := func() time.Time { return time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC) }
	r := New(f.p, connect, f.sec, Options{StateDir: filepath.Join(f.dir, "state-dir"), Now: now})
	pv, err := r.Plan(context.Background())
	if err != nil {
		f.t.Fatal(err)
	}
	return r.Review(pv, "test")
}

func stepOf(t *testing.T, rv *Reviewed, id string) ReviewedStep {
	t.Helper()
	for _, s := range rv.Steps {
		if s.ID == id {
			return s
		}
	}
	t.Fatalf("no step %s in review", id)
	return ReviewedStep{}
}

func TestReviewRoundTripIsCanonical(t *testing.T) {
	f := newReviewFixture(t)
	rv := f.review()
	data, err := rv.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseReviewed(data)
	if err != nil {
		t.Fatal(err)
	}
	again, err := back.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(data, again) {
		t.Errorf("round trip changed the file:\n%s\n---\n%s", data, again)
	}
	// A second dry run of unchanged hosts gives the same bytes: the file
	// is canonical, so reviews diff cleanly and hash stably.
	second, _ := f.review().Marshal()
	if !bytes.Equal(data, second) {
		t.Errorf("two reviews of the same state differ")
	}
	if d := Compare(back, f.review()); len(d) != 0 {
		t.Errorf("no change, yet drift: %v", d)
	}
	if back.Plan.Source == "" || back.Plan.Digest != f.p.Digest || back.Vars["dir"] != f.dir {
		t.Errorf("plan source, digest or vars missing: %+v", back.Plan)
	}
	if !IsReviewed(data) || IsReviewed([]byte("version: 1\n")) {
		t.Error("IsReviewed cannot tell a reviewed plan from YAML")
	}
	if _, err := ParseReviewed([]byte(`{"format":"other"}`)); err == nil {
		t.Error("a file of another format was accepted")
	}
	// A digest cut short by hand is refused, not sliced into a panic.
	short := bytes.Replace(data, []byte(back.Plan.Digest), []byte("abc"), 1)
	if _, err := ParseReviewed(short); err == nil || !strings.Contains(err.Error(), "not a sha256") {
		t.Errorf("a short digest: err %v", err)
	}
}

func TestReviewHoldsNoSecret(t *testing.T) {
	f := newReviewFixture(t)
	data, err := f.review().Marshal()
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{reviewPassword, "old-secret"} {
		for _, form := range []string{v, base64.StdEncoding.EncodeToString([]byte(v)), base64.RawURLEncoding.EncodeToString([]byte(v))} {
			if bytes.Contains(data, []byte(form)) {
				t.Errorf("reviewed plan holds %q", form)
			}
		}
	}
	// Nor a hash that depends on the secret: the same review with another
	// password value and another old password gives the same bytes.
	g := newReviewFixture(t)
	g.dir = f.dir
	g.write("app.conf", "DB_HOST=\"db1\"\nDB_PASSWORD=\"other-old\"\n", 0o644)
	g.sec, _ = f.p.ResolveSecrets(func(string) string { return "another-password" }, nil)
	g.p = f.p
	other, _ := g.review().Marshal()
	if !bytes.Equal(data, other) {
		t.Error("the reviewed plan changes with the value of a secret: it holds something derived from it")
	}
}

func TestReviewDetectsDrift(t *testing.T) {
	tests := []struct {
		name   string
		change func(f *reviewFixture)
		want   []string // substrings of one drift line each
	}{
		{"file contents", func(f *reviewFixture) { f.write("app.conf", "DB_HOST=\"db9\"\n", 0o644) },
			[]string{"here: file " + "DIR/app.conf", "set-host, set-port"}},
		{"file mode", func(f *reviewFixture) { f.write("guard", "", 0o600) },
			[]string{"here: stat DIR/guard: was file 0644", "now file 0600"}},
		{"file owner", func(f *reviewFixture) {
			if os.Getuid() != 0 {
				f.t.Skip("chown needs root")
			}
			os.Chown(filepath.Join(f.dir, "guard"), 1, 1)
		}, []string{"here: stat DIR/guard", "now file 0644 owner 1:1"}},
		{"file removed", func(f *reviewFixture) { os.Remove(filepath.Join(f.dir, "guard")) },
			[]string{"now missing", "verdict: was known after earlier steps, now would change"}},
		{"probe output", func(f *reviewFixture) { f.write("state", "inactive\n", 0o644) },
			[]string{"here: run: sh -c", "was active"}},
		{"variable", func(f *reviewFixture) { f.p.Vars["dir"] = "/elsewhere" }, []string{"plan: variable dir"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newReviewFixture(t)
			before := f.review()
			tc.change(f)
			drift := Compare(before, f.review())
			var lines []string
			for _, d := range drift {
				lines = append(lines, d.String())
			}
			all := strings.Join(lines, "\n")
			for _, w := range tc.want {
				w = strings.ReplaceAll(w, "DIR", f.dir)
				if !strings.Contains(all, w) {
					t.Errorf("drift does not mention %q:\n%s", w, all)
				}
			}
		})
	}
}

// A detection answered otherwise than at the review is drift: the
// reviewer saw the steps its answer selected.
func TestReviewDetectionDrift(t *testing.T) {
	f := newReviewFixture(t)
	f.p.Detect = []plan.Detection{{Name: "has_marker", Host: "here", File: filepath.Join(f.dir, "marker")}}
	before := f.review()
	if before.Detected["has_marker"] != "false" {
		t.Fatalf("reviewed detections: %v", before.Detected)
	}
	f.write("marker", "", 0o644)
	var lines []string
	for _, d := range Compare(before, f.review()) {
		lines = append(lines, d.String())
	}
	if all := strings.Join(lines, "\n"); !strings.Contains(all, "detection has_marker") || !strings.Contains(all, "false") {
		t.Errorf("drift does not name the detection:\n%s", all)
	}
}

func TestReviewMarksStateKnownAfterEarlierSteps(t *testing.T) {
	f := newReviewFixture(t)
	rv := f.review()
	if s := stepOf(t, rv, "probe"); s.Status != PreviewChange || s.KnownAfter != "" {
		t.Errorf("first step: status %q known_after %q, want would change and known now", s.Status, s.KnownAfter)
	}
	// guarded is done now, but probe changes its host first: the reviewer
	// must not read "already done" as a promise.
	if s := stepOf(t, rv, "guarded"); s.Status != PreviewLater || s.KnownAfter != "probe" {
		t.Errorf("guarded: status %q known_after %q, want %q after probe", s.Status, s.KnownAfter, PreviewLater)
	}
	if s := stepOf(t, rv, "set-port"); s.KnownAfter == "" {
		t.Errorf("the second edit of app.conf is not marked known after an earlier step")
	}
	// Once nothing before it is pending, a done step is plainly done.
	f.write("probed", "", 0o644)
	if s := stepOf(t, f.review(), "guarded"); s.Status != PreviewDone || s.KnownAfter != "" {
		t.Errorf("with probe done, guarded: status %q known_after %q, want already done", s.Status, s.KnownAfter)
	}
}

func TestJournalRecordsReviewAndWhatRan(t *testing.T) {
	f := newReviewFixture(t)
	connect := func(ctx context.Context, h plan.Host) (executors.Executor, error) {
		return executors.NewLocal(h.Name), nil
	}
	ref := &ReviewRef{SHA256: strings.Repeat("ab", 32), File: "r.json"}
	r := New(f.p, connect, f.sec, Options{StateDir: filepath.Join(f.dir, "state-dir"), Reviewed: ref})
	j, err := r.Apply(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if j.Reviewed == nil || j.Reviewed.SHA256 != ref.SHA256 || j.History[len(j.History)-1].Reviewed == nil {
		t.Errorf("journal does not record the reviewed file: %+v", j.Reviewed)
	}
	if got := j.Steps[0].Ran; len(got) != 1 || !strings.Contains(got[0], "touch "+f.dir+"/probed") {
		t.Errorf("probe ran %q, want the touch", got)
	}
	if got := strings.Join(j.Steps[2].Ran, "\n"); !strings.Contains(got, "write "+f.dir+"/app.conf") {
		t.Errorf("set-host ran %q, want the write of app.conf", got)
	}
	data, _ := os.ReadFile(JournalPath(filepath.Join(f.dir, "state-dir"), "review"))
	if bytes.Contains(data, []byte(reviewPassword)) {
		t.Error("journal holds the secret")
	}
	// Resuming a run of one reviewed file with another (or with none) is
	// refused: the journal's steps were approved as part of that review.
	failed := &Journal{Status: StatusFailed, Reviewed: ref}
	for _, other := range []*ReviewRef{nil, {SHA256: strings.Repeat("cd", 32)}} {
		r := New(f.p, connect, f.sec, Options{Resume: true, Reviewed: other})
		if _, _, err := r.prepareJournal(failed); !errors.Is(err, ErrOtherReview) {
			t.Errorf("resume with review %v of a run of %v: err %v, want ErrOtherReview", other, ref, err)
		}
	}
}
