// The replay page (#/replay): the camera tree, a grid of 1, 4 or 9 replay
// tiles on one master clock (replay/sync.ts), the wall-clock time, and a
// zoomable timeline of the tiles' cameras (timeline/). Click the timeline
// (or scrub it) to seek, pick a date and time to jump, play at 1–16×, step
// frames; Shift+drag on the timeline selects a range to export or to put
// under an evidence lock.
//
// #/replay?cams=cam1,cam2&t=2026-12-07T09:00:00Z&grid=4&gaps=show opens
// those cameras at that instant (paused); grid and gaps are optional. Shortcuts: see keys below (and docs/operations.md,
// "Web console").
import type { App } from '../app';
import { ApiError } from '../api';
import { h, clear } from '../dom';
import { t, extend } from '../i18n';
import { cameraTree } from '../tree';
import { Timeline, fmtWall, emptyData, type Interval, type TrackData } from '../timeline/timeline';
import { TimelineCache } from '../timeline/data';
import { ReplayTile } from '../replay/player';
import { SyncGroup, type Slot } from '../replay/sync';
import { createExport, createEvidence } from '../replay/api';
import '../replay/replay.css';

extend('zh-CN', {
  'replay.grid': '分屏',
  'replay.jump': '跳转',
  'replay.play': '播放',
  'replay.pause': '暂停',
  'replay.stepback': '上一帧',
  'replay.stepfwd': '下一帧',
  'replay.speed': '倍速',
  'replay.gaps': '录像缺口',
  'replay.gaps.skip': '跳过',
  'replay.gaps.show': '显示',
  'replay.zoom': '缩放',
  'replay.zoom.week': '周',
  'replay.zoom.day': '天',
  'replay.zoom.hour': '小时',
  'replay.zoom.min': '分钟',
  'replay.export': '导出所选时段',
  'replay.evidence': '证据锁定',
  'replay.nosel': '先在时间轴上按住 Shift 拖动选择时段',
  'replay.sel': '已选：{0} — {1}',
  'replay.drop': '从左侧选择摄像机',
  'replay.nofootage': '无录像',
  'replay.loading': '加载中…',
  'replay.failed': '无法播放：{0}',
  'replay.sync': '{0} 路同步',
  'replay.drift': '偏差 {0} ms',
  'replay.exported': '已创建 {0} 个导出任务',
  'replay.case': '案件编号',
  'replay.reason': '锁定原因',
  'replay.cameras': '摄像机',
  'replay.range': '时段',
  'replay.lock': '锁定',
  'replay.locked': '已创建证据锁 #{0}（{1} 个录像片段）',
  'replay.help': '回放快捷键',
  'replay.key.space': '播放/暂停',
  'replay.key.step': '暂停并逐帧后退/前进',
  'replay.key.jump': '后退/前进 10 秒',
  'replay.key.speed': '加速/减速（1–16 倍）',
  'replay.key.zoom': '放大/缩小时间轴',
  'replay.key.mark': '以播放位置为所选时段的起点/终点',
  'replay.key.centre': '时间轴回到播放位置',
  'replay.key.esc': '取消所选时段',
  'replay.key.mouse': '时间轴：滚轮缩放，拖动平移，单击定位，Shift+拖动选择时段',
  'replay.remove': '移除',
});
extend('en', {
  'replay.grid': 'Layout',
  'replay.jump': 'Go',
  'replay.play': 'Play',
  'replay.pause': 'Pause',
  'replay.stepback': 'Frame back',
  'replay.stepfwd': 'Frame forward',
  'replay.speed': 'Speed',
  'replay.gaps': 'Gaps',
  'replay.gaps.skip': 'skip',
  'replay.gaps.show': 'show',
  'replay.zoom': 'Zoom',
  'replay.zoom.week': 'week',
  'replay.zoom.day': 'day',
  'replay.zoom.hour': 'hour',
  'replay.zoom.min': 'minute',
  'replay.export': 'Export selection',
  'replay.evidence': 'Evidence lock',
  'replay.nosel': 'Select a range first: Shift+drag on the timeline',
  'replay.sel': 'Selected: {0} — {1}',
  'replay.drop': 'Pick a camera in the tree',
  'replay.nofootage': 'No footage',
  'replay.loading': 'Loading…',
  'replay.failed': 'Cannot play: {0}',
  'replay.sync': '{0}× SYNC',
  'replay.drift': 'drift {0} ms',
  'replay.exported': '{0} export job(s) created',
  'replay.case': 'Case number',
  'replay.reason': 'Reason',
  'replay.cameras': 'Cameras',
  'replay.range': 'Range',
  'replay.lock': 'Lock',
  'replay.locked': 'Evidence lock #{0} created ({1} segments)',
  'replay.help': 'Replay shortcuts',
  'replay.key.space': 'Play/pause',
  'replay.key.step': 'Pause and step one frame back/forward',
  'replay.key.jump': 'Jump 10 s back/forward',
  'replay.key.speed': 'Faster/slower (1–16×)',
  'replay.key.zoom': 'Zoom the timeline in/out',
  'replay.key.mark': 'Selection starts/ends at the playhead',
  'replay.key.centre': 'Centre the timeline on the playhead',
  'replay.key.esc': 'Clear the selection',
  'replay.key.mouse': 'Timeline: wheel zooms, drag pans, click seeks, Shift+drag selects',
  'replay.remove': 'Remove',
});

