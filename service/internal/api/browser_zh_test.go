package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/forgebox/forgebox/service/internal/config"
)

// englishAllowed are the words a Chinese page may show in Latin letters: product and protocol
// names, units, and words that are names in the config file (keys, values) rather than prose.
var englishAllowed = []string{
	"Forgebox", "forgebox", "GitLab", "Gitlab", "Runner", "Redis", "PostgreSQL", "Postgres", "postgres", "redis", "gitlab", "runner",
	"Docker", "Hub", "Engine", "DSM", "Synology", "Container", "Manager", "API", "HTTP", "HTTPS", "SSH", "CI", "CPU", "URL", "TOML",
	"CE", "EE", "omnibus", "sameersbn", "alpine", "debian", "trixie", "bookworm", "latest",
	"KiB", "MiB", "GiB", "TiB", "ms", "min", "English", "pid", "root", "token", "admin", "config", "toml",
	"http_port", "ssh_port", "pull_policy", "runner", "profiles", "default", "docker", "tags",
	"NAS", "Rails", "linux", "amcheck", // hardware, Ruby on Rails, an OS and a PostgreSQL extension: names
}

// untranslatedJS lists the English words of the page's visible text outside the allowlist.
// Each text node is read on its own. Not prose, and left out: code, image references, log
// lines and user data (inputs, <code>, <pre>), another program's words the app sets apart in
// 「」, and identifiers (a token with a digit, dot, dash, slash or underscore: names, keys, paths).
const untranslatedJS = `(() => {
	const allowed = new Set(%s);
	const skip = 'code, pre, input, textarea, select, option, script, style, #log-lines, .stack-name';
	const out = new Set();
	const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
	for (let n = walker.nextNode(); n; n = walker.nextNode()) {
		const el = n.parentElement;
		if (!el || el.closest(skip) || el.closest('[hidden]') || el.getClientRects().length === 0) continue;
		const text = n.textContent.replace(/「[^」]*」/g, ' ').replace(/\b[a-z][a-z0-9+.-]*:\/\/\S*/gi, ' ');
		for (const tok of text.split(/[\s，。：；、（）()“”"'「」,;:!?·→—…]+/)) {
			if (!/^[A-Za-z]{3,}$/.test(tok)) continue;
			if (!allowed.has(tok)) out.add(tok);
		}
	}
	return JSON.stringify([...out]);
})()`

func untranslated(t *testing.T, ctx context.Context) []string {
	t.Helper()
	allow, _ := json.Marshal(englishAllowed)
	out, err := chromedp.Run(ctx, chromedp.Evaluate[string](fmt.Sprintf(untranslatedJS, allow)))
	if err != nil {
		t.Fatalf("read the page's words: %v", err)
	}
	var words []string
	if err := json.Unmarshal([]byte(out), &words); err != nil {
		t.Fatal(err)
	}
	return words
}

