// The audit page (#/audit): the hash-chained audit log with filters (user,
// camera, time range, limit), and the verify result of the chain
// (GET /api/v1/audit/verify).
import type { App } from '../app';
import { h, clear } from '../dom';
import { t, extend } from '../i18n';

extend('zh-CN', {
  'audit.title': '审计日志',
  'audit.user': '用户', 'audit.camera': '摄像机', 'audit.from': '开始', 'audit.to': '结束', 'audit.limit': '条数',
  'audit.query': '查询', 'audit.verify': '校验哈希链',
  'audit.at': '时间', 'audit.role': '角色', 'audit.action': '操作', 'audit.request': '请求', 'audit.status': '结果', 'audit.detail': '详情',
  'audit.count': '{0} 条',
  'audit.verify.ok': '校验通过：{0} 条，哈希链完整',
  'audit.verify.bad': '校验失败：{0}',
  'audit.verify.head': '链头哈希 {0}',
  'audit.verify.firstbad': '第一条异常：#{0}（{1}）',
  'audit.verify.anchored': '已与签名锚点核对',
  'audit.verify.unanchored': '未与签名锚点核对（截断无法发现）',
});
extend('en', {
  'audit.title': 'Audit log',
  'audit.user': 'User', 'audit.camera': 'Camera', 'audit.from': 'From', 'audit.to': 'To', 'audit.limit': 'Limit',
  'audit.query': 'Query', 'audit.verify': 'Verify the chain',
  'audit.at': 'Time', 'audit.role': 'Role', 'audit.action': 'Action', 'audit.request': 'Request', 'audit.status': 'Status', 'audit.detail': 'Detail',
  'audit.count': '{0} entries',
  'audit.verify.ok': 'Verified: {0} entries, the hash chain is intact',
  'audit.verify.bad': 'Verification failed: {0}',
  'audit.verify.head': 'head hash {0}',
  'audit.verify.firstbad': 'first bad entry: #{0} ({1})',
  'audit.verify.anchored': 'checked against the signed anchor',
  'audit.verify.unanchored': 'not checked against a signed anchor (a cut tail is not detected)',
});

// VerifyResult is GET /api/v1/audit/verify's answer.
interface VerifyResult { ok: boolean; entries: number; head: string; anchored: boolean; first_bad: { id: number; reason: string } | null; error?: string }

interface Entry { id: number; at: string; user: string; role: string; remote: string; method: string; path: string; action: string; camera?: string; status: number; detail?: string }

export function mount(root: HTMLElement, app: App): () => void {
  const user = h('input', { name: 'user', id: 'audit-user' });
  const camera = h('input', { name: 'camera', id: 'audit-camera' });
  const from = h('input', { type: 'datetime-local', name: 'from' });
  const to = h('input', { type: 'datetime-local', name: 'to' });
  const limit = h('input', { type: 'number', min: '1', max: '1000', value: '200', class: 'num' });
  const info = h('span', { class: 'muted', id: 'audit-count' });
  const verifyMsg = h('p', { id: 'audit-verify' });
  const body = h('tbody');
  const lbl = (k: string, el: HTMLElement) => h('label', null, t(k), el);
  const cols = ['at', 'user', 'role', 'action', 'request', 'camera', 'status', 'detail'];
  root.appendChild(h('section', { class: 'panel' }, h('h1', null, t('audit.title')),
    h('form', { class: 'filters', onsubmit: (e: Event) => { e.preventDefault(); query(); } },
      lbl('audit.user', user), lbl('audit.camera', camera), lbl('audit.from', from), lbl('audit.to', to), lbl('audit.limit', limit),
      h('button', { type: 'submit', class: 'primary', id: 'audit-query' }, t('audit.query')),
      h('button', { type: 'button', id: 'audit-verify-btn', onclick: () => verify() }, t('audit.verify')), info),
    verifyMsg,
    h('div', { class: 'scroll' }, h('table', { class: 'grid', id: 'audit-table' }, h('thead', null, h('tr', null, cols.map(c => h('th', null, t('audit.' + c))))), body))));

  async function query(): Promise<void> {
    const q = new URLSearchParams();
    if (user.value) q.set('user', user.value.trim());
    if (camera.value) q.set('camera', camera.value.trim());
    if (from.value) q.set('from', new Date(from.value).toISOString());
    if (to.value) q.set('to', new Date(to.value).toISOString());
    q.set('limit', limit.value || '200');
    try {
      const r = await app.api.json<{ entries: Entry[] }>('GET', '/api/v1/audit?' + q.toString());
      info.textContent = t('audit.count', r.entries.length);
      clear(body, r.entries.map(e => h('tr', null,
        h('td', null, new Date(e.at).toLocaleString()), h('td', null, e.user), h('td', null, e.role), h('td', null, e.action),
        h('td', null, `${e.method} ${e.path}`), h('td', null, e.camera ?? ''),
        h('td', { class: e.status >= 400 ? 'bad' : 'okc' }, String(e.status)), h('td', { class: 'muted' }, e.detail ?? ''))));
    } catch (e) {
      info.textContent = t('app.error', (e as Error).message);
    }
  }

  async function verify(): Promise<void> {
    verifyMsg.className = 'muted';
    verifyMsg.textContent = t('app.loading');
    try {
      const r = await app.api.json<VerifyResult>('GET', '/api/v1/audit/verify');
      verifyMsg.className = r.ok ? 'ok' : 'error';
      verifyMsg.dataset.entries = String(r.entries);
      verifyMsg.dataset.head = r.head;
      clear(verifyMsg,
        r.ok ? t('audit.verify.ok', r.entries) : t('audit.verify.bad', r.error ?? ''),
        h('span', { class: 'muted' }, ' · ', t('audit.verify.head', r.head), ' · ', t(r.anchored ? 'audit.verify.anchored' : 'audit.verify.unanchored')),
        r.first_bad && h('div', { id: 'audit-first-bad' }, t('audit.verify.firstbad', r.first_bad.id, r.first_bad.reason)));
    } catch (e) {
      verifyMsg.className = 'error';
      verifyMsg.textContent = t('app.error', (e as Error).message);
    }
  }
  query();
  return () => {};
}
