// The login page (#/login): POST /api/v1/login, then the first page the
// role may use.
import type { App } from '../app';
import { ApiError } from '../api';
import { h } from '../dom';
import { t } from '../i18n';

export function mount(root: HTMLElement, app: App): () => void {
  const user = h('input', { id: 'login-user', name: 'user', autocomplete: 'username', required: true, autofocus: true });
  const pass = h('input', { id: 'login-password', name: 'password', type: 'password', autocomplete: 'current-password', required: true });
  const msg = h('p', { class: 'error', id: 'login-error', role: 'alert' });
  const btn = h('button', { type: 'submit', id: 'login-submit', class: 'primary' }, t('login.submit'));
  const form = h('form', {
    class: 'login panel',
    onsubmit: async (e: Event) => {
      e.preventDefault();
      msg.textContent = '';
      btn.disabled = true;
      try {
        await app.api.login(user.value.trim(), pass.value);
        await app.afterLogin();
      } catch (err) {
        const st = err instanceof ApiError ? err.status : 0;
        msg.textContent = st === 401 ? t('login.bad') : st === 429 ? t('login.throttled') : t('app.error', String((err as Error).message));
      } finally {
        btn.disabled = false;
      }
    },
  },
  h('h1', null, t('login.title')),
  h('label', null, t('login.user'), user),
  h('label', null, t('login.password'), pass),
  btn, msg);
  root.appendChild(h('div', { class: 'center' }, form));
  user.focus();
  return () => {};
}
