package api_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/forgebox/forgebox/service/internal/api"
	"github.com/forgebox/forgebox/service/internal/backup"
	"github.com/forgebox/forgebox/service/internal/config"
	"github.com/forgebox/forgebox/service/internal/engine"
	"github.com/forgebox/forgebox/service/internal/stack"
	"github.com/forgebox/forgebox/service/internal/upgrade/standintest"
)

// fakeBackup writes an archive with only a manifest: enough for the checks the API makes before
// it starts a restore.
func fakeBackup(t *testing.T, dir, name, version, flavour string) {
	t.Helper()
	os.MkdirAll(dir, 0o700)
	m, _ := json.Marshal(backup.Manifest{Format: backup.FormatVersion, Name: name, Kind: backup.KindManual, CreatedAt: time.Now().UTC(),
		GitLab: backup.GitLabInfo{Version: version, Flavour: flavour}})
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	tw.WriteHeader(&tar.Header{Name: backup.ManifestName, Mode: 0o600, Size: int64(len(m))})
	tw.Write(m)
	tw.Close()
	gz.Close()
	if err := os.WriteFile(filepath.Join(dir, name+backup.Extension), buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
}

// The backup and upgrade endpoints' answers that need no engine: the list with the schedule,
// restore refusals (no confirmation, unknown name, another GitLab version of either flavour, each with
// the stable error shape), upgrade without confirmation, and authentication.
func TestBackupEndpointsWithoutEngine(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	var page api.BackupsPage
	res, body := h.do(h.bearer("GET", "/api/v1/backups", nil), &page)
	expectStatus(t, res, body, http.StatusOK)
	if page.Dir != h.cfg.BackupDir() || page.Schedule != "03:30" || page.Keep != 7 || page.Next == nil || len(page.Backups) != 0 {
		t.Fatalf("backups page %+v", page)
	}
	if page.Next.Hour() != 3 || page.Next.Minute() != 30 || !page.Next.After(time.Now()) {
		t.Errorf("next scheduled backup %v", page.Next)
	}
	img := h.cfg.GitLab.Image // sameersbn/gitlab:19.2.0 by default
	fakeBackup(t, h.cfg.BackupDir(), "fb-old", "18.2.8", "sameersbn")
	fakeBackup(t, h.cfg.BackupDir(), "fb-omni", "18.5.1", "omnibus")
	h.do(h.bearer("GET", "/api/v1/backups", nil), &page)
	if len(page.Backups) != 2 || page.Backups[0].Manifest == nil {
		t.Fatalf("backups %+v", page.Backups)
	}

	res, body = h.do(h.bearer("POST", "/api/v1/backups/fb-old/restore", map[string]string{"confirm": "fb-ol"}), nil)
	expectError(t, res, body, http.StatusBadRequest, api.CodeInvalidRequest)
	res, body = h.do(h.bearer("POST", "/api/v1/backups/nope/restore", map[string]string{"confirm": "nope"}), nil)
	expectError(t, res, body, http.StatusNotFound, api.CodeNotFound)
	res, body = h.do(h.bearer("POST", "/api/v1/backups/fb-old/restore", map[string]string{"confirm": "fb-old"}), nil)
	e := expectError(t, res, body, http.StatusConflict, api.CodeConflict)
	if !strings.Contains(e.Error.Message, "GitLab 18.2.8") || !strings.Contains(e.Error.Message, "sameersbn/gitlab:18.2.8") || !strings.Contains(img, "19.2.0") {
		t.Errorf("version refusal does not say what to install: %s", e.Error.Message)
	}
	res, body = h.do(h.bearer("POST", "/api/v1/backups/fb-omni/restore", map[string]string{"confirm": "fb-omni"}), nil)
	e = expectError(t, res, body, http.StatusConflict, api.CodeConflict)
	// An Omnibus backup may go onto this sameersbn stack, but only at its own GitLab version.
	if !strings.Contains(e.Error.Message, "GitLab 18.5.1") || !strings.Contains(e.Error.Message, "sameersbn/gitlab:18.5.1") {
		t.Errorf("an Omnibus backup of another version: %s", e.Error.Message)
	}
	res, body = h.do(h.bearer("POST", "/api/v1/backups/fb-old/restore", `{"confirm":"fb-old","extra":1}`), nil)
	expectError(t, res, body, http.StatusBadRequest, api.CodeInvalidRequest)

	res, body = h.do(h.bearer("POST", "/api/v1/upgrade", map[string]any{"to": "18.8.11"}), nil)
	expectError(t, res, body, http.StatusBadRequest, api.CodeInvalidRequest)
	res, body = h.do(h.bearer("POST", "/api/v1/upgrade", map[string]any{"to": "18.8", "confirm": true}), nil)
	expectError(t, res, body, http.StatusBadRequest, api.CodeInvalidRequest)
	res, body = h.do(h.bearer("GET", "/api/v1/upgrade", nil), nil)
	expectError(t, res, body, http.StatusServiceUnavailable, api.CodeEngineUnavailable)
	res, body = h.do(h.bearer("POST", "/api/v1/backups", nil), nil)
	expectError(t, res, body, http.StatusServiceUnavailable, api.CodeEngineUnavailable)

	for _, p := range []string{"/api/v1/backups", "/api/v1/upgrade"} {
		res, body = h.do(h.req("GET", p, nil), nil)
		expectError(t, res, body, http.StatusUnauthorized, api.CodeUnauthorized)
	}
	// A browser session must send the CSRF header on a change.
	r := h.front("POST", "/api/v1/backups", nil)
	r.Header.Del(api.HeaderCSRF)
	res, body = h.do(r, nil)
	if res.StatusCode != http.StatusForbidden {
		t.Errorf("POST without the CSRF header: %d %s", res.StatusCode, body)
	}
}

// newFixtureHarness starts a controller on a stack fixture's config (versioned stand-in images).
func newFixtureHarness(t *testing.T, f *standintest.Fixture) *harness {
	h := &harness{t: t, logs: &syncBuffer{}, bodies: &syncBuffer{}, cfg: f.Cfg, cfgPath: f.CfgPath, eng: f.Eng}
	logger := slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv, err := api.New(api.Options{Config: f.Cfg, ConfigPath: f.CfgPath, Logger: logger, Version: "test",
		Connect: func(ctx context.Context) (api.Engine, error) { return engine.Connect(ctx) }, StatsEvery: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	h.srv = srv
	srv.Start()
	h.ts = httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		h.ts.Close()
		srv.Stop(time.Minute)
	})
	h.creds = h.readCreds()
	h.waitEngine()
	return h
}

// Backup and upgrade through the API on the engine: a backup as an operation (busy while the CLI
// holds the lock), the upgrade plan read from the running GitLab, an upgrade by one hop with its
// progress in the activity feed and the saved config, and a restore of the older backup refused
// with the version to install.
func TestBackupAndUpgradeThroughTheAPI(t *testing.T) {
	ctx := standintest.Ctx(t, 8*time.Minute)
	f := standintest.New(t, "18.5.7", "sameersbn")
	standintest.GitLabImage(t, f.Images, "18.8.11")
	standintest.RunnerImage(t, f.Images, "18.8.11")
	f.Up(ctx)
	h := newFixtureHarness(t, f)

	lock, err := stack.TryLock(f.Cfg.Stack.DataDir, "upgrade")
	if err != nil {
		t.Fatal(err)
	}
	res, body := h.do(h.bearer("POST", "/api/v1/backups", nil), nil)
	if e := expectError(t, res, body, http.StatusConflict, api.CodeBusy); !strings.Contains(e.Error.Message, `"upgrade"`) {
		t.Errorf("busy answer does not name the holder: %s", e.Error.Message)
	}
	lock.Unlock()

	op := h.startOp("/api/v1/backups")
	if done := h.waitOperation(op.ID, 3*time.Minute); done.State != "succeeded" {
		t.Fatalf("backup operation: %+v", done)
	}
	var page api.BackupsPage
	h.do(h.bearer("GET", "/api/v1/backups", nil), &page)
	if len(page.Backups) != 1 || page.Backups[0].Manifest == nil || page.Backups[0].Manifest.GitLab.Version != "18.5.7" || page.Backups[0].Manifest.Kind != backup.KindManual {
		t.Fatalf("backups after POST: %+v", page.Backups)
	}
	first := page.Backups[0].Name

	var up api.UpgradePage
	res, body = h.do(h.bearer("GET", "/api/v1/upgrade?to=18.8.11", nil), &up)
	expectStatus(t, res, body, http.StatusOK)
	if up.Running != "18.5.7" || up.Plan == nil || len(up.Plan.Hops) != 1 || up.Plan.Hops[0].Version != "18.8.11" || !strings.Contains(up.Text, "GitLab 18.5.7 -> 18.8.11") || up.Latest != "19.2.0" {
		t.Fatalf("upgrade page %+v", up)
	}
	up = api.UpgradePage{}
	h.do(h.bearer("GET", "/api/v1/upgrade?to=18.2.8", nil), &up)
	if up.Plan != nil || !strings.Contains(up.Problem, "cannot be downgraded") {
		t.Errorf("downgrade plan: %+v", up)
	}

	op = h.startOp2("/api/v1/upgrade", map[string]any{"to": "18.8.11", "confirm": true})
	done := h.waitOperation(op.ID, 5*time.Minute)
	if done.State != "succeeded" {
		t.Fatalf("upgrade operation: %+v\n%s", done, h.logs.String())
	}
	var evs api.EventsPage
	h.do(h.bearer("GET", "/api/v1/events?limit=2000&after="+strconv.FormatUint(op.FirstEvent, 10), nil), &evs)
	var sawHop, sawBackup, sawDone bool
	for _, e := range evs.Events {
		if e.Op != "upgrade" {
			continue
		}
		sawHop = sawHop || strings.Contains(e.Message, "hop 1/1 (GitLab 18.8.11)")
		sawBackup = sawBackup || strings.Contains(e.Message, "pre-upgrade written")
		sawDone = sawDone || strings.HasPrefix(e.Message, "GitLab is now 18.8.11")
	}
	if !sawHop || !sawBackup || !sawDone {
		t.Errorf("activity feed of the upgrade: hop %v, backup %v, done %v", sawHop, sawBackup, sawDone)
	}
	up = api.UpgradePage{}
	h.do(h.bearer("GET", "/api/v1/upgrade", nil), &up)
	if up.Running != "18.8.11" || up.Plan == nil || up.Plan.To != "19.2.0" {
		t.Errorf("after the upgrade: %+v", up)
	}
	var cfgPage api.ConfigPage
	h.do(h.bearer("GET", "/api/v1/config", nil), &cfgPage)
	saved, err := config.Load(f.CfgPath)
	if err != nil || !strings.HasSuffix(cfgPage.Config.GitLab.Image, ":18.8.11") || saved.GitLab.Image != cfgPage.Config.GitLab.Image || !strings.HasSuffix(saved.Runner.Image, "alpine-v18.8.0") {
		t.Errorf("config after the upgrade: served %s, saved %s / %s (%v)", cfgPage.Config.GitLab.Image, saved.GitLab.Image, saved.Runner.Image, err)
	}

	res, body = h.do(h.bearer("POST", "/api/v1/backups/"+first+"/restore", map[string]string{"confirm": first}), nil)
	if e := expectError(t, res, body, http.StatusConflict, api.CodeConflict); !strings.Contains(e.Error.Message, "GitLab 18.5.7") {
		t.Errorf("restore of an 18.5.7 backup onto 18.8.11: %s", e.Error.Message)
	}

	t.Run("web app", func(t *testing.T) { maintenancePage(t, h, first) })
}

// maintenancePage drives the backups and upgrades page in headless Chromium: the list, a backup
// from the page followed to its end, the plan for a chosen target, a restore refused with the
// version to install, and the page in Chinese.
func maintenancePage(t *testing.T, h *harness, older string) {
	ctx := newBrowser(t)
	sh := shooter{t: t, dir: artifactsDir(t)}
	asFront(t, ctx, h, "enu")
	if err := step(ctx, chromedp.Navigate(h.ts.URL+"/#maintenance"), chromedp.WaitVisible(chromedp.CSS(`#btn-backup`))); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "two backups listed", `(() => { const n = document.querySelectorAll('tr[data-backup]').length; return n === 2 ? 'ok' : 'rows: ' + n })()`, 20*time.Second)
	waitJS(t, ctx, "the running version", `(() => { const e = document.querySelector('#gitlab-running'); return e && e.textContent.includes('18.8.11') ? 'ok' : (e ? e.textContent : 'none') })()`, 20*time.Second)
	if err := step(ctx, chromedp.Click(chromedp.CSS(`#btn-backup`))); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "the backup from the page ends", `(() => {
		const s = document.querySelector('#maint-op-state');
		if (!s) return 'no progress';
		if (s.dataset.state === 'failed') return 'fail: ' + document.querySelector('#maint-progress').innerText;
		return s.dataset.state === 'succeeded' && document.querySelectorAll('tr[data-backup]').length === 3 ? 'ok' : s.dataset.state })()`, 2*time.Minute)
	sh.shot(ctx, "maint-01-backups.png")

	if err := step(ctx, chromedp.SetValue(chromedp.CSS(`#upgrade-target`), "18.11.7"), chromedp.Click(chromedp.CSS(`#btn-plan`))); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "the plan to 18.11.7", `(() => { const l = document.querySelectorAll('#upgrade-plan li'); const title = document.querySelector('#upgrade-plan-title');
		return l.length === 1 && title && title.textContent.includes('18.8.11 → 18.11.7') && document.querySelector('#btn-upgrade') ? 'ok' : 'hops: ' + l.length })()`, 20*time.Second)
	sh.shot(ctx, "maint-02-plan.png")

	sel := fmt.Sprintf(`button[data-restore=%q]`, older)
	if err := step(ctx, chromedp.Click(chromedp.CSS(sel)), chromedp.WaitVisible(chromedp.CSS(`#restore-confirm`))); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "restore needs the name", `(() => document.querySelector('#btn-restore').disabled ? 'ok' : 'enabled')()`, 5*time.Second)
	if err := step(ctx, chromedp.SendKeys(chromedp.CSS(`#restore-confirm`), older), chromedp.Click(chromedp.CSS(`#btn-restore`))); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "the restore is refused with the version to install", `(() => { const e = document.querySelector('#restore-form .form-errors');
		return e && e.textContent.includes('GitLab 18.5.7') ? 'ok' : (e ? e.textContent : 'none') })()`, 10*time.Second)
	sh.shot(ctx, "maint-03-restore-refused.png")

	if err := step(ctx, evalVoid(`const s = document.querySelector('#lang-select'); s.value = 'zh-CN'; s.dispatchEvent(new Event('change'))`)); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "the page in Chinese", `(() => { const tab = document.querySelector('#tabs a[data-view="maintenance"]').textContent;
		const b = document.querySelector('#btn-backup'); const kind = document.querySelector('tr[data-backup] td:nth-child(2)');
		return tab === '备份与升级' && b && b.textContent === '立即备份' && kind && /手动|升级前/.test(kind.textContent) ? 'ok' : tab + ' / ' + (b && b.textContent) })()`, 10*time.Second)
	// The refusal the page keeps follows the language, and the backup's progress is Chinese.
	waitJS(t, ctx, "the refusal in Chinese", `(() => { const e = document.querySelector('#restore-form .form-errors');
		return e && e.textContent.includes('此备份由 GitLab 18.5.7') ? 'ok' : (e ? e.textContent : 'none') })()`, 10*time.Second)
	sh.shot(ctx, "maint-04-zh.png")
	if words := untranslated(t, ctx); len(words) > 0 {
		t.Errorf("the backups page shows English in the Chinese app: %q", words)
	}
	// The activity feed holds the upgrade's progress (plan, hop steps, migrations, versions)
	// and the backups' (pre-upgrade and from the page), in Chinese.
	if err := step(ctx, evalVoid(`location.hash = 'activity'`)); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "the upgrade's progress in the feed", `(() => { const v = document.querySelector('#view');
		return v && v.innerText.includes('GitLab 现在是 18.8.11') ? 'ok' : 'not yet' })()`, 30*time.Second)
	sh.shot(ctx, "maint-05-activity-zh.png")
	if words := untranslated(t, ctx); len(words) > 0 {
		t.Errorf("the upgrade's progress shows English in the Chinese app: %q", words)
	}
	noPageErrors(t, ctx)
}

// startOp2 posts an operation with a JSON body and expects it accepted.
func (h *harness) startOp2(path string, body any) api.Operation {
	h.t.Helper()
	var out struct {
		Operation api.Operation `json:"operation"`
	}
	res, b := h.do(h.bearer("POST", path, body), &out)
	expectStatus(h.t, res, b, http.StatusAccepted)
	return out.Operation
}
