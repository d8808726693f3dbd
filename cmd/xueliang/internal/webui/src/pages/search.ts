// The motion search page (#/search[?camera=ID]): pick a camera in the
// tree, draw a region on its live snapshot (click to add corners, drag a
// corner to move it, double-click a corner to remove it), pick a time
// range, and search (POST /api/v1/cameras/{id}/motion/search with the grid
// cells the polygon covers, the same 32×18 cells the server's
// motion.MaskFromPolygon would pick). Hits are drawn on a strip over the
// range and listed (time, duration, score); a click plays the hit's window
// in the page (replay.mp4 fetched with the session token into a blob URL:
// a <video> cannot send the bearer header).
import type { App } from '../app';
import { ApiError, type CameraStatus } from '../api';
import { h, clear } from '../dom';
import { t, extend } from '../i18n';
import { cameraTree } from '../tree';
import { rangePicker, fmtTime, isTyping } from '../range';
import '../archive.css';

extend('zh-CN', {
  'search.pick': '在左侧选择摄像机，在画面上点击画出检索区域。',
  'search.run': '检索',
  'search.running': '检索中…',
  'search.clear': '清除区域',
  'search.undo': '撤销一点',
  'search.region.all': '未画区域：检索整个画面',
  'search.region.cells': '区域：{0} 个点，{1} 个网格单元（32×18）',
  'search.nosnap': '无法获取实时画面：{0}',
  'search.hits': '{0} 次移动（检查 {1} 秒，命中 {2} 秒）',
  'search.truncated': '结果过多，只显示最新的 {0} 条',
  'search.none': '该区域在此时间段内没有移动。',
  'search.col.time': '时间',
  'search.col.duration': '时长',
  'search.col.score': '强度',
  'search.col.seconds': '移动秒数',
  'search.play': '播放 {0} – {1}',
  'search.loading': '加载录像…',
  'help.key.search.run': '检索：Enter 开始检索',
  'help.key.search.edit': '检索：C 清除区域，Z 撤销一点',
  'help.key.search.hits': '检索：J/K 下一条/上一条结果并播放，空格 暂停/继续',
});
extend('en', {
  'search.pick': 'Pick a camera in the tree and click on its picture to draw the region.',
  'search.run': 'Search',
  'search.running': 'Searching…',
  'search.clear': 'Clear region',
  'search.undo': 'Undo point',
  'search.region.all': 'No region drawn: the whole picture is searched',
  'search.region.cells': 'Region: {0} points, {1} grid cells (32×18)',
  'search.nosnap': 'No live picture: {0}',
  'search.hits': '{0} hits ({1} s examined, {2} s matched)',
  'search.truncated': 'Too many hits: the newest {0} are shown',
  'search.none': 'No motion in this region in this range.',
  'search.col.time': 'Time',
  'search.col.duration': 'Duration',
  'search.col.score': 'Score',
  'search.col.seconds': 'Seconds in motion',
  'search.play': 'Playing {0} – {1}',
  'search.loading': 'Loading footage…',
  'help.key.search.run': 'Search: Enter runs the search',
  'help.key.search.edit': 'Search: C clears the region, Z removes the last point',
  'help.key.search.hits': 'Search: J/K next/previous hit (plays it), Space pause/resume',
});

// The server's summary grid (motion.SummaryCols × SummaryRows).
export const gridCols = 32, gridRows = 18;

type Pt = [number, number];

function inPolygon(pts: Pt[], x: number, y: number): boolean {
  let inside = false;
  for (let i = 0, j = pts.length - 1; i < pts.length; j = i++) {
    const [xi, yi] = pts[i], [xj, yj] = pts[j];
    if ((yi > y) !== (yj > y) && x < (xj - xi) * (y - yi) / (yj - yi) + xi) inside = !inside;
  }
  return inside;
}

// polygonCells returns the cells (row-major indices of a cols×rows grid)
// the polygon covers: a cell is in when any of its 4×4 sample points is
// (ingest/motion MaskFromPolygon, the same rule).
export function polygonCells(pts: Pt[], cols = gridCols, rows = gridRows): number[] {
  const out: number[] = [];
  if (pts.length < 3) return out;
  const s = 4;
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      sample: for (let sy = 0; sy < s; sy++) {
        for (let sx = 0; sx < s; sx++) {
          if (inPolygon(pts, (c + (sx + 0.5) / s) / cols, (r + (sy + 0.5) / s) / rows)) { out.push(r * cols + c); break sample; }
        }
      }
    }
  }
  if (out.length === 0) { // smaller than the sampling pitch
    for (const [x, y] of pts) {
      const i = Math.min(Math.floor(y * rows), rows - 1) * cols + Math.min(Math.floor(x * cols), cols - 1);
      if (!out.includes(i)) out.push(i);
    }
  }
  return out;
}

