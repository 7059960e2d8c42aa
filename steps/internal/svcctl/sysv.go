package svcctl

import (
	"context"
	"errors"

	"github.com/migrun/migrun/executors"
	"github.com/migrun/migrun/steps/internal/hostcmd"
)

// Starting at boot on hosts without systemd (SysV init).

// sysvBoot is how a SysV host tells and changes whether a service starts
// at boot: chkconfig (Red Hat) or update-rc.d (Debian).
type sysvBoot struct {
	probe   executors.Command // exits 0 when the service starts at boot
	on, off []string
}

func (w Want) sysvBoot(ctx context.Context, h *hostcmd.Session) (sysvBoot, error) {
	tool, err := h.First(ctx, "chkconfig", "update-rc.d")
	if err != nil {
		return sysvBoot{}, err
	}
	switch tool {
	case "chkconfig":
		// chkconfig NAME exits 0 when the service starts in the current
		// runlevel.
		return sysvBoot{probe: executors.Command{Argv: []string{"chkconfig", w.Name}},
			on: []string{"chkconfig", w.Name, "on"}, off: []string{"chkconfig", w.Name, "off"}}, nil
	case "update-rc.d":
		// update-rc.d has no query: a start link in a multi-user runlevel
		// is what it would have made.
		return sysvBoot{probe: executors.Command{Script: "ls /etc/rc[2345].d/S[0-9][0-9]" + executors.Quote(w.Name) + " >/dev/null 2>&1"},
			on: []string{"update-rc.d", w.Name, "enable"}, off: []string{"update-rc.d", w.Name, "disable"}}, nil
	}
	return sysvBoot{}, errors.New("neither chkconfig nor update-rc.d found: cannot change whether " + w.Name + " starts at boot")
}

// planBootSysV uses chkconfig (Red Hat) or update-rc.d (Debian).
func (w Want) planBootSysV(ctx context.Context, h *hostcmd.Session, p *Plan, want bool) error {
	b, err := w.sysvBoot(ctx, h)
	if err != nil {
		return err
	}
	r, err := h.Probe(ctx, b.probe)
	if err != nil {
		return err
	}
	switch {
	case want && r.OK():
		p.Reasons = append(p.Reasons, w.Name+" is enabled at boot")
	case want:
		p.Boot = &hostcmd.Cmd{Cmd: executors.Command{Argv: b.on}}
		p.Reasons = append(p.Reasons, w.Name+" is not enabled at boot")
	case r.OK():
		p.Boot = &hostcmd.Cmd{Cmd: executors.Command{Argv: b.off}}
		p.Reasons = append(p.Reasons, w.Name+" is enabled at boot")
	default:
		p.Reasons = append(p.Reasons, w.Name+" is not enabled at boot")
	}
	return nil
}