const speeds = [1, 2, 4, 8, 16];
const grids = [1, 4, 9];
const day = 86_400_000;

// The keyboard shortcuts (key, i18n key), shown by the page's help.
export const replayKeys: [string, string][] = [
  ['Space', 'replay.key.space'],
  ['← / →', 'replay.key.step'],
  ['Shift+← / →', 'replay.key.jump'],
  ['↑ / ↓', 'replay.key.speed'],
  ['+ / −', 'replay.key.zoom'],
  ['[ / ]', 'replay.key.mark'],
  ['C', 'replay.key.centre'],
  ['Esc', 'replay.key.esc'],
];

interface TileView { el: HTMLElement; label: HTMLElement; time: HTMLElement; slot: Slot }

function localInput(ms: number): string {
  const d = new Date(ms - new Date(ms).getTimezoneOffset() * 60_000);
  return d.toISOString().slice(0, 19);
}

export function mount(root: HTMLElement, app: App): () => void {
  const params = new URLSearchParams(location.hash.split('?')[1] ?? '');
  const cache = new TimelineCache(app.api);
  const group = new SyncGroup(c => cache.get(c));
  const start0 = params.get('t') ? Date.parse(params.get('t')!) : Date.now() - 10 * 60_000;
  const timeline = new Timeline(start0 - 30 * 60_000, start0 + 30 * 60_000);
  let grid = Number(params.get('grid')) || Number(localStorage.getItem('xl.replay.grid')) || 1;
  let focused = 0;
  const views: TileView[] = [];

  const tree = cameraTree(app, { onPick: c => addCamera(c.id), selected: () => views[focused]?.slot.camera ?? '' });
  const wall = h('div', { class: 'wall replay-wall', id: 'replay-wall' });
  const clock = h('div', { class: 'replay-clock', id: 'replay-clock' }, '—');
  const syncBadge = h('span', { class: 'badge sync', id: 'replay-sync' });
  const msg = h('span', { class: 'muted', id: 'replay-msg' });
  const selLabel = h('span', { class: 'muted', id: 'replay-sel' });
  const dateIn = h('input', { type: 'datetime-local', step: '1', id: 'replay-date', value: localInput(start0) });
  const playBtn = h('button', { id: 'replay-play', class: 'primary', onclick: () => togglePlay() }, t('replay.play'));
  const speedBtns = speeds.map(s => h('button', { 'data-speed': String(s), onclick: () => setSpeed(s) }, s + '×'));
  const gridBtns = grids.map(n => h('button', { 'data-grid': String(n), onclick: () => setGrid(n) }, String(n)));
  const gapSel = h('select', { id: 'replay-gaps', onchange: () => { group.gaps = gapSel.value as 'skip' | 'show'; } },
    h('option', { value: 'skip' }, t('replay.gaps.skip')), h('option', { value: 'show' }, t('replay.gaps.show')));
  const zoomBtn = (label: string, span: number) => h('button', { onclick: () => { const c = group.clock.now(); timeline.setView(c - span / 2, c + span / 2); } }, t(label));

  const toolbar = h('div', { class: 'toolbar' },
    h('span', { class: 'muted' }, t('replay.grid')), gridBtns,
    h('span', { class: 'sep' }),
    dateIn, h('button', { id: 'replay-go', onclick: () => jump() }, t('replay.jump')),
    h('span', { class: 'sep' }),
    h('button', { id: 'replay-stepback', title: t('replay.stepback') + ' (←)', onclick: () => group.step(-1) }, '◀❙'),
    playBtn,
    h('button', { id: 'replay-stepfwd', title: t('replay.stepfwd') + ' (→)', onclick: () => group.step(1) }, '❙▶'),
    h('span', { class: 'muted' }, t('replay.speed')), speedBtns,
    h('span', { class: 'sep' }),
    h('label', { class: 'muted inline' }, t('replay.gaps'), gapSel),
    h('span', { class: 'sep' }),
    h('span', { class: 'muted' }, t('replay.zoom')),
    zoomBtn('replay.zoom.week', 7 * day), zoomBtn('replay.zoom.day', day), zoomBtn('replay.zoom.hour', 3_600_000), zoomBtn('replay.zoom.min', 60_000),
    h('span', { class: 'sep' }),
    h('button', { id: 'replay-export', onclick: () => doExport() }, t('replay.export')),
    app.can('evidence.lock') && h('button', { id: 'replay-evidence', onclick: () => evidenceDialog() }, t('replay.evidence')),
    h('button', { class: 'link', onclick: () => toggleHelp() }, '?'));
  const head = h('div', { class: 'replay-head' }, clock, syncBadge, selLabel, msg);
  root.appendChild(h('div', { class: 'split replay' }, tree.el,
    h('section', { class: 'replaybox' }, toolbar, head, wall, timeline.el)));

  // --- tiles --------------------------------------------------------------

  function newView(i: number): TileView {
    const tile = new ReplayTile(app.api);
    const label = h('div', { class: 'tile-label' }, t('replay.drop'));
    const time = h('div', { class: 'tile-time' });
    const slot: Slot = { tile, camera: '', retryAt: 0 };
    const el = h('div', {
      class: 'tile empty', 'data-tile': String(i),
      onclick: () => { focused = views.indexOf(view); drawWall(); },
      ondragover: (e: DragEvent) => { e.preventDefault(); el.classList.add('over'); },
      ondragleave: () => el.classList.remove('over'),
      ondrop: (e: DragEvent) => {
        e.preventDefault();
        el.classList.remove('over');
        const id = e.dataTransfer?.getData('text/x-camera') || e.dataTransfer?.getData('text/plain');
        if (id) assign(view, id);
      },
    }, tile.video, label, time,
    h('button', { class: 'tile-x link', title: t('replay.remove'), onclick: (e: Event) => { e.stopPropagation(); assign(view, ''); } }, '×'));
    const view: TileView = { el, label, time, slot };
    tile.onState = s => {
      el.dataset.state = s;
      el.classList.toggle('nofootage', s === 'gap');
      drawLabel(view);
    };
    return view;
  }

  function cameraName(id: string): string {
    return tree.all().find(c => c.id === id)?.name || id;
  }

  function drawLabel(v: TileView): void {
    const s = v.slot, st = s.tile.state;
    if (!s.camera) { v.label.textContent = t('replay.drop'); return; }
    v.label.textContent = cameraName(s.camera) + (st === 'gap' ? ' · ' + t('replay.nofootage') : st === 'loading' ? ' · ' + t('replay.loading')
      : st === 'error' ? ' · ' + t('replay.failed', s.tile.detail) : '');
  }

  function assign(v: TileView, id: string): void {
    v.slot.tile.stop();
    v.slot.camera = id;
    v.el.dataset.camera = id;
    v.el.classList.toggle('empty', !id);
    drawLabel(v);
    syncSlots();
    if (id) {
      loadData(id).then(() => group.seek(group.clock.now()));
    }
  }

  function addCamera(id: string): void {
    const free = views.find(v => !v.slot.camera);
    if (free) assign(free, id);
    else assign(views[focused] ?? views[views.length - 1], id);
  }

  function setGrid(n: number): void {
    grid = n;
    localStorage.setItem('xl.replay.grid', String(n));
    while (views.length < n) views.push(newView(views.length));
    for (let i = n; i < views.length; i++) views[i].slot.tile.stop();
    views.length = n;
    if (focused >= n) focused = 0;
    gridBtns.forEach(b => b.classList.toggle('active', b.dataset.grid === String(n)));
    syncSlots();
    drawWall();
  }

  function drawWall(): void {
    const side = Math.sqrt(grid);
    wall.style.gridTemplateColumns = `repeat(${side}, 1fr)`;
    wall.style.gridTemplateRows = `repeat(${side}, 1fr)`;
    clear(wall, views.map((v, i) => { v.el.classList.toggle('focused', i === focused && grid > 1); return v.el; }));
    timeline.selected = grid > 1 ? group.slots.findIndex(s => s === views[focused]?.slot) : -1;
    timeline.invalidate();
  }

  // syncSlots gives the group the tiles with a camera and the timeline
  // one row per such tile.
  function syncSlots(): void {
    group.slots = views.map(v => v.slot).filter(s => s.camera);
    timeline.setTracks(group.slots.map(s => ({ id: s.camera, label: cameraName(s.camera), data: cache.get(s.camera) ?? emptyData() })));
    syncBadge.textContent = group.slots.length > 1 ? t('replay.sync', group.slots.length) : '';
    timeline.selected = grid > 1 ? group.slots.findIndex(s => s === views[focused]?.slot) : -1;
  }

  // --- timeline data --------------------------------------------------------

  async function loadData(camera: string): Promise<TrackData | undefined> {
    try {
      const d = await cache.ensure(camera, timeline.from, timeline.to);
      for (const tr of timeline.trackList) if (tr.id === camera) { tr.data = d; tr.label = cameraName(camera); }
      timeline.invalidate();
      return d;
    } catch (e) {
      msg.textContent = t('app.error', (e as Error).message);
      return undefined;
    }
  }

  // Footage near the live edge grows: refresh the tiles' timelines (the
  // cache fetches again only when its window reaches now and is 15 s old).
  const dataTimer = window.setInterval(() => { for (const s of group.slots) loadData(s.camera); }, 5000);

  let viewTimer = 0;
  timeline.onView = () => {
    clearTimeout(viewTimer);
    viewTimer = window.setTimeout(() => { for (const s of group.slots) loadData(s.camera); }, 150);
  };
  timeline.onSeek = ms => { group.seek(ms); };
  timeline.onSelect = sel => drawSelection(sel);

  function drawSelection(sel: Interval | null): void {
    selLabel.textContent = sel ? t('replay.sel', fmtWall(sel.start, false), fmtWall(sel.end, false)) : '';
    selLabel.dataset.from = sel ? new Date(sel.start).toISOString() : '';
    selLabel.dataset.to = sel ? new Date(sel.end).toISOString() : '';
  }

  function setSelection(sel: Interval | null): void {
    timeline.selection = sel;
    timeline.invalidate();
    drawSelection(sel);
  }

  // --- transport --------------------------------------------------------------

  function togglePlay(): void {
    if (group.clock.playing) group.pause(); else group.play();
    drawTransport();
  }

  function setSpeed(s: number): void {
    group.setRate(s);
    drawTransport();
  }

  function drawTransport(): void {
    playBtn.textContent = group.clock.playing ? t('replay.pause') : t('replay.play');
    playBtn.dataset.playing = String(group.clock.playing);
    speedBtns.forEach(b => b.classList.toggle('active', b.dataset.speed === String(group.clock.rate)));
  }

  function jump(): void {
    const ms = new Date(dateIn.value).getTime(); // local time, as typed
    if (isNaN(ms)) return;
    group.seek(ms);
    timeline.centre(ms);
  }

  // --- export / evidence -----------------------------------------------------

  function selection(): Interval | null {
    const s = timeline.selection;
    if (!s || s.end - s.start < 1000) { msg.textContent = t('replay.nosel'); return null; }
    return s;
  }

  async function doExport(): Promise<void> {
    const sel = selection();
    if (!sel) return;
    const cams = grid > 1 && views[focused]?.slot.camera ? [views[focused].slot.camera] : group.slots.map(s => s.camera);
    if (!cams.length) return;
    try {
      const ids: string[] = [];
      for (const c of cams) ids.push((await createExport(app.api, c, Math.round(sel.start), Math.round(sel.end))).id);
      // The jobs just created (the exports page may show them first).
      sessionStorage.setItem('xl.replay.exports', ids.join(','));
      msg.textContent = t('replay.exported', cams.length);
      app.navigate('exports');
    } catch (e) {
      msg.textContent = t('app.error', e instanceof ApiError ? e.message : String(e));
    }
  }

  let dialog: HTMLElement | null = null;
  function closeDialog(): void { dialog?.remove(); dialog = null; }

  function evidenceDialog(): void {
    const sel = selection();
    if (!sel || !group.slots.length) return;
    closeDialog();
    const caseIn = h('input', { id: 'evidence-case', required: true, maxlength: '64' });
    const reasonIn = h('textarea', { id: 'evidence-reason', rows: 3 });
    const err = h('p', { class: 'error', id: 'evidence-error' });
    const boxes = group.slots.map(s => h('input', { type: 'checkbox', checked: true, value: s.camera }));
    const form = h('form', {
      class: 'form evidence', id: 'evidence-form',
      onsubmit: async (e: Event) => {
        e.preventDefault();
        const cams = boxes.filter(b => b.checked).map(b => b.value);
        try {
          const l = await createEvidence(app.api, cams, Math.floor(sel.start), Math.ceil(sel.end), caseIn.value, reasonIn.value);
          closeDialog();
          msg.textContent = t('replay.locked', l.id, l.segments ?? 0);
          msg.dataset.lock = String(l.id);
        } catch (ex) {
          err.textContent = t('app.error', (ex as Error).message);
        }
      },
    },
    h('h2', null, t('replay.evidence')),
    h('p', { class: 'muted' }, t('replay.range'), ': ', fmtWall(sel.start), ' — ', fmtWall(sel.end)),
    h('div', { class: 'muted' }, t('replay.cameras')),
    boxes.map(b => h('label', { class: 'check' }, b, cameraName(b.value))),
    h('label', null, t('replay.case'), caseIn),
    h('label', null, t('replay.reason'), reasonIn),
    err,
    h('div', { class: 'toolbar' },
      h('button', { type: 'submit', class: 'primary', id: 'evidence-submit' }, t('replay.lock')),
      h('button', { type: 'button', onclick: closeDialog }, t('app.cancel'))));
    dialog = h('div', { class: 'overlay', onclick: (e: Event) => { if (e.target === dialog) closeDialog(); } }, h('div', { class: 'dialog' }, form));
    document.body.appendChild(dialog);
    caseIn.focus();
  }

  let help: HTMLElement | null = null;
  function toggleHelp(): void {
    if (help) { help.remove(); help = null; return; }
    help = h('div', { class: 'overlay', id: 'replay-help', onclick: () => toggleHelp() },
      h('div', { class: 'dialog' }, h('h2', null, t('replay.help')),
        h('table', null, replayKeys.map(([k, key]) => h('tr', null, h('td', null, h('kbd', null, k)), h('td', null, t(key))))),
        h('p', { class: 'muted' }, t('replay.key.mouse'))));
    document.body.appendChild(help);
  }

  // --- keys ------------------------------------------------------------------

  const onKey = (e: KeyboardEvent) => {
    const tag = (e.target as HTMLElement).tagName;
    if (tag === 'INPUT' || tag === 'SELECT' || tag === 'TEXTAREA' || dialog || e.altKey || e.ctrlKey || e.metaKey) return;
    const now = group.clock.now();
    switch (e.key) {
      case ' ': togglePlay(); break;
      case 'ArrowLeft': if (e.shiftKey) group.seek(now - 10_000); else group.step(-1); drawTransport(); break;
      case 'ArrowRight': if (e.shiftKey) group.seek(now + 10_000); else group.step(1); drawTransport(); break;
      case 'ArrowUp': setSpeed(speeds[Math.min(speeds.length - 1, speeds.indexOf(group.clock.rate) + 1)]); break;
      case 'ArrowDown': setSpeed(speeds[Math.max(0, speeds.indexOf(group.clock.rate) - 1)]); break;
      case '+': case '=': timeline.zoom(0.5); break;
      case '-': case '_': timeline.zoom(2); break;
      case 'c': case 'C': timeline.centre(now); break;
      case '[': setSelection({ start: now, end: Math.max(now + 1000, timeline.selection?.end ?? now + 60_000) }); break;
      case ']': setSelection({ start: Math.min(now - 1000, timeline.selection?.start ?? now - 60_000), end: now }); break;
      case 'Escape': if (help) toggleHelp(); else setSelection(null); break;
      default: return;
    }
    e.preventDefault();
  };
  document.addEventListener('keydown', onKey);

  // --- the clock display --------------------------------------------------------

  let raf = 0;
  const frame = () => {
    const now = group.clock.now();
    clock.textContent = fmtWall(now);
    clock.dataset.wall = String(Math.round(now));
    timeline.setCursor(now);
    // Keep the playhead in view while playing.
    if (group.clock.playing && (now > timeline.to || now < timeline.from)) timeline.centre(now);
    for (const v of views) {
      const w = v.slot.tile.wall();
      v.time.textContent = isNaN(w) ? '' : fmtWall(w);
      v.el.dataset.wall = isNaN(w) ? '' : String(w);
    }
    if (group.slots.length > 1) syncBadge.title = t('replay.drift', Math.round(group.maxDriftMs));
    raf = requestAnimationFrame(frame);
  };
  raf = requestAnimationFrame(frame);

  // Measurement hook (the browser test): draws a synthetic timeline of
  // cams cameras × days days `frames` times and returns the times in ms.
  (window as unknown as Record<string, unknown>).xlTimelineBench = (cams: number, days: number, frames: number) => benchTimeline(cams, days, frames);

  setGrid(grids.includes(grid) ? grid : 1);
  if (params.get('gaps') === 'show' || params.get('gaps') === 'skip') group.gaps = gapSel.value = params.get('gaps') as 'skip' | 'show';
  group.clock.set(start0);
  const initial = (params.get('cams') ?? '').split(',').filter(Boolean);
  initial.slice(0, 9).forEach((id, i) => { if (views[i]) assign(views[i], id); });
  drawTransport();

  return () => {
    document.removeEventListener('keydown', onKey);
    cancelAnimationFrame(raf);
    clearTimeout(viewTimer);
    clearInterval(dataTimer);
    closeDialog();
    if (help) toggleHelp();
    group.destroy();
    timeline.unbind();
    timeline.destroy();
    tree.destroy();
    delete (window as unknown as Record<string, unknown>).xlTimelineBench;
  };
}

