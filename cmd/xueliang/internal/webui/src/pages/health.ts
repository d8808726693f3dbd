// The health page (#/health): every camera's state, bitrate, frames,
// reconnects and last error, from GET /api/v1/camera-status (not
// Prometheus), refreshed every 5 s.
import type { App } from '../app';
import { cameraStatus } from '../api';
import { h, clear } from '../dom';
import { t, extend } from '../i18n';
import { stateBadges } from '../tree';

extend('zh-CN', {
  'health.title': '摄像机运行状态',
  'health.camera': '摄像机', 'health.township': '乡镇', 'health.state': '状态', 'health.bitrate': '码率',
  'health.frames': '已录帧', 'health.reconnects': '重连', 'health.keyframe': '最近关键帧', 'health.error': '最近错误',
  'health.summary': '共 {0} 台：录像 {1}，离线 {2}，无录像 {3}',
});
extend('en', {
  'health.title': 'Camera health',
  'health.camera': 'Camera', 'health.township': 'Township', 'health.state': 'State', 'health.bitrate': 'Bitrate',
  'health.frames': 'Frames', 'health.reconnects': 'Reconnects', 'health.keyframe': 'Last keyframe', 'health.error': 'Last error',
  'health.summary': '{0} cameras: {1} recording, {2} offline, {3} no footage',
});

export function fmtBitrate(bps: number): string {
  return bps >= 1e6 ? (bps / 1e6).toFixed(2) + ' Mbit/s' : Math.round(bps / 1e3) + ' kbit/s';
}

export function mount(root: HTMLElement, app: App): () => void {
  const summary = h('p', { class: 'muted', id: 'health-summary' });
  const body = h('tbody');
  const cols = ['camera', 'township', 'state', 'bitrate', 'frames', 'reconnects', 'keyframe', 'error'];
  root.appendChild(h('section', { class: 'panel' }, h('h1', null, t('health.title')), summary,
    h('div', { class: 'scroll' }, h('table', { class: 'grid', id: 'health-table' }, h('thead', null, h('tr', null, cols.map(c => h('th', null, t('health.' + c))))), body))));
  let timer = 0, gone = false;
  async function refresh(): Promise<void> {
    try {
      const cams = await cameraStatus(app.api);
      const n = (s: string) => cams.filter(c => c.state === s).length;
      summary.textContent = t('health.summary', cams.length, n('recording'), n('offline'), n('no_footage'));
      clear(body, cams.map(c => h('tr', { 'data-camera': c.id },
        h('td', null, c.name || c.id, h('div', { class: 'muted' }, c.id)),
        h('td', null, c.township + (c.village ? ' / ' + c.village : '')),
        h('td', null, stateBadges(c)),
        h('td', null, c.online ? fmtBitrate(c.bitrate_bps) : '—'),
        h('td', null, String(c.frames)),
        h('td', null, String(c.reconnects)),
        h('td', null, c.last_keyframe ? new Date(c.last_keyframe).toLocaleTimeString() : '—'),
        h('td', { class: c.last_error ? 'bad' : '' }, c.last_error ? `${c.last_error_class ?? ''} ${c.last_error}` : '—'))));
    } catch (e) {
      summary.textContent = t('app.error', (e as Error).message);
    }
    if (!gone) timer = window.setTimeout(refresh, 5000);
  }
  refresh();
  return () => { gone = true; clearTimeout(timer); };
}
