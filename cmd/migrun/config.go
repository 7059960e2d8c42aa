package main

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"gopkg.in/yaml.v3"
)

// workstationConfig is the workstation's own settings file,
// $XDG_CONFIG_HOME/migrun/config.yaml (else ~/.config/migrun/config.yaml):
// what every command on this machine uses unless a flag or the environment
// says otherwise.
//
//	state:
//	  postgres: postgres://migrun@state.example.com/migrun   # or
//	  dir: /var/lib/migrun
type workstationConfig struct {
	State struct {
		Postgres string `yaml:"postgres"`
		Dir      string `yaml:"dir"`
	} `yaml:"state"`
}

// configPath is where the workstation's config file is; "" when neither
// XDG_CONFIG_HOME nor HOME is set.
func configPath(e env) string {
	if dir := e.getenv("XDG_CONFIG_HOME"); dir != "" {
		return filepath.Join(dir, "migrun", "config.yaml")
	}
	if home := e.getenv("HOME"); home != "" {
		return filepath.Join(home, ".config", "migrun", "config.yaml")
	}
	return ""
}

// readConfig reads the workstation's config file; a missing one is the
// zero config. Unknown keys are refused, naming the file and line.
func readConfig(e env) (workstationConfig, error) {
	var cfg workstationConfig
	path := configPath(e)
	if path == "" {
		return cfg, nil
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return cfg, nil
	}
	if err != nil {
		return cfg, err
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
		var te *yaml.TypeError
		if errors.As(err, &te) {
			// "line 2: field x not found in type struct {...}": the Go
			// type says nothing to the user.
			var msgs []string
			for _, m := range te.Errors {
				m, _, _ = strings.Cut(m, " in type ")
				msgs = append(msgs, m)
			}
			return cfg, usagef("%s: %s", path, strings.Join(msgs, "; "))
		}
		return cfg, usagef("%s: %s", path, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	if cfg.State.Postgres != "" && cfg.State.Dir != "" {
		return cfg, usagef("%s: state: give postgres or dir, not both", path)
	}
	if cfg.State.Postgres != "" && !isDatabaseState(cfg.State.Postgres) {
		return cfg, usagef("%s: state.postgres: want a PostgreSQL connection string (postgres://USER@HOST/DB), got %q", path, cfg.State.Postgres)
	}
	return cfg, nil
}
