package server

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/migrant-health/mhg/gateway/config"
)

// TestNewNamesTheSetting: whichever step of New fails, the error is a
// *SettingError naming the setting at fault, said once, on one line.
func TestNewNamesTheSetting(t *testing.T) {
	t.Parallel()
	notADir := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notADir, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(t.TempDir(), "missing")
	for _, tt := range []struct {
		setting string
		edit    func(*config.Config)
	}{
		{"sources[0]", func(c *config.Config) {
			c.Sources = []config.Source{{ID: "de-files", Country: "DE", Profile: "de-basis", Kind: "bundle", Dir: missing}}
		}},
		{"policy.decision_log", func(c *config.Config) { c.Policy.DecisionLog = filepath.Join(notADir, "decisions.jsonl") }},
		{"policy.dir", func(c *config.Config) { c.Policy.Dir = missing }},
		{"cache.key_file", func(c *config.Config) { c.Cache.KeyFile = missing }},
		{"ids.key_file", func(c *config.Config) { c.IDs.KeyFile = missing }},
		{"audit.redis_stream", func(c *config.Config) { c.Audit.RedisStream = "mhg-audit" }},
		{"audit.log", func(c *config.Config) { c.Audit.Log = filepath.Join(notADir, "audit.jsonl") }},
		{"auth", func(c *config.Config) { c.Auth.Issuer = "" }},
	} {
		t.Run(tt.setting, func(t *testing.T) {
			dir := t.TempDir()
			cfg := config.Default()
			cfg.Auth.DevKeyFile = filepath.Join(dir, "dev-key.pem")
			cfg.Audit.Log = filepath.Join(dir, "audit.jsonl")
			tt.edit(&cfg)
			srv, err := New(context.Background(), cfg, Options{Stdout: io.Discard, Stderr: io.Discard})
			if err == nil {
				_ = srv.Close(context.Background())
				t.Fatal("New succeeded")
			}
			var se *SettingError
			if !errors.As(err, &se) || se.Setting != tt.setting {
				t.Fatalf("want a SettingError naming %s, got %T: %v", tt.setting, err, err)
			}
			msg := err.Error()
			t.Log(msg)
			if !strings.HasPrefix(msg, tt.setting) || strings.Contains(msg, "\n") {
				t.Fatalf("want one line starting with %s, got %q", tt.setting, msg)
			}
			if strings.Count(msg, tt.setting+":") > 1 || strings.Count(msg, tt.setting+" ") > 1 {
				t.Fatalf("the setting is named more than once: %q", msg)
			}
		})
	}
}
