// The login page: trades the admin token for a session cookie. The token itself is never kept
// by the browser.
import { applyI18n, t, detectLang, setLang } from './i18n.js';

setLang(detectLang(''));
applyI18n(document);

const form = document.getElementById('login-form');
const err = document.getElementById('login-error');

form.addEventListener('submit', async (ev) => {
  ev.preventDefault();
  err.hidden = true;
  const token = form.token.value.trim();
  if (!token) {
    err.textContent = t('login.empty');
    err.hidden = false;
    return;
  }
  let res;
  try {
    res = await fetch('api/v1/login', {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json', 'X-Forgebox-CSRF': '1' },
      body: JSON.stringify({ token }),
    });
  } catch (e) {
    err.textContent = t('error.network');
    err.hidden = false;
    return;
  }
  if (res.ok) {
    // At ./login go to the app beside it; at ./ reload, now with the cookie.
    location.replace(location.pathname.endsWith('/login') ? './' : location.pathname);
    return;
  }
  err.textContent = res.status === 401 ? t('login.wrong') : t('error.generic', { status: res.status });
  err.hidden = false;
});
