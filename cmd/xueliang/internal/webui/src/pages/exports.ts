// The exports page (#/exports): a form that starts signed exports (one job
// per camera picked; POST /api/v1/exports, exact=1 on request), the export
// jobs (GET /api/v1/exports, polled) with their state, progress, cancel or
// delete and download, and the evidence locks (GET /api/v1/evidence) with
// unlock for admins. A download is fetched with the session token and
// saved from a blob URL (a plain link cannot send the bearer header); the
// API URL of each package is shown next to it.
import type { App } from '../app';
import { ApiError, type Camera } from '../api';
import { h, clear } from '../dom';
import { t, extend } from '../i18n';
import { rangePicker, fmtTime, isTyping } from '../range';
import '../archive.css';

extend('zh-CN', {
  'exp.new': '新建导出',
  'exp.cameras': '摄像机',
  'exp.filter': '筛选摄像机',
  'exp.exact': '精确起点（重新编码首个 GOP，exact=1）',
  'exp.signed': '导出包以 Ed25519 签名，密钥指纹 {0}；用 xueliang export verify 校验。',
  'exp.create': '开始导出',
  'exp.started': '已开始 {0} 个导出任务',
  'exp.nocams': '请至少选择一台摄像机',
  'exp.jobs': '导出任务',
  'exp.refresh': '刷新',
  'exp.none': '没有导出任务',
  'exp.col.created': '创建时间',
  'exp.col.camera': '摄像机',
  'exp.col.range': '时间段',
  'exp.col.state': '状态',
  'exp.col.progress': '进度',
  'exp.col.files': '文件',
  'exp.col.size': '大小',
  'exp.col.by': '创建人',
  'exp.state.running': '进行中',
  'exp.state.done': '完成',
  'exp.state.failed': '失败',
  'exp.state.cancelled': '已取消',
  'exp.cancel': '取消',
  'exp.delete': '删除',
  'exp.download': '下载',
  'exp.downloading': '下载中…',
  'ev.title': '证据锁定',
  'ev.all': '包括已解除',
  'ev.none': '没有证据锁定',
  'ev.col.case': '案件编号',
  'ev.col.cameras': '摄像机',
  'ev.col.range': '时间段',
  'ev.col.by': '锁定人',
  'ev.col.state': '状态',
  'ev.active': '锁定中',
  'ev.unlocked': '已解除（{0}）',
  'ev.unlock': '解除锁定',
  'ev.confirm': '确认解除？',
  'help.key.exports.new': '导出：N 新建导出',
  'help.key.exports.refresh': '导出：R 刷新任务和证据锁定',
});
extend('en', {
  'exp.new': 'New export',
  'exp.cameras': 'Cameras',
  'exp.filter': 'Filter cameras',
  'exp.exact': 'Exact start (re-encode the first GOP, exact=1)',
  'exp.signed': 'Packages are signed with Ed25519, key fingerprint {0}; check them with xueliang export verify.',
  'exp.create': 'Start export',
  'exp.started': '{0} export jobs started',
  'exp.nocams': 'Pick at least one camera',
  'exp.jobs': 'Export jobs',
  'exp.refresh': 'Refresh',
  'exp.none': 'No export jobs',
  'exp.col.created': 'Created',
  'exp.col.camera': 'Camera',
  'exp.col.range': 'Range',
  'exp.col.state': 'State',
  'exp.col.progress': 'Progress',
  'exp.col.files': 'Files',
  'exp.col.size': 'Size',
  'exp.col.by': 'By',
  'exp.state.running': 'running',
  'exp.state.done': 'done',
  'exp.state.failed': 'failed',
  'exp.state.cancelled': 'cancelled',
  'exp.cancel': 'Cancel',
  'exp.delete': 'Delete',
  'exp.download': 'Download',
  'exp.downloading': 'Downloading…',
  'ev.title': 'Evidence locks',
  'ev.all': 'Include ended',
  'ev.none': 'No evidence locks',
  'ev.col.case': 'Case',
  'ev.col.cameras': 'Cameras',
  'ev.col.range': 'Range',
  'ev.col.by': 'Locked by',
  'ev.col.state': 'State',
  'ev.active': 'locked',
  'ev.unlocked': 'ended ({0})',
  'ev.unlock': 'Unlock',
  'ev.confirm': 'Really unlock?',
  'help.key.exports.new': 'Exports: N new export',
  'help.key.exports.refresh': 'Exports: R refresh jobs and locks',
});

