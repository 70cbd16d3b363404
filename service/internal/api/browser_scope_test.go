package api_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/forgebox/forgebox/service/internal/api"
)

// TestBrowserProfileScope: the runner profile form chooses whose jobs the runner takes (every
// project, a group by path, a project by path); a bad path is refused beside the path field;
// the runners page shows each profile's scope, in English and in Chinese; editing a profile
// keeps its scope unless changed.
func TestBrowserProfileScope(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	ctx := newBrowser(t)
	headers := network.Headers{api.HeaderFrontSecret: h.creds.FrontSecret, api.HeaderUser: "admin", api.HeaderLang: "enu"}
	if _, err := chromedp.Call(ctx, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{Headers: headers}); err != nil {
		t.Fatal(err)
	}
	if err := step(ctx, chromedp.Navigate(h.ts.URL+"/#runners"), chromedp.WaitVisible(chromedp.CSS(`tr[data-profile="default"]`))); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "the default profile takes every project's jobs", `(() => {
		const c = document.querySelector('tr[data-profile="default"] td.scope');
		return c && c.textContent === 'Every project' ? 'ok' : (c ? c.textContent : 'no cell') })()`, 10*time.Second)
	if err := step(ctx, chromedp.Click(chromedp.CSS(`#profile-add`)), chromedp.WaitVisible(chromedp.CSS(`#profile-form #f-name`))); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "a new profile is for every project and asks no path", `(() => {
		const s = document.querySelector('#profile-form select[name="scope"]');
		const f = document.querySelector('#profile-form .field[data-key="scope_path"]');
		return s && s.value === 'instance' && f && f.hidden ? 'ok' : 'scope ' + (s && s.value) })()`, 10*time.Second)
	if err := step(ctx,
		chromedp.SendKeys(chromedp.CSS(`#profile-form #f-name`), "team"),
		chromedp.SendKeys(chromedp.CSS(`#profile-form #f-image`), "alpine:3.22"),
		chromedp.SendKeys(chromedp.CSS(`#profile-form #f-tags`), "team"),
		evalVoid(`const s = document.querySelector('#profile-form select[name="scope"]'); s.value = 'group'; s.dispatchEvent(new Event('change'))`),
		chromedp.WaitVisible(chromedp.CSS(`#profile-form #f-scope_path`)),
		chromedp.SendKeys(chromedp.CSS(`#profile-form #f-scope_path`), "my team"),
		chromedp.Click(chromedp.CSS(`#profile-form button[type=submit]`)),
	); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "a bad group path is refused beside the path", `(() => {
		const e = document.querySelector('#profile-form .field[data-key="scope_path"] .field-error');
		return e && !e.hidden && e.textContent.includes('not a group path') ? 'ok' : (e ? e.textContent : 'none') })()`, 10*time.Second)
	if err := step(ctx,
		evalVoid(`document.querySelector('#profile-form #f-scope_path').value = ''`),
		chromedp.SendKeys(chromedp.CSS(`#profile-form #f-scope_path`), "team/sub"),
		chromedp.Click(chromedp.CSS(`#profile-form button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-profile="team"]`)),
	); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Profile struct{ Group, Project string }
	}
	res, body := h.do(h.front("GET", "/api/v1/runner/profiles/team", nil), &got)
	expectStatus(t, res, body, http.StatusOK)
	if got.Profile.Group != "team/sub" || got.Profile.Project != "" {
		t.Fatalf("saved profile: %s", body)
	}
	waitJS(t, ctx, "the page shows the group", `(() => {
		const c = document.querySelector('tr[data-profile="team"] td.scope');
		return c && c.textContent === 'Group team/sub' ? 'ok' : (c ? c.textContent : 'no cell') })()`, 10*time.Second)

	// Edit: the form comes with the group; switching to a project saves project, not group.
	clickJS(t, ctx, `tr[data-profile="team"] button.small`, 10*time.Second)
	waitJS(t, ctx, "the form shows the group", `(() => {
		const s = document.querySelector('#profile-form select[name="scope"]');
		const p = document.querySelector('#profile-form #f-scope_path');
		return s && s.value === 'group' && p && p.value === 'team/sub' ? 'ok' : (s && s.value) + ' ' + (p && p.value) })()`, 10*time.Second)
	if err := step(ctx,
		evalVoid(`const s = document.querySelector('#profile-form select[name="scope"]'); s.value = 'project'; s.dispatchEvent(new Event('change'))`),
		evalVoid(`document.querySelector('#profile-form #f-scope_path').value = 'team/sub/app'`),
		// In the page: the last save's toast may lie over the button.
		evalVoid(`document.querySelector('#profile-form button[type=submit]').click()`),
	); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "the page shows the project", `(() => {
		const c = document.querySelector('tr[data-profile="team"] td.scope');
		const errs = [...document.querySelectorAll('#profile-form .field-error:not([hidden]), #profile-form .form-errors, .toast')].map((e) => e.textContent).join(' / ');
		return c && c.textContent === 'Project team/sub/app' ? 'ok' : (c ? c.textContent : 'no cell') + ' ' + errs })()`, 10*time.Second)
	got.Profile.Group, got.Profile.Project = "", ""
	res, body = h.do(h.front("GET", "/api/v1/runner/profiles/team", nil), &got)
	expectStatus(t, res, body, http.StatusOK)
	if got.Profile.Group != "" || got.Profile.Project != "team/sub/app" {
		t.Fatalf("edited profile: %s", body)
	}
	if err := step(ctx, evalVoid(`const s = document.querySelector('#lang-select'); s.value = 'zh-CN'; s.dispatchEvent(new Event('change'))`)); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "the scopes in Chinese", `(() => {
		const d = document.querySelector('tr[data-profile="default"] td.scope').textContent;
		const p = document.querySelector('tr[data-profile="team"] td.scope').textContent;
		return d === '所有项目' && p === '项目 team/sub/app' ? 'ok' : d + ' | ' + p })()`, 10*time.Second)
	noPageErrors(t, ctx)
}
