// The CSV import page (#/import): the file is parsed in the browser (a
// header row naming the columns: id,name,township,village,lat,lon,main_url,
// sub_url,username,password,transport), checked with a dry run, then sent
// in batches to POST /api/v1/cameras/import with a progress bar; the
// server's per-row report is shown as it comes.
import type { App } from '../app';
import { h, clear } from '../dom';
import { t, extend } from '../i18n';

extend('zh-CN', {
  'import.title': '批量导入摄像机（CSV）',
  'import.help': '第一行为列名：id,name,township,village,lat,lon,main_url,sub_url,username,password,transport,segment_duration,enabled,motion',
  'import.dry': '仅校验（不保存）',
  'import.run': '导入',
  'import.progress': '{0} / {1} 行',
  'import.summary': '新增 {0}，更新 {1}，未变 {2}，失败 {3}',
  'import.row': '行', 'import.id': '编码', 'import.outcome': '结果', 'import.error': '错误',
  'import.nofile': '请选择 CSV 文件',
});
extend('en', {
  'import.title': 'Import cameras (CSV)',
  'import.help': 'First row names the columns: id,name,township,village,lat,lon,main_url,sub_url,username,password,transport,segment_duration,enabled,motion',
  'import.dry': 'Check only (dry run)',
  'import.run': 'Import',
  'import.progress': '{0} / {1} rows',
  'import.summary': '{0} created, {1} updated, {2} unchanged, {3} failed',
  'import.row': 'Row', 'import.id': 'ID', 'import.outcome': 'Outcome', 'import.error': 'Error',
  'import.nofile': 'Pick a CSV file',
});

// parseCSV parses RFC 4180 CSV (quoted fields, "" escapes, CRLF).
export function parseCSV(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [], field = '', quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') { field += '"'; i++; } else if (c === '"') quoted = false; else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') { row.push(field); field = ''; }
    else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i++;
      row.push(field); field = '';
      if (row.some(f => f !== '')) rows.push(row);
      row = [];
    } else field += c;
  }
  row.push(field);
  if (row.some(f => f !== '')) rows.push(row);
  return rows;
}

interface RowResult { row: number; id: string; outcome: string; error?: string }
interface Report { rows: RowResult[]; created?: number; updated?: number; unchanged?: number; failed?: number }

const batch = 50;
// columns are the fields of an import row (other CSV columns are ignored).
const columns = ['id', 'name', 'township', 'village', 'lat', 'lon', 'main_url', 'sub_url', 'username', 'password', 'transport', 'segment_duration', 'enabled', 'motion'];

export function mount(root: HTMLElement, app: App): () => void {
  const file = h('input', { type: 'file', accept: '.csv,text/csv', id: 'import-file' });
  const dry = h('input', { type: 'checkbox', id: 'import-dry' });
  const bar = h('div');
  const progress = h('span', { class: 'muted', id: 'import-progress' });
  const summary = h('p', { id: 'import-summary' });
  const body = h('tbody');
  let cancelled = false;
  root.appendChild(h('section', { class: 'panel' }, h('h1', null, t('import.title')), h('p', { class: 'muted' }, t('import.help')),
    h('div', { class: 'toolbar' }, file, h('label', { class: 'inline' }, dry, t('import.dry')),
      h('button', { class: 'primary', id: 'import-run', onclick: () => run() }, t('import.run')), progress),
    h('div', { class: 'progress', id: 'import-bar' }, bar), summary,
    h('div', { class: 'scroll' }, h('table', { class: 'grid', id: 'import-report' },
      h('thead', null, h('tr', null, ['row', 'id', 'outcome', 'error'].map(c => h('th', null, t('import.' + c))))), body))));

  async function run(): Promise<void> {
    const f = file.files?.[0];
    if (!f) { summary.textContent = t('import.nofile'); return; }
    const rows = parseCSV(await f.text());
    const head = (rows.shift() ?? []).map(s => s.trim().toLowerCase());
    const objs = rows.map((r, i) => {
      const o: Record<string, string | number> = { row: i + 2 };
      head.forEach((k, j) => { if (columns.includes(k)) o[k] = (r[j] ?? '').trim(); });
      return o;
    });
    clear(body);
    const tot = { created: 0, updated: 0, unchanged: 0, failed: 0 };
    for (let i = 0; i < objs.length && !cancelled; i += batch) {
      try {
        const rep = await app.api.json<Report>('POST', '/api/v1/cameras/import' + (dry.checked ? '?dry_run=true' : ''), { rows: objs.slice(i, i + batch) });
        for (const r of rep.rows) {
          const k = r.outcome as keyof typeof tot;
          if (k in tot) tot[k]++;
          body.appendChild(h('tr', { 'data-outcome': r.outcome }, h('td', null, String(r.row)), h('td', null, r.id),
            h('td', { class: r.outcome === 'failed' ? 'bad' : 'okc' }, r.outcome), h('td', { class: 'muted' }, r.error ?? '')));
        }
      } catch (e) {
        summary.textContent = t('app.error', (e as Error).message);
        return;
      }
      const done = Math.min(objs.length, i + batch);
      bar.style.width = `${(100 * done) / objs.length}%`;
      progress.textContent = t('import.progress', done, objs.length);
    }
    summary.textContent = t('import.summary', tot.created, tot.updated, tot.unchanged, tot.failed);
  }
  return () => { cancelled = true; };
}
