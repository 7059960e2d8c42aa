package steps

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/migrun/migrun/executors"
)

func TestPackageValidate(t *testing.T) {
	tests := []struct {
		name string
		pkg  Package
		want []string
	}{
		{"names", Package{Names: []string{"postgresql-server", "glibc.i686", "libstdc++6", "python3_x"}}, nil},
		{"option", Package{Names: []string{"-y"}}, []string{"names: not a package name"}},
		{"shell", Package{Names: []string{"a;rm"}}, []string{"names: not a package name"}},
		{"space", Package{Names: []string{"a b"}}, []string{"names: not a package name"}},
		{"empty", Package{Names: []string{""}}, []string{"names: not a package name"}},
		{"twice", Package{Names: []string{"a", "b", "a"}}, []string{`names: "a" is listed twice`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkProblems(t, tt.pkg.Validate(), tt.want) })
	}
}

var (
	hasDnf = replyOK("command -v dnf", "/usr/bin/dnf\n")
	hasYum = replyOK("command -v yum", "/usr/bin/yum\n")
	hasApt = replyOK("command -v apt-get", "/usr/bin/apt-get\n")
)

func TestPackage(t *testing.T) {
	srv := []string{"postgresql-server", "postgresql-contrib", "rsync"}
	rpmSome := replyOut("rpm -q postgresql-server postgresql-contrib rsync", 2,
		"package postgresql-server is not installed\npackage postgresql-contrib is not installed\nrsync-3.1.3-19.el8.x86_64\n")
	rpmAll := replyOK("rpm -q", "postgresql-server-13.7-1.el8.x86_64\npostgresql-contrib-13.7-1.el8.x86_64\nrsync-3.1.3-19.el8.x86_64\n")
	dpkgQuery := "dpkg-query -W -f '${Package} ${Status}\\n' "
	tests := []hostKindCase{
		{
			name:       "dnf installs only the missing",
			spec:       &Package{Names: srv},
			replies:    replies(hasDnf, rpmSome.once(1), rpmAll, replyOK("dnf install", "Complete!\n")),
			wantReason: "not installed: postgresql-server, postgresql-contrib; installed: rsync",
			wantCheck:  []string{"? command -v dnf", "? rpm -q postgresql-server postgresql-contrib rsync"},
			wantActs:   []string{"run on db: dnf install -y postgresql-server postgresql-contrib (already installed: rsync)"},
			wantApply: []string{"? command -v dnf", "? rpm -q postgresql-server postgresql-contrib rsync",
				"! dnf install -y postgresql-server postgresql-contrib", "? rpm -q postgresql-server postgresql-contrib rsync"},
		},
		{
			name:       "all installed",
			spec:       &Package{Names: srv, State: "present"},
			replies:    replies(hasDnf, rpmAll),
			wantDone:   true,
			wantReason: "installed: postgresql-server, postgresql-contrib, rsync",
			wantApply:  []string{"? command -v dnf", "? rpm -q postgresql-server postgresql-contrib rsync"},
		},
		{
			name:       "yum when there is no dnf",
			spec:       &Package{Names: []string{"rsync"}},
			replies:    replies(hasYum, replyOut("rpm -q rsync", 1, "package rsync is not installed\n").once(1), replyOK("rpm -q rsync", "rsync-3.0.6\n"), replyOK("yum install", "")),
			wantActs:   []string{"run on db: yum install -y rsync"},
			wantReason: "not installed: rsync",
			wantApply:  []string{"? command -v dnf", "? command -v yum", "? rpm -q rsync", "! yum install -y rsync", "? rpm -q rsync"},
		},
		{
			name: "apt-get, noninteractive",
			spec: &Package{Names: []string{"postgresql-13", "rsync", "old"}},
			replies: replies(hasApt,
				// rsync: one line per architecture; old: removed, configuration left.
				&scriptedReply{prefix: dpkgQuery, code: 1, out: "rsync install ok installed\nrsync deinstall ok not-installed\nold deinstall ok config-files\n",
					errOut: "dpkg-query: no packages found matching postgresql-13\n", times: 1},
				replyOK(dpkgQuery, "postgresql-13 install ok installed\nrsync install ok installed\nold install ok installed\n"),
				replyOK("DEBIAN_FRONTEND=noninteractive apt-get install", "")),
			wantReason: "not installed: postgresql-13, old; installed: rsync",
			wantActs:   []string{"run on db: DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql-13 old (already installed: rsync)"},
			wantApply: []string{"? command -v dnf", "? command -v yum", "? command -v apt-get",
				"? " + dpkgQuery + "postgresql-13 rsync old",
				"! DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql-13 old",
				"? " + dpkgQuery + "postgresql-13 rsync old"},
		},
		{
			name:       "absent removes only the installed",
			spec:       &Package{Names: srv, State: "absent"},
			replies:    replies(hasDnf, rpmSome.once(1), replyOut("rpm -q", 3, "package postgresql-server is not installed\npackage postgresql-contrib is not installed\npackage rsync is not installed\n"), replyOK("dnf remove", "")),
			wantReason: "installed: rsync; not installed: postgresql-server, postgresql-contrib",
			wantActs:   []string{"run on db: dnf remove -y rsync (already not installed: postgresql-server, postgresql-contrib)"},
			wantApply: []string{"? command -v dnf", "? rpm -q postgresql-server postgresql-contrib rsync",
				"! dnf remove -y rsync", "? rpm -q postgresql-server postgresql-contrib rsync"},
		},
		{
			name:       "absent, none installed",
			spec:       &Package{Names: []string{"rsync"}, State: "absent"},
			replies:    replies(hasApt, &scriptedReply{prefix: dpkgQuery, code: 1, errOut: "dpkg-query: no packages found matching rsync\n"}),
			wantDone:   true,
			wantReason: "not installed: rsync",
		},
		{
			// yum exits 0 for a name no repository has: the second
			// look at the package database catches it.
			name:       "installed nothing yet exited 0",
			spec:       &Package{Names: []string{"postgresql-serverr"}},
			replies:    replies(hasYum, replyOut("rpm -q", 1, "package postgresql-serverr is not installed\n"), replyOK("yum install", "No package postgresql-serverr available.\nNothing to do\n")),
			wantReason: "not installed: postgresql-serverr",
			wantActs:   []string{"run on db: yum install -y postgresql-serverr"},
			wantErr:    "yum exited 0 but postgresql-serverr not installed",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, tt.run)
	}
}

