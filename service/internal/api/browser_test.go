package api_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/forgebox/forgebox/service/internal/api"
	"github.com/forgebox/forgebox/service/internal/config"
)

const chromiumPath = "/usr/bin/chromium"

// artifactsDir is $FORGEBOX_TEST_ARTIFACTS, else test-artifacts/ at the top of the repository.
func artifactsDir(t *testing.T) string {
	dir := os.Getenv("FORGEBOX_TEST_ARTIFACTS")
	if dir == "" {
		root, err := os.Getwd()
		if err != nil {
			t.Fatal(err)
		}
		for {
			if _, err := os.Stat(filepath.Join(root, "go.mod")); err == nil {
				break
			}
			parent := filepath.Dir(root)
			if parent == root {
				t.Fatal("no go.mod above the test directory")
			}
			root = parent
		}
		dir = filepath.Join(root, "test-artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func newBrowser(t *testing.T) context.Context {
	t.Helper()
	path := chromiumPath
	if _, err := os.Stat(path); err != nil {
		if p, lerr := exec.LookPath("chromium"); lerr == nil {
			path = p
		} else if os.Getenv("FORGEBOX_REQUIRE_ENGINE") == "1" {
			t.Fatalf("no Chromium at %s: install Debian's chromium package", chromiumPath)
		} else {
			t.Skip("no Chromium: install Debian's chromium package")
		}
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("lang", "en-US"),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1366, 900),
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(alloc, chromedp.WithLogf(t.Logf))
	ctx, cancelTimeout := context.WithTimeout(ctx, 6*time.Minute)
	t.Cleanup(func() { cancelTimeout(); cancelCtx(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil { // starts the browser
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

type shooter struct {
	t   *testing.T
	dir string
}

func (s shooter) shot(ctx context.Context, name string) {
	s.t.Helper()
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	png, err := chromedp.Run(sctx, chromedp.FullScreenshot(100))
	if err != nil {
		s.t.Fatalf("screenshot %s: %v", name, err)
	}
	p := filepath.Join(s.dir, name)
	if err := os.WriteFile(p, png, 0o644); err != nil {
		s.t.Fatal(err)
	}
	s.t.Logf("screenshot %s", p)
}

// waitJS polls a JavaScript expression until it returns "ok", failing with what it last said.
func waitJS(t *testing.T, ctx context.Context, what, expr string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		var err error
		if last, err = chromedp.Run(ctx, chromedp.Evaluate[string](expr)); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if last == "ok" {
			return
		}
		if strings.HasPrefix(last, "fail:") {
			t.Fatalf("%s: %s", what, last)
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("%s: not within %s (last: %s)", what, timeout, last)
}

// waitAcrossReload is waitJS for a page that is navigating: an evaluation that fails because the
// old document went away is tried again instead of failing the test.
func waitAcrossReload(t *testing.T, ctx context.Context, what, expr string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last string
	var err error
	for time.Now().Before(deadline) {
		ectx, cancel := context.WithTimeout(ctx, 5*time.Second) // an evaluation caught in the reload gives up
		last, err = chromedp.Run(ectx, chromedp.Evaluate[string](expr))
		cancel()
		if err == nil && last == "ok" {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("%s: not within %s (last: %s, %v)", what, timeout, last, err)
}

// clickJS clicks the element selector names from inside the page, in one step, once it is there,
// shown and enabled (as a person could click it). Parts of the app re-render while they poll (the
// overview's buttons, the builds list, the log viewer), so a node found by one DevTools call may be
// gone by the next ("Could not find node with given id"); a click done in the page cannot miss.
func clickJS(t *testing.T, ctx context.Context, selector string, timeout time.Duration) {
	t.Helper()
	waitJS(t, ctx, "click "+selector, fmt.Sprintf(`(() => { const e = document.querySelector(%s); if (!e) return 'missing';`+
		` if (e.disabled || e.getClientRects().length === 0) return 'not clickable yet'; e.click(); return 'ok' })()`,
		strconv.Quote(selector)), timeout)
}

// TestBrowser drives the web app in headless Chromium against a real stack: first as the DSM
// front passes it on (shared secret and DSM's language in headers), then through the login form
// as on a plain Linux host.
func TestBrowser(t *testing.T) {
	h := newHarness(t, harnessOptions{engine: true})
	ctx := newBrowser(t)
	sh := shooter{t: t, dir: artifactsDir(t)}

	asFront(t, ctx, h, "enu")
	if err := step(ctx,
		chromedp.Navigate(h.ts.URL+"/"),
		chromedp.WaitVisible(chromedp.CSS(`#btn-up`)),
	); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "overview with every component", `(() => {
		const cards = document.querySelectorAll('[data-component]');
		return cards.length >= 2 && !document.querySelector('#btn-up').disabled ? 'ok' : 'cards: ' + cards.length })()`, 30*time.Second)
	sh.shot(ctx, "01-overview-before.png")

	// Start the stack.
	components := []string{"postgres", "redis", "gitlab", "runner"}
	upFromThePage(t, ctx, func(string) { sh.shot(ctx, "02-progress.png") })
	waitJS(t, ctx, "the stack shows running", `(() => {
		const b = document.querySelector('.stack-title .badge');
		return b && b.dataset.state === 'running' ? 'ok' : (b ? b.dataset.state : 'none') })()`, time.Minute)
	for _, c := range components {
		waitJS(t, ctx, c+" card", fmt.Sprintf(`(() => {
			const card = document.querySelector('[data-component=%q]');
			if (!card) return 'no card';
			const state = card.querySelector('.badge[data-state]').dataset.state;
			const health = card.querySelectorAll('.badge[data-state]')[1];
			return state === 'running' && health && health.dataset.state === 'healthy' ? 'ok' : state + ' ' + (health ? health.dataset.state : 'no health') })()`, c), time.Minute)
	}
	// Memory sparklines fill as stats come in.
	waitJS(t, ctx, "memory sparkline", `(() => document.querySelector('[data-component="postgres"] .spark polyline') ? 'ok' : 'no line yet')()`, 30*time.Second)
	sh.shot(ctx, "03-overview-healthy.png")
	noPageErrors(t, ctx)

	// Logs of PostgreSQL, from its card (the overview re-renders its cards as the status comes).
	clickJS(t, ctx, `[data-component="postgres"] footer button.link`, 30*time.Second)
	if err := step(ctx, chromedp.WaitVisible(chromedp.CSS(`#log-lines .line`))); err != nil {
		t.Fatal(err)
	}
	logText, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#log-lines`)))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logText, "database system is ready to accept connections") {
		t.Errorf("the log viewer does not show PostgreSQL's log: %.300q", logText)
	}
	sh.shot(ctx, "04-logs.png")

	// An invalid setting: the API's error shows beside the field, and nothing is saved.
	before, _ := os.ReadFile(h.cfgPath)
	walkLangs["en"].dsmPortError(t, ctx)
	if after, _ := os.ReadFile(h.cfgPath); !bytes.Equal(before, after) {
		t.Error("an invalid setting was saved")
	}
	sh.shot(ctx, "05-settings-invalid.png")

	// 中文: switch, see Chinese, and find it remembered after a reload.
	if err := step(ctx, evalVoid(`const s = document.querySelector('#lang-select'); s.value = 'zh-CN'; s.dispatchEvent(new Event('change'))`)); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "Chinese tabs", `(() => document.querySelector('#tabs a[data-view="settings"]').textContent === '设置' ? 'ok' : document.querySelector('#tabs').innerText)()`, 10*time.Second)
	waitJS(t, ctx, "Chinese form", `(() => { const l = document.querySelector('label[for="f-gitlab-http_port"]'); const e = document.querySelector('.field[data-key="gitlab.http_port"] .field-error');
		return l && l.textContent === 'HTTP 端口' && e && !e.hidden ? 'ok' : 'label: ' + (l && l.textContent) })()`, 10*time.Second)
	sh.shot(ctx, "06-settings-zh.png")
	noPageErrors(t, ctx)
	if err := step(ctx, evalVoid(`location.hash = 'overview'`), chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS(`#btn-up`))); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "Chinese after a reload", `(() => document.querySelector('#btn-up').textContent === '启动' && document.documentElement.lang === 'zh-CN' ? 'ok' : document.querySelector('#btn-up').textContent)()`, 10*time.Second)
	waitJS(t, ctx, "cards in Chinese", `(() => document.querySelector('[data-component="postgres"] .badge').textContent === '运行中' ? 'ok' : 'not yet')()`, 15*time.Second)
	sh.shot(ctx, "07-overview-zh.png")
	noPageErrors(t, ctx)
	// A new profile whose name is taken: the error shows beside the name, in the page's Chinese.
	walkLangs["zh-CN"].takenProfileError(t, ctx)
	sh.shot(ctx, "08-runners-zh.png")

	// A plain Linux host: no front, so the login form, then the app.
	login := newBrowser(t) // a browser of its own: no front headers, no stored language
	if err := step(login,
		chromedp.Navigate(h.ts.URL+"/"),
		chromedp.WaitVisible(chromedp.CSS(`#token`)),
		chromedp.SendKeys(chromedp.CSS(`#token`), "not-the-token"),
		chromedp.Click(chromedp.CSS(`#login-form button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`#login-error`)),
	); err != nil {
		t.Fatal(err)
	}
	sh.shot(login, "09-login-wrong.png")
	if err := step(login,
		chromedp.SetValue(chromedp.CSS(`#token`), h.creds.AdminToken),
		chromedp.Click(chromedp.CSS(`#login-form button[type=submit]`)),
	); err != nil {
		t.Fatal(err)
	}
	// The page reloads itself after the login: a DevTools node query made before the reload can
	// wait on the old document for ever, so poll the new one instead.
	waitAcrossReload(t, login, "the app after the login", `(() => document.querySelector('#btn-up') && document.querySelector('#logout') ? 'ok' : 'not yet')()`, time.Minute)
	var cookieJS string
	chromedp.Run(login, chromedp.Evaluate[string](`document.cookie`))
	if strings.Contains(cookieJS, api.SessionCookie) {
		t.Error("the session cookie is readable from JavaScript")
	}

	noPageErrors(t, login)

	// Stop the stack from the page, so the test leaves nothing running.
	downFromThePage(t, ctx)
}

// The steps both page walks (TestBrowser in English, TestBrowserChineseEveryPage in Chinese)
// take, with what each language's page must say.
type walkLang struct {
	portError    []string // words the error beside gitlab.http_port = 5000 holds
	profileError string   // what the error beside a taken profile name holds
}

var walkLangs = map[string]walkLang{
	"en":    {portError: []string{"5000", "DSM"}, profileError: "is defined twice"},
	"zh-CN": {portError: []string{"5000", "DSM", "占用"}, profileError: "定义了两次"},
}

// upFromThePage clicks Start, calls during once the planned steps show, and follows the
// progress to its end.
func upFromThePage(t *testing.T, ctx context.Context, during func(string)) {
	t.Helper()
	if err := step(ctx, evalVoid(`location.hash = 'overview'`)); err != nil {
		t.Fatal(err)
	}
	clickJS(t, ctx, `#btn-up`, time.Minute)
	waitJS(t, ctx, "progress with planned steps", `(() => { const p = document.querySelector('#progress');
		return p && !p.hidden && p.querySelectorAll('.steps li').length > 0 ? 'ok' : 'no steps yet' })()`, time.Minute)
	during("steps")
	waitJS(t, ctx, "the up succeeds", `(() => { const s = document.querySelector('#op-state');
		if (!s) return 'no progress panel';
		if (s.dataset.state === 'failed') return 'fail: ' + document.querySelector('#progress').innerText;
		return s.dataset.state === 'done' ? 'ok' : s.dataset.state })()`, 5*time.Minute)
}

// downFromThePage stops the stack from the overview and waits until it shows none.
func downFromThePage(t *testing.T, ctx context.Context) {
	t.Helper()
	if err := step(ctx, evalVoid(`location.hash = 'overview'`), evalVoid(`window.confirm = () => true`)); err != nil {
		t.Fatal(err)
	}
	clickJS(t, ctx, `#btn-down`, time.Minute)
	waitJS(t, ctx, "the stack stops", `(() => { const b = document.querySelector('.stack-title .badge'); return b && b.dataset.state === 'absent' ? 'ok' : (b ? b.dataset.state : 'none') })()`, 3*time.Minute)
}

// saveSetting sets one settings field, saves, and returns the error shown beside key.
func saveSetting(t *testing.T, ctx context.Context, id, key, value string) string {
	t.Helper()
	sel := fmt.Sprintf(`.field[data-key=%q] .field-error`, key)
	if err := step(ctx,
		chromedp.Click(chromedp.CSS(`#tabs a[data-view="settings"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#`+id)),
		chromedp.SetValue(chromedp.CSS(`#`+id), value),
		evalVoid(`document.querySelector('#settings-form').requestSubmit()`), // a toast may cover the button
		chromedp.WaitVisible(chromedp.CSS(sel)),
	); err != nil {
		t.Fatal(err)
	}
	text, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	return text
}

// dsmPortError saves gitlab.http_port = 5000 (DSM's) and checks the error beside it.
func (l walkLang) dsmPortError(t *testing.T, ctx context.Context) {
	t.Helper()
	got := saveSetting(t, ctx, "f-gitlab-http_port", "gitlab.http_port", "5000")
	for _, w := range l.portError {
		if !strings.Contains(got, w) {
			t.Errorf("the error beside gitlab.http_port is %q, want %q in it", got, w)
		}
	}
}

// takenProfileError adds a profile whose name is taken and checks the error beside the name.
func (l walkLang) takenProfileError(t *testing.T, ctx context.Context) {
	t.Helper()
	if err := step(ctx,
		chromedp.Click(chromedp.CSS(`#tabs a[data-view="runners"]`)),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-profile="default"]`)),
		chromedp.Click(chromedp.CSS(`#profile-add`)),
		chromedp.WaitVisible(chromedp.CSS(`#profile-form #f-name`)),
		chromedp.SendKeys(chromedp.CSS(`#profile-form #f-name`), "default"),
		chromedp.SendKeys(chromedp.CSS(`#profile-form #f-image`), "alpine:3.22"),
		chromedp.SendKeys(chromedp.CSS(`#profile-form #f-tags`), "docker"),
		chromedp.Click(chromedp.CSS(`#profile-form button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`#profile-form .field[data-key="name"] .field-error`)),
	); err != nil {
		t.Fatal(err)
	}
	got, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#profile-form .field[data-key="name"] .field-error`)))
	if !strings.Contains(got, l.profileError) {
		t.Errorf("the error beside a taken profile name is %q, want %q in it", got, l.profileError)
	}
}

// evalVoid runs JavaScript whose value does not matter.
func evalVoid(expr string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := chromedp.Evaluate[string]("(() => { "+expr+"; return '' })()")(ctx, t)
		return err
	})
}

// step runs actions with a bound of its own, so a stuck step fails in a minute, not at the
// test's end.
func step(ctx context.Context, actions ...chromedp.Action[chromedp.Void]) error {
	sctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	return chromedp.Do(sctx, actions...)
}

// noPageErrors fails on any script error the app recorded.
func noPageErrors(t *testing.T, ctx context.Context) {
	t.Helper()
	errs, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`window.forgeboxErrors || []`))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range errs {
		t.Errorf("script error in the page: %s", e)
	}
}

// TestBrowserPrivilegedProfileWarning: the runners page names each privileged profile with a
// warning that its jobs get the whole NAS, and the form shows it while the box is ticked, in
// English and in Chinese. The default profile carries none.
func TestBrowserPrivilegedProfileWarning(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	res, body := h.do(h.front("POST", "/api/v1/runner/profiles", map[string]any{"name": "dind", "image": "docker:27", "tags": []string{"dind"}, "privileged": true}), nil)
	expectStatus(t, res, body, http.StatusCreated)
	ctx := newBrowser(t)
	asFront(t, ctx, h, "enu")
	if err := step(ctx, chromedp.Navigate(h.ts.URL+"/#runners"), chromedp.WaitVisible(chromedp.CSS(`tr[data-profile="dind"]`))); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "warning about dind, none about default", `(() => {
		const w = document.querySelectorAll('.privileged-warning[data-profile]');
		if (w.length !== 1 || w[0].dataset.profile !== 'dind') return 'warnings: ' + w.length;
		const badge = document.querySelector('tr[data-profile="dind"] .badge.warn');
		return w[0].textContent.includes('the whole NAS') && badge && !document.querySelector('tr[data-profile="default"] .badge.warn')
			? 'ok' : w[0].textContent })()`, 10*time.Second)
	if err := step(ctx, chromedp.Click(chromedp.CSS(`#profile-add`)), chromedp.WaitVisible(chromedp.CSS(`#profile-form #f-name`))); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "a new profile is not privileged and shows no warning", `(() => {
		const box = document.querySelector('#profile-form input[name="privileged"]');
		const w = document.querySelector('#profile-form .privileged-warning');
		return box && !box.checked && w && w.hidden ? 'ok' : 'checked ' + (box && box.checked) })()`, 10*time.Second)
	if err := step(ctx, chromedp.Click(chromedp.CSS(`#profile-form input[name="privileged"]`))); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "ticking privileged shows the warning", `(() => {
		const w = document.querySelector('#profile-form .privileged-warning');
		return w && !w.hidden && w.textContent.includes('the whole NAS') ? 'ok' : 'hidden' })()`, 10*time.Second)
	if err := step(ctx, evalVoid(`const s = document.querySelector('#lang-select'); s.value = 'zh-CN'; s.dispatchEvent(new Event('change'))`)); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "the warnings in Chinese", `(() => {
		const all = [...document.querySelectorAll('.privileged-warning')].map((w) => w.textContent);
		return all.length === 2 && all.every((s) => s.includes('整台 NAS')) ? 'ok' : all.join(' | ') })()`, 10*time.Second)
	noPageErrors(t, ctx)
}

