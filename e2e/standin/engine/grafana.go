package main

import (
	"context"
	"fmt"
	"os"
	"strings"

	"gopkg.in/yaml.v3"
)

// grafanaDatasource is where engine-setup provisions Grafana's DWH data
// source (ovirt-engine-dwh's grafana-dwh-data-source.template): url
// HOST:PORT, user, database, secureJsonData.password.
const grafanaDatasource = "/etc/grafana/conf/provisioning/datasources/ovirt-dwh.yaml"

// grafanaDatabases: Grafana reads the DWH history database as its own
// read-only role (ovirt_engine_history_grafana), from the data source
// file, not from the DWH's configuration.
func grafanaDatabases(*role) ([]dbConfig, error) {
	b, err := os.ReadFile(grafanaDatasource)
	if err != nil {
		return nil, err
	}
	var f struct {
		Datasources []struct {
			Type           string `yaml:"type"`
			URL            string `yaml:"url"`
			User           string `yaml:"user"`
			Database       string `yaml:"database"`
			SecureJSONData struct {
				Password string `yaml:"password"`
			} `yaml:"secureJsonData"`
		} `yaml:"datasources"`
	}
	if err := yaml.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("%s: %w", grafanaDatasource, err)
	}
	for _, d := range f.Datasources {
		if d.Type != "postgres" {
			continue
		}
		if d.URL == "" || d.User == "" || d.Database == "" || !strings.Contains(d.URL, ":") {
			return nil, fmt.Errorf("%s: the postgres data source lacks url HOST:PORT, user or database", grafanaDatasource)
		}
		return []dbConfig{{name: "dwh", url: "jdbc:postgresql://" + d.URL + "/" + d.Database, user: d.User,
			password: d.SecureJSONData.Password, files: []string{grafanaDatasource}}}, nil
	}
	return nil, fmt.Errorf("%s: no postgres data source", grafanaDatasource)
}

// grafanaRead is a dashboard refresh: a read of the newest samples in one
// transaction, counted like a write.
func grafanaRead(ctx context.Context, c *client, s *session, seq int64) error {
	var n int64
	return s.conns[0].QueryRow(ctx, `SELECT count(*) FROM host_samples_history WHERE history_datetime > now() - interval '5 minutes'`).Scan(&n)
}

// grafanaVerify: Grafana writes nothing; reading the DWH's newest
// aggregation mark as its role shows the grants came along.
func grafanaVerify(ctx context.Context, c *client, s *session) (string, error) {
	var v string
	if err := s.conns[0].QueryRow(ctx, `SELECT coalesce(var_value, '') FROM history_configuration WHERE var_name = 'lastHourAggr'`).Scan(&v); err != nil {
		return "", err
	}
	return "", nil
}