interface Hit {
  start: string;
  end: string;
  peak: number;
  seconds: number;
  bounds: [number, number, number, number];
}

interface SearchResult {
  intervals: Hit[];
  truncated: boolean;
  seconds_examined: number;
  seconds_matched: number;
}

const svgNS = 'http://www.w3.org/2000/svg';
function svg<K extends keyof SVGElementTagNameMap>(tag: K, attrs: Record<string, string | number>): SVGElementTagNameMap[K] {
  const el = document.createElementNS(svgNS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  return el;
}

function place(el: HTMLElement, left: string, top?: string): HTMLElement {
  el.style.left = left;
  if (top !== undefined) el.style.top = top;
  return el;
}

const fmtDur = (ms: number) => {
  const s = Math.round(ms / 1000);
  return s < 60 ? `${s} s` : `${Math.floor(s / 60)} min ${s % 60} s`;
};

export function mount(root: HTMLElement, app: App): () => void {
  const params = new URLSearchParams(location.hash.split('?')[1] ?? '');
  let camera: CameraStatus | null = null;
  let points: Pt[] = [];
  let hits: Hit[] = [];
  let current = -1;
  let searched: [Date, Date] | null = null;
  let snapURL = '';
  let videoURL = '';
  let gone = false;
  let playSeq = 0;

  const tree = cameraTree(app, { onPick: c => pick(c), selected: () => camera?.id ?? '' });
  const range = rangePicker('search', 3600e3);
  const title = h('h1', { id: 'search-camera' }, t('nav.search'));
  const runBtn = h('button', { class: 'primary', id: 'search-run', disabled: true, onclick: () => run() }, t('search.run'));
  const clearBtn = h('button', { id: 'search-clear', onclick: () => { points = []; drawRegion(); } }, t('search.clear'));
  const undoBtn = h('button', { id: 'search-undo', onclick: () => { points.pop(); drawRegion(); } }, t('search.undo'));
  const regionInfo = h('span', { class: 'muted', id: 'search-region-info' });
  const img = h('img', { id: 'search-snapshot', alt: '', draggable: false });
  const overlay = svg('svg', { id: 'search-region', viewBox: '0 0 1 1', preserveAspectRatio: 'none' });
  const handles = h('div', { class: 'handles' });
  const stage = h('div', { class: 'search-stage', id: 'search-stage' }, img, overlay, handles);
  const snapMsg = h('p', { class: 'muted', id: 'search-msg' }, t('search.pick'));
  const status = h('p', { class: 'muted', id: 'search-status' });
  const strip = h('div', { class: 'hits-strip', id: 'search-strip' });
  const stripLabels = h('div', { class: 'hits-strip-labels muted' });
  const list = h('tbody', { id: 'search-hits' });
  const video = h('video', { id: 'search-video', controls: true, muted: true, playsInline: true });
  const playing = h('p', { class: 'muted', id: 'search-playing' });

  root.appendChild(h('div', { class: 'split' }, tree.el,
    h('section', { class: 'panel search' },
      title,
      h('div', { class: 'toolbar' }, range.el, runBtn),
      h('div', { class: 'search-body' },
        h('div', { class: 'search-left' },
          h('div', { class: 'toolbar' }, clearBtn, undoBtn, regionInfo),
          stage, snapMsg),
        h('div', { class: 'search-right' }, video, playing)),
      status,
      h('div', { class: 'hits-wrap' }, strip, stripLabels),
      h('div', { class: 'scroll hits-list' },
        h('table', { class: 'grid' },
          h('thead', null, h('tr', null, h('th', null, '#'), h('th', null, t('search.col.time')), h('th', null, t('search.col.duration')),
            h('th', null, t('search.col.score')), h('th', null, t('search.col.seconds')))),
          list)))));

  // Region editing: positions are normalised to the picture.
  const pos = (e: PointerEvent): Pt => {
    const r = stage.getBoundingClientRect();
    return [Math.min(1, Math.max(0, (e.clientX - r.left) / r.width)), Math.min(1, Math.max(0, (e.clientY - r.top) / r.height))];
  };
  let drag = -1;
  stage.addEventListener('pointerdown', (e: PointerEvent) => {
    if (!camera || e.button !== 0) return;
    e.preventDefault();
    const hi = (e.target as HTMLElement).dataset?.point;
    if (hi !== undefined) drag = Number(hi);
    else { points.push(pos(e)); drag = points.length - 1; drawRegion(); }
    stage.setPointerCapture(e.pointerId);
  });
  stage.addEventListener('pointermove', (e: PointerEvent) => {
    if (drag < 0) return;
    points[drag] = pos(e);
    drawRegion();
  });
  const endDrag = () => { drag = -1; };
  stage.addEventListener('pointerup', endDrag);
  stage.addEventListener('pointercancel', endDrag);
  stage.addEventListener('dblclick', (e: MouseEvent) => {
    const hi = (e.target as HTMLElement).dataset?.point;
    if (hi !== undefined) { points.splice(Number(hi), 1); drawRegion(); }
  });

  function drawRegion(): void {
    const cells = polygonCells(points);
    overlay.replaceChildren();
    for (const i of cells) {
      overlay.appendChild(svg('rect', { class: 'cell', x: (i % gridCols) / gridCols, y: Math.floor(i / gridCols) / gridRows, width: 1 / gridCols, height: 1 / gridRows }));
    }
    if (points.length) {
      overlay.appendChild(svg(points.length >= 3 ? 'polygon' : 'polyline', { class: 'poly', points: points.map(p => p.join(',')).join(' '), 'vector-effect': 'non-scaling-stroke' }));
    }
    const hit = hits[current];
    if (hit) {
      const [x0, y0, x1, y1] = hit.bounds;
      overlay.appendChild(svg('rect', { class: 'hitbox', x: x0, y: y0, width: Math.max(0, x1 - x0), height: Math.max(0, y1 - y0), 'vector-effect': 'non-scaling-stroke' }));
    }
    // Positions through CSSOM: the CSP forbids inline style attributes.
    clear(handles, points.map((p, i) => place(h('div', { class: 'handle', 'data-point': String(i) }), p[0] * 100 + '%', p[1] * 100 + '%')));
    overlay.dataset.cells = cells.join(',');
    regionInfo.textContent = points.length >= 3 ? t('search.region.cells', points.length, cells.length) : t('search.region.all');
  }

  async function pick(c: CameraStatus): Promise<void> {
    if (camera?.id === c.id) return;
    camera = c;
    title.textContent = `${t('nav.search')} · ${c.name || c.id}`;
    title.dataset.camera = c.id;
    runBtn.disabled = false;
    points = [];
    hits = [];
    current = -1;
    drawHits();
    drawRegion();
    snapMsg.textContent = t('app.loading');
    stage.classList.add('on');
    img.removeAttribute('src');
    snapshot(c.id, 0);
  }

  // snapshot loads the camera's live picture; while its stream is not up
  // (503) it tries again every 2 s, up to a minute.
  async function snapshot(id: string, attempt: number): Promise<void> {
    try {
      const u = await app.api.blobURL(`/api/v1/cameras/${encodeURIComponent(id)}/snapshot.jpg`);
      if (gone || camera?.id !== id) { URL.revokeObjectURL(u); return; }
      if (snapURL) URL.revokeObjectURL(snapURL);
      snapURL = u;
      img.src = u;
      snapMsg.textContent = '';
    } catch (e) {
      if (gone || camera?.id !== id) return;
      // No picture (camera offline): the region can still be drawn on the grid.
      snapMsg.textContent = t('search.nosnap', (e as Error).message);
      if (e instanceof ApiError && e.status === 503 && attempt < 30) window.setTimeout(() => snapshot(id, attempt + 1), 2000);
    }
  }

  async function run(): Promise<void> {
    const cam = camera;
    const rg = range.range();
    if (!cam || !rg) return;
    runBtn.disabled = true;
    runBtn.textContent = t('search.running');
    status.className = 'muted';
    status.textContent = t('search.running');
    const body: Record<string, unknown> = { from: rg[0].toISOString(), to: rg[1].toISOString() };
    if (points.length >= 3) body.region = { cells: { cols: gridCols, rows: gridRows, set: polygonCells(points) } };
    try {
      const r = await app.api.json<SearchResult>('POST', `/api/v1/cameras/${encodeURIComponent(cam.id)}/motion/search`, body);
      if (gone || camera !== cam) return;
      searched = rg;
      hits = r.intervals ?? [];
      current = -1;
      status.textContent = (hits.length ? t('search.hits', hits.length, r.seconds_examined, r.seconds_matched) : t('search.none')) +
        (r.truncated ? ' · ' + t('search.truncated', hits.length) : '');
      drawHits();
      drawRegion();
      status.dataset.hits = String(hits.length);
    } catch (e) {
      status.className = 'error';
      status.textContent = t('app.error', (e as Error).message);
    } finally {
      runBtn.disabled = false;
      runBtn.textContent = t('search.run');
    }
  }

  function drawHits(): void {
    strip.replaceChildren();
    stripLabels.replaceChildren();
    clear(list);
    delete status.dataset.hits;
    if (!searched) return;
    const [a, b] = searched;
    const span = b.getTime() - a.getTime();
    hits.forEach((hit, i) => {
      const s = new Date(hit.start), e = new Date(hit.end);
      const l = Math.max(0, (s.getTime() - a.getTime()) / span), w = Math.min(1 - l, (e.getTime() - s.getTime()) / span);
      const bar = h('div', {
        class: 'hit' + (i === current ? ' current' : ''), 'data-hit': String(i), title: `${fmtTime(s)} (${fmtDur(e.getTime() - s.getTime())})`,
        onclick: () => play(i),
      });
      bar.style.width = `max(3px, ${w * 100}%)`;
      strip.appendChild(place(bar, l * 100 + '%'));
      list.appendChild(h('tr', { class: 'hitrow' + (i === current ? ' current' : ''), 'data-hit': String(i), 'data-start': hit.start, 'data-end': hit.end, onclick: () => play(i) },
        h('td', null, i + 1),
        h('td', null, fmtTime(s)),
        h('td', null, fmtDur(e.getTime() - s.getTime())),
        h('td', null, `${Math.round(hit.peak * 1000) / 10}%`),
        h('td', null, hit.seconds)));
    });
    stripLabels.append(h('span', null, fmtTime(a)), h('span', null, fmtTime(b)));
  }

  // play fetches the hit's window (its padded interval, at most 10 min)
  // and plays it.
  async function play(i: number): Promise<void> {
    const hit = hits[i], cam = camera;
    if (!hit || !cam) return;
    current = i;
    drawHits();
    drawRegion();
    const s = new Date(hit.start), e = new Date(Math.min(new Date(hit.end).getTime(), new Date(hit.start).getTime() + 600e3));
    const seq = ++playSeq;
    playing.className = 'muted';
    playing.textContent = t('search.loading');
    try {
      const q = new URLSearchParams({ start: s.toISOString(), end: e.toISOString(), gaps: 'skip' });
      const u = await app.api.blobURL(`/api/v1/cameras/${encodeURIComponent(cam.id)}/replay.mp4?${q}`);
      if (gone || seq !== playSeq) { URL.revokeObjectURL(u); return; }
      if (videoURL) URL.revokeObjectURL(videoURL);
      videoURL = u;
      video.src = u;
      video.dataset.hit = String(i);
      video.dataset.start = hit.start;
      playing.textContent = t('search.play', fmtTime(s), fmtTime(e));
      await video.play().catch(() => {});
    } catch (err) {
      if (seq !== playSeq) return;
      playing.className = 'error';
      playing.textContent = t('app.error', (err as Error).message);
    }
  }

  function onKey(e: KeyboardEvent): void {
    if (isTyping(e) || e.altKey || e.ctrlKey || e.metaKey || document.getElementById('help')) return;
    switch (e.key) {
      case 'Enter': if (camera) { run(); e.preventDefault(); } break;
      case 'c': case 'C': points = []; drawRegion(); break;
      case 'z': case 'Z': points.pop(); drawRegion(); break;
      case 'j': case 'J': if (hits.length) play(Math.min(hits.length - 1, current + 1)); break;
      case 'k': case 'K': if (hits.length) play(Math.max(0, current - 1)); break;
      case ' ':
        if (video.src) { if (video.paused) video.play().catch(() => {}); else video.pause(); e.preventDefault(); }
        break;
    }
  }
  document.addEventListener('keydown', onKey);
  drawRegion();

  const want = params.get('camera');
  if (want) {
    // Deep link (#/search?camera=ID): pick it once the tree knows it.
    const wait = window.setInterval(() => {
      const c = tree.all().find(x => x.id === want);
      if (c || gone) { clearInterval(wait); if (c && !gone) pick(c); }
    }, 200);
  }

  return () => {
    gone = true;
    document.removeEventListener('keydown', onKey);
    tree.destroy();
    video.pause();
    video.removeAttribute('src');
    if (snapURL) URL.revokeObjectURL(snapURL);
    if (videoURL) URL.revokeObjectURL(videoURL);
  };
}