// TestBrowserDownloadsAndQuietPolling: the settings page edits stack.pull_via and the registry
// mirrors (the API's refusal shows beside the field; a good answer is saved as a list); the
// backups page lists the share's bundles; and a page that does not show the status (settings)
// asks the controller for none, while the overview polls it.
func TestBrowserDownloadsAndQuietPolling(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	writeDamagedBundle(t, filepath.Join(h.cfg.ShareDir(), "bundles", "offline.tar"), "forgebox-test/x:1")
	ctx := newBrowser(t)
	asFront(t, ctx, h, "enu")
	const statusCount = `performance.getEntriesByType('resource').filter((e) => e.name.includes('/api/v1/status')).length`
	if err := step(ctx, chromedp.Navigate(h.ts.URL+"/#overview")); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "the overview polls the status", `(() => { const n = `+statusCount+`; return n >= 2 ? 'ok' : 'status requests: ' + n })()`, 30*time.Second)

	if err := step(ctx,
		chromedp.Click(chromedp.CSS(`#tabs a[data-view="settings"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#f-stack-registry_mirrors`)),
	); err != nil {
		t.Fatal(err)
	}
	before, err := chromedp.Run(ctx, chromedp.Evaluate[int](statusCount))
	if err != nil {
		t.Fatal(err)
	}
	// Two of the overview's slow poll periods (5 s): the overview would have asked twice.
	time.Sleep(11 * time.Second)
	after, err := chromedp.Run(ctx, chromedp.Evaluate[int](statusCount))
	if err != nil {
		t.Fatal(err)
	}
	if after != before {
		t.Errorf("the settings page asked for the status %d times in 11 s; it does not show it", after-before)
	}

	saved, _ := os.ReadFile(h.cfgPath)
	if err := step(ctx,
		chromedp.SetValue(chromedp.CSS(`#f-stack-registry_mirrors`), "https://m1.example, registry.gitlab.com=https://m2.example"),
		chromedp.SetValue(chromedp.CSS(`#f-stack-pull_via`), "engine"),
		chromedp.Click(chromedp.CSS(`#settings-save`)),
		chromedp.WaitVisible(chromedp.CSS(`.field[data-key="stack.registry_mirrors"] .field-error`)),
	); err != nil {
		t.Fatal(err)
	}
	if now, _ := os.ReadFile(h.cfgPath); !bytes.Equal(saved, now) {
		t.Error("mirrors with pull_via = engine were saved")
	}
	if err := step(ctx,
		chromedp.SetValue(chromedp.CSS(`#f-stack-pull_via`), "forgebox"),
		// The error's toast may cover the button: submit the form as the button would.
		evalVoid(`document.querySelector('#settings-form').requestSubmit()`),
	); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "saved", `(() => { const t = document.querySelector('#toast'); return t && !t.hidden && t.textContent.startsWith('Settings saved') ? 'ok' : [...document.querySelectorAll('.field-error, .form-errors')].map((e) => e.textContent).join(' | ') })()`, 10*time.Second)
	c, err := config.Load(h.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	if c.Stack.PullVia != "forgebox" || !slices.Equal(c.Stack.RegistryMirrors, []string{"https://m1.example", "registry.gitlab.com=https://m2.example"}) {
		t.Errorf("saved pull_via %q, mirrors %q", c.Stack.PullVia, c.Stack.RegistryMirrors)
	}

	if err := step(ctx,
		chromedp.Click(chromedp.CSS(`#tabs a[data-view="maintenance"]`)),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-bundle="bundles/offline.tar"] button[data-load]`)),
	); err != nil {
		t.Fatal(err)
	}
	noPageErrors(t, ctx)
}

// asFront makes every request of the browser come as DSM's front passes it on: the shared
// secret, the user, and DSM's language code (enu, chs).
func asFront(t *testing.T, ctx context.Context, h *harness, dsmLang string) {
	t.Helper()
	headers := network.Headers{api.HeaderFrontSecret: h.creds.FrontSecret, api.HeaderUser: "admin", api.HeaderLang: dsmLang}
	if _, err := chromedp.Call(ctx, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{Headers: headers}); err != nil {
		t.Fatal(err)
	}
}
