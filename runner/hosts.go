package runner

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

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
// Different hosts connect concurrently (connectAll dials them all at once).
type pool struct {
	hosts    map[string]plan.Host
	connect  Connector
	readOnly bool
	offline  bool
	trace    *tracer // nil: no trace

	mu    sync.Mutex
	conns map[string]*hostConn
}

// hostConn is one host's connection, made once. A host that failed to
// connect fails every later step the same way instead of dialing (and
// maybe prompting) again.
type hostConn struct {
	once sync.Once
	e    executors.Executor
	err  error
}

func newPool(hosts map[string]plan.Host, connect Connector, readOnly, offline bool) *pool {
	return &pool{hosts: hosts, connect: connect, readOnly: readOnly, offline: offline, conns: map[string]*hostConn{}}
}

// get returns the executor for a plan host ("" is the workstation).
func (p *pool) get(ctx context.Context, name string) (executors.Executor, error) {
	if p.offline {
		return nil, ErrOffline
	}
	h, ok := p.hosts[name]
	if name == "" || name == Workstation {
		name, h, ok = Workstation, plan.Host{Name: Workstation, Local: true}, true
	}
	if !ok {
		return nil, fmt.Errorf("unknown host %q", name)
	}
	p.mu.Lock()
	c := p.conns[name]
	if c == nil {
		c = &hostConn{}
		p.conns[name] = c
	}
	p.mu.Unlock()
	c.once.Do(func() {
		start := time.Now()
		e, err := p.connect(ctx, h)
		p.trace.since(traceStep(ctx), name, "connect", start, err)
		if err != nil {
			c.err = fmt.Errorf("connect: %w", err) // executors name the host
			return
		}
		if p.readOnly {
			e = executors.ReadOnly(e)
		}
		if p.trace != nil {
			e = executors.Timed(e, p.trace.op)
		}
		c.e = e
	})
	return c.e, c.err
}

func (p *pool) close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	var errs []error
	for name, c := range p.conns {
		if c.e != nil {
			start := time.Now()
			err := c.e.Close()
			p.trace.since("", name, "close", start, err)
			if err != nil {
				errs = append(errs, fmt.Errorf("close %s: %w", name, err))
			}
		}
		delete(p.conns, name)
	}
	return errors.Join(errs...)
}
