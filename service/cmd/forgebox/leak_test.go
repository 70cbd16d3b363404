package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/forgebox/forgebox/service/internal/config"
	"github.com/forgebox/forgebox/service/internal/engine"
	"github.com/forgebox/forgebox/service/internal/testenv"
)

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// TestStatusJSONMasksPlantedSecrets plants a runner record (its glrt- token inside JSON) and
// the passwords, puts the token where status shows it (the name of a leftover container of the
// stack), and runs status --json with the log at debug level: neither its output nor its log
// holds a planted value.
func TestStatusJSONMasksPlantedSecrets(t *testing.T) {
	eng := testenv.Engine(t)
	im := testenv.TestImages(t)
	cfg := testenv.Config(t, eng, im)
	src, err := config.Encode(cfg)
	if err != nil {
		t.Fatal(err)
	}
	p := writeFile(t, string(src))
	store, err := config.OpenSecrets(cfg.Stack.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	token := "glrt-t1_" + randHex(10)
	record, _ := json.Marshal(map[string]any{"id": 42, "token": token, "description": cfg.Stack.Name + "-default"})
	if err := store.Set("runner/default", string(record)); err != nil {
		t.Fatal(err)
	}
	if err := store.Set(config.SecretGitLabAdminToken, "glpat-"+randHex(10)); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{config.SecretGitLabRootPassword, config.SecretPostgresSuperuser, config.SecretPostgresGitLab} {
		if _, err := store.Ensure(name); err != nil {
			t.Fatal(err)
		}
	}
	values := testenv.SecretLeaves(t, cfg.Stack.DataDir)
	if len(values) != 5 || !strings.Contains(strings.Join(values, " "), token) {
		t.Fatalf("planted %d values: %v", len(values), values)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	id, err := eng.Create(ctx, engine.ContainerSpec{Name: cfg.Stack.Name + "-old-" + token, Image: im.Redis,
		Labels: map[string]string{engine.LabelStack: cfg.Stack.Name, engine.LabelComponent: "old"}, Entrypoint: []string{"true"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		eng.Remove(ctx, id)
	})

	code, out, errOut := runCLI(t, "--config", p, "--log-level", "debug", "status", "--json")
	if code != 0 {
		t.Fatalf("status --json: exit %d\n%s", code, errOut)
	}
	var rows []struct{ Component, Container string }
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatalf("status --json: %v\n%s", err, out)
	}
	shown := false
	for _, r := range rows {
		shown = shown || (strings.HasPrefix(r.Component, "old") && r.Container == cfg.Stack.Name+"-old-********")
	}
	if !shown {
		t.Errorf("status --json does not show the leftover container with its name masked:\n%s", out)
	}
	if !strings.Contains(errOut, "level=DEBUG") {
		t.Errorf("the log at debug level wrote no debug line:\n%s", errOut)
	}
	for _, v := range values {
		if strings.Contains(out, v) {
			t.Errorf("status --json holds a planted secret %s…", v[:5])
		}
		if strings.Contains(errOut, v) {
			t.Errorf("the CLI's debug log holds a planted secret %s…", v[:5])
		}
	}
}