func TestPackageErrors(t *testing.T) {
	ctx := context.Background()
	// No package manager.
	_, err := (&Package{Names: []string{"x"}}).Check(ctx, runOn(newScriptedHost(t)))
	if err == nil || !strings.Contains(err.Error(), "none of dnf, yum and apt-get found") || !strings.Contains(err.Error(), "on db") {
		t.Errorf("Check error = %v, want none of dnf, yum and apt-get ... on db", err)
	}
	// rpm failing in a way that is not "not installed" is an error, not
	// an answer.
	h := newScriptedHost(t, hasDnf, replyFail("rpm -q", 1, "error: rpmdb open failed"))
	_, err = (&Package{Names: []string{"x"}}).Check(ctx, runOn(h))
	var exit *executors.ExitError
	if !errors.As(err, &exit) || !strings.Contains(err.Error(), "rpmdb open failed") {
		t.Errorf("Check error = %v, want rpm's ExitError", err)
	}
	// A failing install keeps its ExitError and output.
	h = newScriptedHost(t, hasDnf, replyOut("rpm -q", 1, "package x is not installed\n"),
		&scriptedReply{prefix: "dnf install", code: 1, out: "Last metadata expiration check\n", errOut: "Error: Unable to find a match: x"})
	out, err := (&Package{Names: []string{"x"}}).Apply(ctx, runOn(h))
	if !errors.As(err, &exit) || exit.ExitCode != 1 || !strings.HasPrefix(err.Error(), "install packages x on db: ") {
		t.Errorf("Apply error = %v, want dnf's ExitError, naming the work and host", err)
	}
	if !out.Changed || !strings.Contains(out.Output, "Unable to find a match") {
		t.Errorf("Outcome = %+v, want changed with dnf's output", out)
	}
}

func TestPackageDryRun(t *testing.T) {
	h := newScriptedHost(t, hasDnf, replyOut("rpm -q", 1, "package x is not installed\n"))
	rt := runOn(executors.ReadOnly(h))
	p := &Package{Names: []string{"x"}}
	if _, err := p.Apply(context.Background(), rt); !errors.Is(err, executors.ErrDryRun) {
		t.Errorf("Apply through ReadOnly: err = %v, want ErrDryRun", err)
	}
	if c := h.changes(); len(c) > 0 {
		t.Errorf("dry run changed the host: %q", c)
	}
}
