// Entry point: the shell (header, role-aware navigation, language toggle,
// help overlay), the hash router and the keyboard shortcuts. Each route is
// a page module in pages/ exporting mount(root, app) → unmount.
import './styles.css';
import { Api } from './api';
import type { App, Mount } from './app';
import { h, clear } from './dom';
import { t, getLang, setLang } from './i18n';
import * as login from './pages/login';
import * as live from './pages/live';
import * as replay from './pages/replay';
import * as search from './pages/search';
import * as exportsPage from './pages/exports';
import * as cameras from './pages/cameras';
import * as importPage from './pages/import';
import * as audit from './pages/audit';
import * as health from './pages/health';

interface RouteDef {
  path: string;
  mount: Mount;
  // action the caller's role needs (GET /api/v1/me actions); the link is
  // hidden and the page refused without it.
  action: string;
}

// Navigation order (also the order of the digit shortcuts).
const routes: RouteDef[] = [
  { path: 'live', mount: live.mount, action: 'live' },
  { path: 'replay', mount: replay.mount, action: 'replay' },
  { path: 'search', mount: search.mount, action: 'archive.read' },
  { path: 'exports', mount: exportsPage.mount, action: 'replay' },
  { path: 'cameras', mount: cameras.mount, action: 'camera.read' },
  { path: 'import', mount: importPage.mount, action: 'camera.write' },
  { path: 'audit', mount: audit.mount, action: 'audit.read' },
  { path: 'health', mount: health.mount, action: 'camera.read' },
];

const api = new Api();
const root = document.getElementById('app')!;
let unmount: (() => void) | null = null;

const app: App = {
  api,
  me: null,
  can(action: string) { return !!app.me && app.me.actions.includes(action); },
  navigate(hash: string) {
    if (location.hash === '#/' + hash) render(); else location.hash = '#/' + hash;
  },
  rerender() { render(); },
  async afterLogin() {
    app.me = await api.me();
    const first = routes.find(r => app.can(r.action));
    app.navigate(first ? first.path : 'cameras');
  },
};

api.onUnauthorized = () => { app.me = null; if (current() !== 'login') app.navigate('login'); };

function current(): string {
  return location.hash.replace(/^#\/?/, '').split('?')[0] || '';
}

function visibleRoutes(): RouteDef[] {
  return routes.filter(r => app.can(r.action));
}

function header(active: string): HTMLElement {
  const me = app.me;
  return h('header', { class: 'top' },
    h('div', { class: 'brand' }, t('app.title')),
    me && h('nav', { class: 'nav' }, visibleRoutes().map(r =>
      h('a', { href: '#/' + r.path, class: r.path === active ? 'active' : '', 'data-route': r.path }, t('nav.' + r.path)))),
    h('div', { class: 'spacer' }),
    h('button', { class: 'link', id: 'lang-toggle', onclick: toggleLang }, t('app.lang')),
    h('button', { class: 'link', onclick: toggleHelp, title: '?' }, t('app.help') + ' (?)'),
    me && h('span', { class: 'who', id: 'who' }, `${me.user} · ${t('role.' + me.role)}${me.townships.length ? ' · ' + me.townships.join(', ') : ''}`),
    me && h('button', { class: 'link', id: 'logout', onclick: async () => { await api.logout().catch(() => {}); app.me = null; app.navigate('login'); } }, t('app.logout')),
  );
}

function toggleLang(): void {
  setLang(getLang() === 'zh-CN' ? 'en' : 'zh-CN');
  render();
}

let helpEl: HTMLElement | null = null;
function toggleHelp(): void {
  if (helpEl) { helpEl.remove(); helpEl = null; return; }
  const row = (k: string, key: string) => h('tr', null, h('td', null, h('kbd', null, k)), h('td', null, t(key)));
  helpEl = h('div', { class: 'overlay', id: 'help', onclick: (e: Event) => { if (e.target === helpEl) toggleHelp(); } },
    h('div', { class: 'dialog' },
      h('h2', null, t('help.title')),
      h('table', null,
        row('?', 'help.key.help'),
        row('Alt+1…9', 'help.key.nav'),
        row('Alt+L', 'help.key.lang'),
        row('/', 'help.key.search'),
        row('Shift+1…4', 'help.key.layout'),
        row('T', 'help.key.tour'),
        row('Enter', 'help.key.search.run'),
        row('C · Z', 'help.key.search.edit'),
        row('J · K · Space', 'help.key.search.hits'),
        row('N', 'help.key.exports.new'),
        row('R', 'help.key.exports.refresh'),
        row('Esc', 'help.key.esc')),
      h('button', { onclick: toggleHelp }, t('app.close'))));
  document.body.appendChild(helpEl);
}

async function render(): Promise<void> {
  if (unmount) { unmount(); unmount = null; }
  let path = current();
  if (!api.token) path = 'login';
  else if (!app.me) {
    try { app.me = await api.me(); } catch { path = 'login'; }
  }
  if (path === 'login' && api.token && app.me) path = '';
  let def = routes.find(r => r.path === path);
  if (path !== 'login' && (!def || !app.can(def.action))) {
    def = visibleRoutes()[0];
    if (def && path !== def.path) { location.replace('#/' + def.path); return; }
  }
  document.title = t('app.title');
  const main = h('main', { class: 'page', id: 'page-' + (path === 'login' ? 'login' : def?.path ?? 'none') });
  clear(root, header(path), main);
  unmount = path === 'login' ? login.mount(main, app) : def ? def.mount(main, app) : () => {};
}

document.addEventListener('keydown', (e: KeyboardEvent) => {
  const tag = (e.target as HTMLElement).tagName;
  if (tag === 'INPUT' || tag === 'TEXTAREA' || tag === 'SELECT') {
    if (e.key === 'Escape') (e.target as HTMLElement).blur();
    return;
  }
  if (e.key === '?') { toggleHelp(); e.preventDefault(); return; }
  if (e.key === 'Escape' && helpEl) { toggleHelp(); return; }
  if (e.altKey && (e.key === 'l' || e.key === 'L')) { toggleLang(); e.preventDefault(); return; }
  if (e.altKey && /^[1-9]$/.test(e.key)) {
    const r = visibleRoutes()[Number(e.key) - 1];
    if (r) { app.navigate(r.path); e.preventDefault(); }
    return;
  }
  if (e.key === '/') {
    const s = document.querySelector<HTMLInputElement>('input[type=search]');
    if (s) { s.focus(); e.preventDefault(); }
  }
});

window.addEventListener('hashchange', () => { render(); });
document.documentElement.lang = getLang();
render();
