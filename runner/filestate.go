package runner

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/migrun/migrun/executors"
)

// FileStore keeps journals and locks as files in a directory, by default
// .migrun beside the plan: NAME.journal.json (the snapshot),
// NAME.journal.log (the transitions since) and NAME.lock.
//
// The snapshot is rewritten atomically, with fsync, when a run starts and
// ends; in between, every transition is appended to the log as one JSON
// line, and Read replays the log over the snapshot. An append costs a
// write, where a snapshot costs a marshal of the whole journal, a file
// creation, a rename and two fsyncs: that made the runner's own overhead
// milliseconds per step.
//
// Durability: the log is fdatasynced when a step is about to change its
// hosts (its "running" record), which also makes every record before it
// durable. So after a crash of the machine a step recorded done is never
// run again unless it is the last one, which the journal then shows as
// running and resume re-checks; a kill of migrun itself loses nothing
// (written records are in the page cache).
type FileStore struct {
	Dir string
}

func (s FileStore) String() string { return "state dir " + s.Dir }

// JournalPath is where the journal of the plan called name lives.
func JournalPath(stateDir, name string) string {
	return filepath.Join(stateDir, name+".journal.json")
}

func logPath(journalPath string) string {
	return strings.TrimSuffix(journalPath, ".json") + ".log"
}

// Read loads a journal and replays its log; a missing journal is (nil, nil).
func (s FileStore) Read(_ context.Context, name string) (*Journal, error) {
	return ReadJournal(JournalPath(s.Dir, name))
}

// ReadJournal loads the journal file at path and replays the log beside
// it; a missing file returns (nil, nil).
func ReadJournal(path string) (*Journal, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read journal: %w", err)
	}
	j, err := DecodeJournal(data, path)
	if err != nil {
		return nil, err
	}
	entries, err := readLog(logPath(path))
	if err != nil {
		return nil, err
	}
	if err := j.Replay(entries); err != nil {
		return nil, fmt.Errorf("journal log %s: %w", logPath(path), err)
	}
	return j, nil
}

// readLog reads the log at path, if any. A torn last line (a crash in the
// middle of a write) is left out: its transition never completed.
func readLog(path string) ([]LogEntry, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read journal log: %w", err)
	}
	var entries []LogEntry
	lines := bytes.Split(data, []byte("\n"))
	for n, line := range lines {
		if len(line) == 0 {
			continue
		}
		var e LogEntry
		if err := json.Unmarshal(line, &e); err != nil {
			if n == len(lines)-1 {
				break // torn by a crash mid-write
			}
			return nil, fmt.Errorf("journal log %s line %d is corrupt: %w", path, n+1, err)
		}
		entries = append(entries, e)
	}
	return entries, nil
}

// Names lists the plans with a journal in the directory.
func (s FileStore) Names(context.Context) ([]string, error) {
	paths, err := filepath.Glob(filepath.Join(s.Dir, "*.journal.json"))
	if err != nil {
		return nil, err
	}
	names := make([]string, len(paths))
	for i, p := range paths {
		names[i] = strings.TrimSuffix(filepath.Base(p), ".journal.json")
	}
	sort.Strings(names)
	return names, nil
}

// Lock takes an exclusive flock(2) on NAME.lock. The kernel drops it when
// the process dies, even by SIGKILL, so a crashed run never leaves a stale
// lock behind; the file's text only says who held it.
func (s FileStore) Lock(_ context.Context, name string, h Holder) (Lock, error) {
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("state dir: %w", err)
	}
	path := filepath.Join(s.Dir, name+".lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder, _ := os.ReadFile(path)
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w (lock %s held by %s)", ErrLocked, path, strings.TrimSpace(string(holder)))
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	info := fmt.Sprintf("pid %d on %s since %s\n", h.PID, h.Workstation, h.Since.UTC().Format(time.RFC3339))
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(info), 0)
	}
	return &fileLock{f: f, journal: JournalPath(s.Dir, name)}, nil
}

// HeldBy tries a shared flock on NAME.lock, which fails while an apply
// holds it; it changes nothing (a missing lock file is a free lock).
func (s FileStore) HeldBy(_ context.Context, name string) (string, error) {
	path := filepath.Join(s.Dir, name+".lock")
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB); err != nil {
		if errors.Is(err, syscall.EWOULDBLOCK) {
			holder, _ := os.ReadFile(path)
			if h := strings.TrimSpace(string(holder)); h != "" {
				return h, nil
			}
			return "another process", nil
		}
		return "", fmt.Errorf("lock %s: %w", path, err)
	}
	return "", syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
}

// fileLock is a held FileStore lock and the journal it guards.
type fileLock struct {
	f       *os.File
	journal string
	log     *os.File // the open log, after the first Save
}

func (l *fileLock) Read(context.Context) (*Journal, error) { return ReadJournal(l.journal) }

func (l *fileLock) Save(_ context.Context, j *Journal) error {
	data, err := json.MarshalIndent(j, "", "  ")
	if err != nil {
		return err
	}
	if err := executors.WriteFileAtomic(l.journal, append(data, '\n'), 0o600, -1, -1); err != nil {
		return fmt.Errorf("write journal %s: %w", l.journal, err)
	}
	// The snapshot holds every transition logged so far: the log starts over.
	if l.log != nil {
		l.log.Close()
	}
	l.log, err = os.OpenFile(logPath(l.journal), os.O_WRONLY|os.O_CREATE|os.O_TRUNC|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("journal log: %w", err)
	}
	return nil
}

func (l *fileLock) Append(_ context.Context, e LogEntry, sync bool) error {
	if l.log == nil {
		return errors.New("journal log: appended before the journal was saved")
	}
	data, err := json.Marshal(e)
	if err != nil {
		return err
	}
	if _, err := l.log.Write(append(data, '\n')); err != nil {
		return fmt.Errorf("journal log: %w", err)
	}
	if sync {
		if err := l.log.Sync(); err != nil {
			return fmt.Errorf("journal log: %w", err)
		}
	}
	return nil
}

// Lost is nil: the kernel keeps a flock for as long as the process lives.
func (l *fileLock) Lost() <-chan struct{} { return nil }

func (l *fileLock) Release(final bool) error {
	if l.f == nil {
		return nil
	}
	var err error
	if l.log != nil {
		err = l.log.Close()
		// Once a final snapshot holds everything, the log goes.
		if final {
			if rerr := os.Remove(l.log.Name()); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
				err = errors.Join(err, rerr)
			}
		}
		l.log = nil
	}
	l.f.Truncate(0)
	err = errors.Join(err, syscall.Flock(int(l.f.Fd()), syscall.LOCK_UN), l.f.Close())
	l.f = nil
	return err
}
