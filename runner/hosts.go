package runner

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/migrun/migrun/executors"
	"github.com/migrun/migrun/plan"
)

// Workstation is the host name that stands for the machine migrun runs on
// when a step names no host (a copy path without "HOST:").
const Workstation = "workstation"

// Connector opens an executor for a plan host. The CLI's connector makes a
// Local executor for local hosts and dials SSH for the others.
type Connector func(ctx context.Context, h plan.Host) (executors.Executor, error)

// ErrOffline is what steps get for an executor under `plan --offline`.
var ErrOffline = errors.New("not connected (--offline)")

// pool connects to each host once, on first use, and hands the same
// executor to every step after: one SSH connection per host per run.
type pool struct {
	mu       sync.Mutex
	hosts    map[string]plan.Host
	connect  Connector
	readOnly bool
	offline  bool
	open     map[string]executors.Executor
	failed   map[string]error
}

func newPool(hosts map[string]plan.Host, connect Connector, readOnly, offline bool) *pool {
	return &pool{
		hosts: hosts, connect: connect, readOnly: readOnly, offline: offline,
		open: map[string]executors.Executor{}, failed: map[string]error{},
	}
}

// get returns the executor for a plan host ("" is the workstation).
func (p *pool) get(ctx context.Context, name string) (executors.Executor, error) {
	if p.offline {
		return nil, ErrOffline
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if e, ok := p.open[name]; ok {
		return e, nil
	}
	// A host that failed to connect fails every later step the same way
	// instead of dialing (and maybe prompting) again.
	if err, ok := p.failed[name]; ok {
		return nil, err
	}
	h, ok := p.hosts[name]
	if name == "" || name == Workstation {
		h, ok = plan.Host{Name: Workstation, Local: true}, true
	}
	if !ok {
		return nil, fmt.Errorf("unknown host %q", name)
	}
	e, err := p.connect(ctx, h)
	if err != nil {
		err = fmt.Errorf("connect: %w", err) // executors name the host
		p.failed[name] = err
		return nil, err
	}
	if p.readOnly {
		e = executors.ReadOnly(e)
	}
	p.open[name] = e
	return e, nil
}

func (p *pool) close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	var errs []error
	for name, e := range p.open {
		if err := e.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close %s: %w", name, err))
		}
		delete(p.open, name)
	}
	return errors.Join(errs...)
}