export interface ExportJob {
  id: string;
  camera: string;
  from: string;
  to: string;
  exact?: boolean;
  state: 'running' | 'done' | 'failed' | 'cancelled';
  progress: number;
  error?: string;
  created_by: { user: string; role: string };
  created_at: string;
  files: number;
  size: number;
  manifest_sha256?: string;
}

interface EvidenceLock {
  id: number;
  cameras: string[];
  from: string;
  to: string;
  case_number: string;
  reason: string;
  created_by: string;
  created: string;
  active: boolean;
  unlocked_by?: string;
  unlocked?: string;
}

// downloadURL is the API path of a finished job's package.
export const downloadURL = (id: string) => `/api/v1/exports/${encodeURIComponent(id)}/download`;

const fmtSize = (n: number) => n >= 1 << 30 ? `${(n / (1 << 30)).toFixed(2)} GiB` : n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(1)} MiB` : `${Math.ceil(n / 1024)} KiB`;
const fmtRange = (a: string, b: string) => `${fmtTime(new Date(a))} – ${fmtTime(new Date(b))}`;

export function mount(root: HTMLElement, app: App): () => void {
  let gone = false;
  let timer = 0;
  let cameras: Camera[] = [];
  const names = new Map<string, string>();
  const picked = new Set<string>();

  // The form.
  const range = rangePicker('export', 600e3);
  const filter = h('input', { type: 'search', id: 'export-filter', placeholder: t('exp.filter'), oninput: () => drawCameras() });
  const camList = h('div', { class: 'export-cams', id: 'export-cameras' });
  const exact = h('input', { type: 'checkbox', id: 'export-exact' });
  const createBtn = h('button', { class: 'primary', id: 'export-create', onclick: () => create() }, t('exp.create'));
  const formMsg = h('p', { class: 'muted', id: 'export-msg' });
  const keyInfo = h('p', { class: 'muted', id: 'export-key' });

  // The jobs.
  const jobsBody = h('tbody', { id: 'export-jobs' });
  // The evidence locks.
  const evAll = h('input', { type: 'checkbox', id: 'evidence-all', onchange: () => refreshEvidence() });
  const evBody = h('tbody', { id: 'evidence-locks' });
  const evMsg = h('p', { class: 'error', id: 'evidence-msg' });
  const canEvidence = app.can('evidence.read');
  const canUnlock = app.can('evidence.unlock');

  root.appendChild(h('div', { class: 'exports' },
    h('section', { class: 'panel', id: 'export-form' },
      h('h1', null, t('exp.new')),
      h('div', { class: 'toolbar' }, range.el),
      h('div', { class: 'toolbar' }, h('span', { class: 'muted' }, t('exp.cameras')), filter),
      camList,
      h('div', { class: 'toolbar' }, h('label', { class: 'inline' }, exact, t('exp.exact')), createBtn),
      formMsg, keyInfo),
    h('section', { class: 'panel' },
      h('div', { class: 'toolbar' }, h('h1', null, t('exp.jobs')), h('div', { class: 'spacer' }),
        h('button', { id: 'export-refresh', onclick: () => refreshAll() }, t('exp.refresh'))),
      h('div', { class: 'scroll jobs' }, h('table', { class: 'grid' },
        h('thead', null, h('tr', null, ['created', 'camera', 'range', 'state', 'progress', 'files', 'size', 'by'].map(k => h('th', null, t('exp.col.' + k))), h('th', null, ''))),
        jobsBody))),
    canEvidence && h('section', { class: 'panel' },
      h('div', { class: 'toolbar' }, h('h1', null, t('ev.title')), h('div', { class: 'spacer' }),
        h('label', { class: 'inline' }, evAll, t('ev.all'))),
      evMsg,
      h('div', { class: 'scroll locks' }, h('table', { class: 'grid' },
        h('thead', null, h('tr', null, h('th', null, '#'), ['case', 'cameras', 'range', 'by', 'state'].map(k => h('th', null, t('ev.col.' + k))), h('th', null, ''))),
        evBody)))));

  function drawCameras(): void {
    const q = filter.value.trim().toLowerCase();
    const shown = cameras.filter(c => !q || c.id.toLowerCase().includes(q) || (c.name ?? '').toLowerCase().includes(q) || (c.township ?? '').toLowerCase().includes(q));
    clear(camList, shown.length === 0 ? h('p', { class: 'muted' }, t('tree.none')) : shown.map(c =>
      h('label', { class: 'check inline', title: c.id },
        h('input', {
          type: 'checkbox', 'data-camera': c.id, checked: picked.has(c.id),
          onchange: (e: Event) => { if ((e.target as HTMLInputElement).checked) picked.add(c.id); else picked.delete(c.id); },
        }),
        `${c.name || c.id}`, h('span', { class: 'muted' }, ` ${c.township || ''}`))));
  }

  async function create(): Promise<void> {
    const rg = range.range();
    if (!rg) return;
    const ids = cameras.map(c => c.id).filter(id => picked.has(id));
    if (ids.length === 0) { formMsg.className = 'error'; formMsg.textContent = t('exp.nocams'); return; }
    createBtn.disabled = true;
    const errs: string[] = [];
    let started = 0;
    for (const id of ids) {
      try {
        await app.api.json('POST', '/api/v1/exports' + (exact.checked ? '?exact=1' : ''), { camera: id, from: rg[0].toISOString(), to: rg[1].toISOString() });
        started++;
      } catch (e) {
        errs.push(`${names.get(id) ?? id}: ${(e as Error).message}`);
      }
    }
    createBtn.disabled = false;
    formMsg.className = errs.length ? 'error' : 'ok';
    formMsg.textContent = [started ? t('exp.started', started) : '', ...errs].filter(Boolean).join('；');
    refreshJobs();
  }

  async function download(j: ExportJob, btn: HTMLButtonElement): Promise<void> {
    btn.disabled = true;
    btn.textContent = t('exp.downloading');
    try {
      const r = await app.api.raw('GET', downloadURL(j.id));
      const u = URL.createObjectURL(await r.blob());
      const a = h('a', { href: u, download: `xueliang-export-${j.camera}-${j.id}.zip` });
      document.body.appendChild(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(u), 60e3);
    } catch (e) {
      alertRow(j.id, (e as Error).message);
    } finally {
      btn.disabled = false;
      btn.textContent = t('exp.download');
    }
  }

  function alertRow(id: string, msg: string): void {
    const row = jobsBody.querySelector<HTMLElement>(`tr[data-job="${CSS.escape(id)}"] .rowmsg`);
    if (row) row.textContent = msg;
  }

  function drawJobs(jobs: ExportJob[]): void {
    clear(jobsBody, jobs.length === 0 ? h('tr', null, h('td', { colspan: '9', class: 'muted' }, t('exp.none'))) : jobs.map(j => {
      const bar = h('div');
      bar.style.width = `${Math.round(j.progress * 100)}%`;
      const actions: (HTMLElement | false)[] = [
        j.state === 'done' && h('button', { class: 'primary', 'data-action': 'download', 'data-url': downloadURL(j.id), onclick: (e: Event) => download(j, e.currentTarget as HTMLButtonElement) }, t('exp.download')),
        (j.state === 'running' || j.state === 'done') && h('button', {
          'data-action': 'cancel',
          onclick: async () => {
            try { await app.api.json('DELETE', '/api/v1/exports/' + encodeURIComponent(j.id)); } catch (e) { alertRow(j.id, (e as Error).message); }
            refreshJobs();
          },
        }, j.state === 'running' ? t('exp.cancel') : t('exp.delete')),
      ];
      return h('tr', { 'data-job': j.id, 'data-state': j.state },
        h('td', null, fmtTime(new Date(j.created_at))),
        h('td', { title: j.camera }, names.get(j.camera) ?? j.camera),
        h('td', null, fmtRange(j.from, j.to), j.exact ? h('span', { class: 'badge' }, 'exact') : null),
        h('td', { class: j.state === 'failed' ? 'bad' : j.state === 'done' ? 'okc' : '' }, t('exp.state.' + j.state), j.error ? h('div', { class: 'muted small' }, j.error) : null),
        h('td', null, h('div', { class: 'progress', 'data-progress': String(j.progress) }, bar), h('span', { class: 'muted small' }, `${Math.round(j.progress * 100)}%`)),
        h('td', null, j.state === 'done' ? j.files : ''),
        h('td', null, j.state === 'done' ? fmtSize(j.size) : ''),
        h('td', null, j.created_by?.user ?? ''),
        h('td', { class: 'actions' }, actions, j.state === 'done' && h('code', { class: 'muted small url' }, downloadURL(j.id)), h('span', { class: 'error rowmsg' })));
    }));
  }

  async function refreshJobs(): Promise<void> {
    clearTimeout(timer);
    let running = false;
    try {
      const r = await app.api.json<{ exports: ExportJob[] }>('GET', '/api/v1/exports');
      if (gone) return;
      drawJobs(r.exports);
      running = r.exports.some(j => j.state === 'running');
    } catch (e) {
      if (gone) return;
      clear(jobsBody, h('tr', null, h('td', { colspan: '9', class: 'error' }, t('app.error', (e as Error).message))));
    }
    if (!gone) timer = window.setTimeout(refreshJobs, running ? 1000 : 10000);
  }

  async function refreshEvidence(): Promise<void> {
    if (!canEvidence) return;
    try {
      const r = await app.api.json<{ locks: EvidenceLock[] }>('GET', '/api/v1/evidence' + (evAll.checked ? '?all=true' : ''));
      if (gone) return;
      evMsg.textContent = '';
      clear(evBody, r.locks.length === 0 ? h('tr', null, h('td', { colspan: '7', class: 'muted' }, t('ev.none'))) : r.locks.map(l => {
        let armed = false;
        const btn = canUnlock && l.active && h('button', {
          'data-action': 'unlock',
          onclick: async (e: Event) => {
            const b = e.currentTarget as HTMLButtonElement;
            if (!armed) { armed = true; b.textContent = t('ev.confirm'); b.classList.add('danger'); return; }
            b.disabled = true;
            try { await app.api.json('POST', `/api/v1/evidence/${l.id}/unlock`); } catch (err) { evMsg.textContent = t('app.error', (err as Error).message); }
            refreshEvidence();
          },
        }, t('ev.unlock'));
        return h('tr', { 'data-lock': String(l.id), 'data-active': String(l.active) },
          h('td', null, l.id),
          h('td', { title: l.reason }, l.case_number),
          h('td', null, l.cameras.map(c => names.get(c) ?? c).join(', ')),
          h('td', null, fmtRange(l.from, l.to)),
          h('td', null, l.created_by),
          h('td', { class: l.active ? 'okc' : 'muted' }, l.active ? t('ev.active') : t('ev.unlocked', l.unlocked_by ?? '')),
          h('td', null, btn));
      }));
    } catch (e) {
      if (!gone) evMsg.textContent = t('app.error', (e as Error).message);
    }
  }

  function refreshAll(): void { refreshJobs(); refreshEvidence(); }

  function onKey(e: KeyboardEvent): void {
    if (isTyping(e) || e.altKey || e.ctrlKey || e.metaKey || document.getElementById('help')) return;
    if (e.key === 'n' || e.key === 'N') { (camList.querySelector('input') ?? filter).focus(); e.preventDefault(); }
    if (e.key === 'r' || e.key === 'R') { refreshAll(); e.preventDefault(); }
  }
  document.addEventListener('keydown', onKey);

  app.api.cameras().then(cs => {
    if (gone) return;
    cameras = cs.sort((a, b) => (a.township ?? '').localeCompare(b.township ?? '', 'zh-CN') || (a.name || a.id).localeCompare(b.name || b.id, 'zh-CN'));
    for (const c of cs) names.set(c.id, c.name || c.id);
    drawCameras();
    refreshAll();
  }).catch((e: unknown) => { if (!gone) clear(camList, h('p', { class: 'error' }, t('app.error', (e as Error).message))); });
  app.api.json<{ fingerprint: string }>('GET', '/api/v1/exports/public-key')
    .then(k => { if (!gone) { keyInfo.textContent = t('exp.signed', k.fingerprint); keyInfo.dataset.fingerprint = k.fingerprint; } })
    .catch((e: unknown) => { if (!gone && !(e instanceof ApiError && e.status === 501)) keyInfo.textContent = t('app.error', (e as Error).message); });
  clear(jobsBody, h('tr', null, h('td', { colspan: '9', class: 'muted' }, t('app.loading'))));

  return () => {
    gone = true;
    clearTimeout(timer);
    document.removeEventListener('keydown', onKey);
  };
}