// benchTimeline renders a timeline of synthetic data (spans with a gap
// every two hours, every minute with motion, a motion interval every
// 5 minutes, an event every 30 minutes) in a detached 1600-pixel-wide
// element, zooming in a little between frames, and returns each frame's
// draw time (ms, performance.now()).
export function benchTimeline(cams: number, days: number, frames: number): number[] {
  const end = Date.now(), start = end - days * day;
  const tracks = [];
  for (let c = 0; c < cams; c++) {
    const d = emptyData();
    for (let s = start; s < end; s += 2 * 3_600_000) {
      d.spans.push({ start: s, end: Math.min(end, s + 2 * 3_600_000 - 5000) });
      d.gaps.push({ start: s + 2 * 3_600_000 - 5000, end: s + 2 * 3_600_000 });
    }
    for (let m = start; m < end; m += 60_000) d.activity.push({ start: m, seconds: (m / 60_000 + c) % 61 });
    for (let m = start; m < end; m += 300_000) d.motion.push({ start: m, end: m + 20_000 });
    for (let m = start; m < end; m += 1_800_000) d.events.push({ start: m, end: m + 5000, topic: 'tns1:VideoSource/MotionAlarm' });
    tracks.push({ id: 'cam' + c, label: 'cam' + c, data: d });
  }
  const tl = new Timeline(start, end);
  tl.rowHeight = cams > 20 ? 8 : 30;
  tl.el.style.cssText = 'position:fixed;left:0;top:0;width:1600px;visibility:hidden';
  document.body.appendChild(tl.el);
  tl.setTracks(tracks);
  const out: number[] = [];
  try {
    for (let i = 0; i < frames; i++) {
      const t0 = performance.now();
      tl.draw();
      out.push(performance.now() - t0);
      tl.zoom(0.98);
    }
  } finally {
    tl.unbind();
    tl.destroy();
    tl.el.remove();
  }
  return out;
}
