package pg

import (
	"context"
	"strings"
	"sync"

	"github.com/migrun/migrun/executors"
)

// Pool holds sessions opened ahead of the step that will use them: in a
// downtime each psql started costs 100 ms and more before its first
// query, which a session opened while the step before runs has already
// paid. A warm session waits connected to the server's postgres database,
// not to the step's own: a client of that database could stand in the
// way of the step before (a restore that drops it, a capture that refuses
// while another client is connected). Taking it, the step moves it to its
// database with \connect, a new backend on the same psql (a few ms).
type Pool struct {
	mu   sync.Mutex
	idle map[poolKey][]*Session
}

// poolKey is one step's session to one server as one user.
type poolKey struct {
	step, host, server string
	readOnly           bool
}

func keyOf(step string, e executors.Executor, t Target, readOnly bool) poolKey {
	s := t.On("")
	return poolKey{step: step, host: e.Name(), server: strings.Join(s.PsqlArgv(), " ") + " as " + s.RunAs(), readOnly: readOnly}
}

// NewPool returns an empty pool.
func NewPool() *Pool { return &Pool{idle: map[poolKey][]*Session{}} }

// Warm opens, for step, a session to t's server on e and keeps it; it
// returns at once. ctx bounds the session's life: the apply's, not a
// step's.
func (p *Pool) Warm(ctx context.Context, step string, e executors.Executor, t Target, readOnly bool) {
	s := OpenSession(ctx, e, t.On("postgres"), readOnly)
	k := keyOf(step, e, t, readOnly)
	p.mu.Lock()
	closed := p.idle == nil
	if !closed {
		p.idle[k] = append(p.idle[k], s)
	}
	p.mu.Unlock()
	if closed {
		s.Close()
	}
}

// Take returns step's warm session to t's server, moved to t's database,
// or, when there is none or it no longer answers (the server restarted
// since, say), a new session as OpenSession's.
func (p *Pool) Take(ctx context.Context, step string, e executors.Executor, t Target, readOnly bool) *Session {
	k := keyOf(step, e, t, readOnly)
	p.mu.Lock()
	var s *Session
	if q := p.idle[k]; len(q) > 0 {
		s, p.idle[k] = q[0], q[1:]
	}
	p.mu.Unlock()
	if s != nil {
		db := t.Database
		if db == "" {
			db = "postgres"
		}
		if _, err := s.Run(ctx, `\connect `+metaQuote(db)); err == nil {
			return s
		}
		s.Close()
	}
	return OpenSession(ctx, e, t, readOnly)
}

// Drop closes step's sessions not taken.
func (p *Pool) Drop(step string) {
	p.mu.Lock()
	var drop []*Session
	for k, q := range p.idle {
		if k.step == step {
			drop = append(drop, q...)
			delete(p.idle, k)
		}
	}
	p.mu.Unlock()
	closeAll(drop)
}

// Close closes every session not taken; Warm closes what it opens after.
func (p *Pool) Close() {
	p.mu.Lock()
	var drop []*Session
	for _, q := range p.idle {
		drop = append(drop, q...)
	}
	p.idle = nil
	p.mu.Unlock()
	closeAll(drop)
}

func closeAll(ss []*Session) {
	var wg sync.WaitGroup
	for _, s := range ss {
		wg.Add(1)
		go func() { defer wg.Done(); s.Close() }()
	}
	wg.Wait()
}

// metaQuote quotes an argument of a psql meta-command: single quotes,
// a quote doubled, a backslash escaped.
func metaQuote(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `''`).Replace(s) + "'"
}
