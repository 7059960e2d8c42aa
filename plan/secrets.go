package plan

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"

	"github.com/migrun/migrun/internal/ovirtconf"
	"github.com/migrun/migrun/internal/secret"
)

// Prompter asks the user for a secret on the terminal without echo.
type Prompter func(prompt string) (string, error)

// UsedSecrets lists the secrets that steps and on_failure refer to, sorted.
// Secrets declared but unused are never asked for.
func (p *Plan) UsedSecrets() []string {
	return SecretsUsedBy(p.Steps, p.OnFailure)
}

// ResolveSecrets reads the values of the secrets the plan uses. getenv
// reads the environment (nil: os.Getenv); prompt asks on the terminal (nil
// in non-interactive runs, which then cannot use prompt secrets).
//
// A file secret is the first line of the file, without its line ending; a
// relative path is taken from the plan's directory, and "~/" is the home
// directory. A file every user may read is refused.
//
// Environment and file secrets are read first and every problem with them
// is reported at once, before anyone is asked to type a password for a run
// that cannot start anyway.
func (p *Plan) ResolveSecrets(getenv func(string) string, prompt Prompter) (secret.Values, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	vals := secret.Values{}
	var errs []error
	var prompts []string
	for _, name := range p.UsedSecrets() {
		src, declared := p.Secrets[name]
		switch {
		case !declared: // only in a Plan not made by Load
			errs = append(errs, fmt.Errorf("secret %s is not declared under secrets:", name))
		case src.Host != "":
			// Read on the host by the runner, once connected.
		case src.Env != "":
			if val := getenv(src.Env); val != "" {
				vals[name] = val
			} else {
				errs = append(errs, fmt.Errorf("secret %s: environment variable %s is not set or empty", name, src.Env))
			}
		case src.File != "":
			if val, err := readSecret(p.secretPath(src.File), src.Key); err == nil {
				vals[name] = val
			} else {
				errs = append(errs, fmt.Errorf("secret %s: %w", name, err))
			}
		case prompt == nil:
			errs = append(errs, fmt.Errorf("secret %s needs a terminal prompt; use env or file in non-interactive runs", name))
		default:
			prompts = append(prompts, name)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	for _, name := range prompts {
		val, err := prompt(p.Secrets[name].Prompt)
		if err != nil {
			return nil, fmt.Errorf("secret %s: %w", name, err)
		}
		if val = strings.TrimRight(val, "\r\n"); val == "" {
			return nil, fmt.Errorf("secret %s: the answer is empty", name)
		}
		vals[name] = val
	}
	return vals, nil
}

// secretPath resolves a secret file path as ResolveSecrets documents.
func (p *Plan) secretPath(path string) string {
	if rest, ok := strings.CutPrefix(path, "~/"); ok {
		if home, err := os.UserHomeDir(); err == nil {
			return filepath.Join(home, rest)
		}
	}
	if filepath.IsAbs(path) {
		return path
	}
	return filepath.Join(filepath.Dir(p.File), path)
}

// SecretFromText is the secret a file's text holds: with key, the value of
// its KEY="value" line (shell syntax, as oVirt's *.conf files; the last
// assignment wins, as when the file is sourced), else its first line.
// where names the file in errors. The workstation's files and the plan
// hosts' (read by the runner) go through it alike.
func SecretFromText(text, key, where string) (string, error) {
	if key == "" {
		line, _, _ := strings.Cut(text, "\n")
		if line = strings.TrimRight(line, "\r"); line == "" {
			return "", fmt.Errorf("%s: the first line is empty", where)
		}
		return line, nil
	}
	f, err := ovirtconf.Parse(text)
	if err != nil {
		return "", fmt.Errorf("%s: %w", where, err)
	}
	v, ok := f.Get(key)
	switch {
	case !ok:
		return "", fmt.Errorf("%s does not set %s", where, key)
	case v == "":
		return "", fmt.Errorf("%s sets %s empty", where, key)
	}
	return v, nil
}

// readSecret reads a workstation file's secret (see SecretFromText).
func readSecret(path, key string) (string, error) {
	f, err := openSecretFile(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxSecretFile))
	if err != nil {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	return SecretFromText(string(b), key, "file "+path)
}

// maxSecretFile bounds what is read of a file holding a secret: a line of
// it, or a config file's key; a huge file is a mistake.
const maxSecretFile = 1 << 20

// openSecretFile opens a workstation file that holds a secret, refusing
// a directory and a file every user may read.
func openSecretFile(path string) (*os.File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if fi.IsDir() {
		f.Close()
		return nil, fmt.Errorf("file %s is a directory", path)
	}
	// Group-readable is a deliberate choice on some systems (a service
	// group); readable by everyone is not.
	if perm := fi.Mode().Perm(); runtime.GOOS != "windows" && perm&0o004 != 0 {
		f.Close()
		return nil, fmt.Errorf("file %s is readable by every user (mode %04o); run chmod o-r %s", path, perm, path)
	}
	return f, nil
}

// SecretsUsedBy lists the secrets the given steps refer to, sorted.
func SecretsUsedBy(list ...[]Step) []string {
	seen := map[string]bool{}
	for _, l := range list {
		for _, st := range l {
			specStrings(st.Spec, func(_, s string) {
				for _, name := range secret.Names(s) {
					seen[name] = true
				}
			})
		}
	}
	return slices.Sorted(maps.Keys(seen))
}