// TestBrowserChineseEveryPage walks every page of the web app in Simplified Chinese against a
// real stack, from an up in progress to the doctor, saves a screenshot of each, and fails on
// any English word outside englishAllowed: plan steps, progress, field errors and refusals
// come from the server as codes and must be rendered in the reader's language.
func TestBrowserChineseEveryPage(t *testing.T) {
	h := newHarness(t, harnessOptions{engine: true})
	ctx := newBrowser(t)
	sh := shooter{t: t, dir: artifactsDir(t)}
	asFront(t, ctx, h, "chs")
	if err := step(ctx, chromedp.Navigate(h.ts.URL+"/?lang=zh-CN#overview"), chromedp.WaitVisible(chromedp.CSS(`#btn-up`))); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "the app in Chinese", `(() => document.documentElement.lang === 'zh-CN' && document.querySelector('#btn-up').textContent === '启动' ? 'ok' : document.documentElement.lang)()`, 15*time.Second)
	check := func(page string) {
		t.Helper()
		if words := untranslated(t, ctx); len(words) > 0 {
			t.Errorf("%s shows English in the Chinese app: %q", page, words)
		}
	}

	// The overview while an up runs: planned steps, their progress and the outcome.
	upFromThePage(t, ctx, func(string) {
		sh.shot(ctx, "zh-01-overview-up.png")
		check("the overview during an up")
	})
	sh.shot(ctx, "zh-02-overview-done.png")
	check("the overview after the up")

	// Settings with errors: a DSM port (the validator's), then a new stack name while the stack
	// has containers (the config API's own refusal).
	zh := walkLangs["zh-CN"]
	zh.dsmPortError(t, ctx)
	toastText, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#toast`)))
	if !strings.Contains(toastText, "1 项设置") {
		t.Errorf("the toast does not say how many settings need a change: %q", toastText)
	}
	sh.shot(ctx, "zh-03-settings-errors.png")
	check("settings with errors")
	if err := step(ctx, chromedp.SetValue(chromedp.CSS(`#f-gitlab-http_port`), fmt.Sprint(h.cfg.GitLab.HTTPPort))); err != nil {
		t.Fatal(err)
	}
	if got := saveSetting(t, ctx, "f-stack-name", "stack.name", "renamed"); !strings.Contains(got, "容器") || !strings.Contains(got, "停止") {
		t.Errorf("the refusal of a new stack name is not the Chinese one: %q", got)
	}
	sh.shot(ctx, "zh-03b-settings-rename.png")
	check("settings with a refused rename")

	// A hand edit between the page's load and its save: refused, said in Chinese, the edit kept;
	// with the file back as the controller loaded it, the page's save (with its If-Match) works.
	orig, err := os.ReadFile(h.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := step(ctx, evalVoid(`location.hash = 'overview'`), chromedp.WaitVisible(chromedp.CSS(`#btn-up`)),
		chromedp.Click(chromedp.CSS(`#tabs a[data-view="settings"]`)), chromedp.WaitVisible(chromedp.CSS(`#f-stack-name`))); err != nil {
		t.Fatal(err)
	}
	edited := append([]byte("# tuned by hand: keep this\n"), orig...)
	if err := os.WriteFile(h.cfgPath, edited, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := step(ctx, chromedp.SetValue(chromedp.CSS(`#f-gitlab-admin_email`), "ops@example.com"), evalVoid(`document.querySelector('#settings-form').requestSubmit()`)); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "the refusal of a save over a hand edit", `(() => { const t = document.querySelector('#toast');
		return t && !t.hidden && t.textContent.includes('重启') ? 'ok' : (t ? t.textContent : 'no toast') })()`, 10*time.Second)
	sh.shot(ctx, "zh-03c-settings-hand-edit.png")
	check("settings refusing a save over a hand edit")
	if now, _ := os.ReadFile(h.cfgPath); !bytes.Equal(now, edited) {
		t.Fatalf("the hand-edited file was rewritten:\n%s", now)
	}
	if err := os.WriteFile(h.cfgPath, orig, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := step(ctx, evalVoid(`document.querySelector('#settings-form').requestSubmit()`)); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "the page's save", `(() => { const t = document.querySelector('#toast');
		return t && !t.hidden && t.textContent.startsWith('设置已保存') ? 'ok' : (t ? t.textContent : 'no toast') })()`, 10*time.Second)
	if c, err := config.Load(h.cfgPath); err != nil || c.GitLab.AdminEmail != "ops@example.com" {
		t.Errorf("the page's save did not reach the file: %v", err)
	}

	zh.takenProfileError(t, ctx)
	sh.shot(ctx, "zh-04-runners.png")
	check("runners")

	for i, v := range []string{"builds", "maintenance", "activity", "doctor"} {
		if err := step(ctx, evalVoid(`location.hash = '`+v+`'`)); err != nil {
			t.Fatal(err)
		}
		waitJS(t, ctx, v+" page", fmt.Sprintf(`(() => { const v = document.querySelector('#view');
			return location.hash === '#%s' && v && v.innerText.trim() !== '' && !v.innerText.includes('加载中') ? 'ok' : 'loading' })()`, v), 30*time.Second)
		sh.shot(ctx, fmt.Sprintf("zh-%02d-%s.png", i+5, v))
		check(v)
	}
	noPageErrors(t, ctx)

	downFromThePage(t, ctx)
}
