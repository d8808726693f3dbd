// The camera tree: township → village → camera, with each camera's state
// (GET /api/v1/camera-status, refreshed every 5 s) and a search by name or
// GB/T 28181 ID. Cameras can be dragged (dataTransfer "text/x-camera").
import type { App } from './app';
import { cameraStatus, type CameraStatus } from './api';
import { h, clear } from './dom';
import { t, extend } from './i18n';

extend('zh-CN', {
  'tree.search': '搜索名称或国标编码',
  'tree.state.recording': '录像中',
  'tree.state.offline': '离线',
  'tree.state.no_footage': '无录像',
  'tree.state.disabled': '已停用',
  'tree.motion': '移动',
  'tree.none': '没有摄像机',
  'tree.novillage': '（未分村）',
  'tree.count': '{0} 台，{1} 在线',
});
extend('en', {
  'tree.search': 'Search name or GB/T 28181 ID',
  'tree.state.recording': 'recording',
  'tree.state.offline': 'offline',
  'tree.state.no_footage': 'no footage',
  'tree.state.disabled': 'disabled',
  'tree.motion': 'motion',
  'tree.none': 'No cameras',
  'tree.novillage': '(no village)',
  'tree.count': '{0} cameras, {1} online',
});

export interface Tree {
  el: HTMLElement;
  // cameras are the cameras shown (after the search), in tree order.
  cameras(): CameraStatus[];
  all(): CameraStatus[];
  destroy(): void;
}

export function stateBadges(c: CameraStatus): HTMLElement[] {
  const out = [h('span', { class: 'badge ' + c.state.replace('_', ''), 'data-state': c.state }, t('tree.state.' + c.state))];
  if (c.motion_now) out.push(h('span', { class: 'badge motion', 'data-motion': '1' }, t('tree.motion')));
  return out;
}

export function cameraTree(app: App, opts: { onPick?: (c: CameraStatus) => void; selected?: () => string } = {}): Tree {
  let all: CameraStatus[] = [];
  let shown: CameraStatus[] = [];
  const collapsed = new Set<string>();
  const search = h('input', { type: 'search', id: 'tree-search', placeholder: t('tree.search'), oninput: () => draw() });
  const list = h('div', { class: 'tree-list', id: 'camera-tree' });
  const count = h('div', { class: 'muted tree-count' });
  const el = h('aside', { class: 'tree panel' }, search, count, list);

  function draw(): void {
    const q = search.value.trim().toLowerCase();
    shown = all.filter(c => !q || c.name.toLowerCase().includes(q) || c.id.toLowerCase().includes(q));
    count.textContent = t('tree.count', all.length, all.filter(c => c.online).length);
    const towns = new Map<string, Map<string, CameraStatus[]>>();
    for (const c of shown) {
      const v = towns.get(c.township) ?? new Map<string, CameraStatus[]>();
      towns.set(c.township, v);
      const k = c.village || t('tree.novillage');
      v.set(k, [...(v.get(k) ?? []), c]);
    }
    const sel = opts.selected?.() ?? '';
    const ordered: CameraStatus[] = [];
    const node = (key: string, label: string, n: number, kids: () => HTMLElement[]) => {
      const open = !collapsed.has(key) || q !== '';
      return h('div', { class: 'tree-node' },
        h('div', { class: 'tree-head', onclick: () => { if (collapsed.has(key)) collapsed.delete(key); else collapsed.add(key); draw(); } },
          h('span', { class: 'caret' }, open ? '▾' : '▸'), ' ', label, h('span', { class: 'muted' }, ` (${n})`)),
        open && h('div', { class: 'tree-kids' }, kids()));
    };
    const sorted = <T,>(m: Map<string, T>) => [...m.entries()].sort((a, b) => a[0].localeCompare(b[0], 'zh-CN'));
    clear(list, shown.length === 0 ? h('p', { class: 'muted' }, t('tree.none')) : sorted(towns).map(([town, villages]) =>
      h('div', { class: 'township', 'data-township': town }, node('t:' + town, town, [...villages.values()].flat().length, () =>
        sorted(villages).map(([village, cams]) => node('v:' + town + '/' + village, village, cams.length, () =>
          cams.sort((a, b) => a.name.localeCompare(b.name, 'zh-CN') || a.id.localeCompare(b.id)).map(c => {
            ordered.push(c);
            return h('div', {
              class: 'cam' + (c.id === sel ? ' selected' : ''), draggable: 'true', 'data-camera': c.id, title: c.id,
              ondragstart: (e: DragEvent) => { e.dataTransfer?.setData('text/x-camera', c.id); e.dataTransfer?.setData('text/plain', c.id); },
              onclick: () => opts.onPick?.(c),
            }, h('span', { class: 'cam-name' }, c.name || c.id), h('span', { class: 'badges' }, stateBadges(c)));
          })))))));
    shown = ordered.length ? ordered : shown;
  }

  let timer = 0;
  let gone = false;
  async function refresh(): Promise<void> {
    try {
      all = await cameraStatus(app.api);
      draw();
    } catch (e) {
      clear(list, h('p', { class: 'error' }, t('app.error', (e as Error).message)));
    }
    if (!gone) timer = window.setTimeout(refresh, 5000);
  }
  clear(list, h('p', { class: 'muted' }, t('app.loading')));
  refresh();
  return {
    el,
    cameras: () => shown,
    all: () => all,
    destroy() { gone = true; clearTimeout(timer); },
  };
}
