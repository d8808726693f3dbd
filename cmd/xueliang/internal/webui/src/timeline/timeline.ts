// A continuous, zoomable timeline on a <canvas>: one row per camera with
// its recorded spans, gaps, lost footage, motion intensity (seconds with
// motion per minute, the server's motion_activity) and camera events,
// under a ruler of wall-clock time (the browser's time zone). The view
// spans from MaxSpan (a month) down to MinSpan (seconds).
//
// Mouse: wheel zooms around the pointer, drag pans, a click seeks,
// Shift+drag selects a range (onSelect). Keys are the page's (it calls
// zoom/pan/setCursor). Drawing is coalesced into one requestAnimationFrame;
// draw() renders synchronously and returns nothing, for measurements.
//
// Every time is milliseconds since the Unix epoch. Data arrays are sorted by
// start (the server sends them oldest first); each row draws only what is
// in view (binary search) and aggregates to one value per pixel column, so
// a month of minute activity or a hundred rows stay cheap.

export interface Interval { start: number; end: number }
export interface Activity { start: number; seconds: number } // one minute
export interface CamEvent { start: number; end: number; topic: string }

export interface TrackData {
  spans: Interval[];
  gaps: Interval[];
  lost: Interval[];
  motion: Interval[];
  activity: Activity[];
  events: CamEvent[];
}

export interface Track { id: string; label: string; data: TrackData }

export const MinSpan = 10_000; // 10 s across the whole view
export const MaxSpan = 35 * 86_400_000;

const ruler = 26;
const labelW = 132;
const minute = 60_000;

const steps = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800, 604800].map(s => s * 1000);

export function emptyData(): TrackData {
  return { spans: [], gaps: [], lost: [], motion: [], activity: [], events: [] };
}

// first returns the index of the first item whose end (or start + minute
// for activity) is after t.
function first<T>(a: T[], t: number, end: (x: T) => number): number {
  let lo = 0, hi = a.length;
  while (lo < hi) {
    const m = (lo + hi) >> 1;
    if (end(a[m]) <= t) lo = m + 1; else hi = m;
  }
  return lo;
}

const pad = (n: number, w = 2) => String(n).padStart(w, '0');

// fmtWall formats a wall-clock time in the browser's zone, with
// milliseconds: 2026-12-07 09:25:55.120.
export function fmtWall(ms: number, withMs = true): string {
  const d = new Date(ms);
  const s = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  return withMs ? s + '.' + pad(d.getMilliseconds(), 3) : s;
}

export class Timeline {
  readonly el: HTMLElement;
  readonly canvas: HTMLCanvasElement;
  private ctx: CanvasRenderingContext2D;
  private tracks: Track[] = [];
  from: number;
  to: number;
  cursor: number | null = null;
  selection: Interval | null = null;
  // selected is the row highlighted (the focused camera), or -1.
  selected = -1;
  // rowHeight is the height of one camera row (CSS pixels).
  rowHeight = 30;
  private hover: number | null = null;
  private raf = 0;
  private width = 0;
  private height = 0;
  private ro: ResizeObserver;

  onSeek: (ms: number, row: number) => void = () => {};
  onView: (from: number, to: number) => void = () => {};
  onSelect: (sel: Interval | null) => void = () => {};

  constructor(from: number, to: number) {
    this.from = from;
    this.to = to;
    this.canvas = document.createElement('canvas');
    this.canvas.className = 'timeline-canvas';
    this.canvas.tabIndex = 0;
    this.el = document.createElement('div');
    this.el.className = 'timeline';
    this.el.appendChild(this.canvas);
    this.ctx = this.canvas.getContext('2d')!;
    this.ro = new ResizeObserver(() => this.invalidate());
    this.ro.observe(this.el);
    this.bindMouse();
  }

  destroy(): void {
    this.ro.disconnect();
    cancelAnimationFrame(this.raf);
  }

  setTracks(tracks: Track[]): void {
    this.tracks = tracks;
    this.invalidate();
  }

  get trackList(): Track[] { return this.tracks; }

  setData(id: string, data: TrackData): void {
    const t = this.tracks.find(x => x.id === id);
    if (t) { t.data = data; this.invalidate(); }
  }

  setCursor(ms: number | null): void {
    if (ms === this.cursor) return;
    this.cursor = ms;
    this.invalidate();
  }

  // setView shows [from, to), clamped to MinSpan..MaxSpan.
  setView(from: number, to: number): void {
    let span = Math.min(MaxSpan, Math.max(MinSpan, to - from));
    const mid = (from + to) / 2;
    if (to - from !== span) { from = mid - span / 2; to = mid + span / 2; }
    span = to - from;
    if (from === this.from && to === this.to) return;
    this.from = from;
    this.to = to;
    this.invalidate();
    this.onView(from, to);
  }

  // zoom scales the view by factor (< 1 zooms in) around at (default the
  // cursor if in view, else the middle).
  zoom(factor: number, at?: number): void {
    const c = at ?? (this.cursor !== null && this.cursor >= this.from && this.cursor <= this.to ? this.cursor : (this.from + this.to) / 2);
    const span = Math.min(MaxSpan, Math.max(MinSpan, (this.to - this.from) * factor));
    const f = (c - this.from) / (this.to - this.from);
    this.setView(c - f * span, c - f * span + span);
  }

  // pan moves the view by fraction of its width.
  pan(fraction: number): void {
    const d = (this.to - this.from) * fraction;
    this.setView(this.from + d, this.to + d);
  }

  // centre puts ms in the middle of the view, keeping its span.
  centre(ms: number): void {
    const span = this.to - this.from;
    this.setView(ms - span / 2, ms + span / 2);
  }

  // timeAt is the time under x (CSS pixels from the canvas's left edge).
  timeAt(x: number): number {
    const w = Math.max(1, this.width - labelW);
    return this.from + ((x - labelW) / w) * (this.to - this.from);
  }

  xOf(ms: number): number {
    const w = Math.max(1, this.width - labelW);
    return labelW + ((ms - this.from) / (this.to - this.from)) * w;
  }

  rowAt(y: number): number {
    return Math.floor((y - ruler) / this.rowHeight);
  }

  invalidate(): void {
    if (this.raf) return;
    this.raf = requestAnimationFrame(() => { this.raf = 0; this.draw(); });
  }

  private bindMouse(): void {
    const c = this.canvas;
    let down: { x: number; y: number; from: number; to: number; sel: boolean; moved: boolean } | null = null;
    const local = (e: MouseEvent) => { const r = c.getBoundingClientRect(); return { x: e.clientX - r.left, y: e.clientY - r.top }; };
    c.addEventListener('wheel', (e: WheelEvent) => {
      e.preventDefault();
      const { x } = local(e);
      if (e.shiftKey || Math.abs(e.deltaX) > Math.abs(e.deltaY)) { this.pan((e.deltaX || e.deltaY) / 1000); return; }
      this.zoom(e.deltaY > 0 ? 1.25 : 0.8, x > labelW ? this.timeAt(x) : undefined);
    }, { passive: false });
    c.addEventListener('mousedown', (e: MouseEvent) => {
      const { x, y } = local(e);
      down = { x, y, from: this.from, to: this.to, sel: e.shiftKey, moved: false };
      e.preventDefault();
      c.focus();
    });
    window.addEventListener('mousemove', this.onMove = (e: MouseEvent) => {
      const { x, y } = local(e);
      if (!down) {
        const inside = x >= labelW && x <= this.width && y >= 0 && y <= this.height;
        const h = inside ? this.timeAt(x) : null;
        if (h !== this.hover) { this.hover = h; this.invalidate(); }
        return;
      }
      if (Math.abs(x - down.x) > 3) down.moved = true;
      if (!down.moved) return;
      if (down.sel) {
        const a = this.timeAt(down.x), b = this.timeAt(x);
        this.selection = { start: Math.min(a, b), end: Math.max(a, b) };
        this.invalidate();
      } else {
        const w = Math.max(1, this.width - labelW);
        const d = ((down.x - x) / w) * (down.to - down.from);
        this.setView(down.from + d, down.to + d);
      }
    });
    window.addEventListener('mouseup', this.onUp = (e: MouseEvent) => {
      if (!down) return;
      const { x, y } = local(e);
      const d = down;
      down = null;
      if (d.sel && d.moved) { this.onSelect(this.selection); return; }
      if (!d.moved && x >= labelW) this.onSeek(this.timeAt(x), this.rowAt(y));
    });
    c.addEventListener('mouseleave', () => { if (this.hover !== null) { this.hover = null; this.invalidate(); } });
  }

  private onMove: (e: MouseEvent) => void = () => {};
  private onUp: (e: MouseEvent) => void = () => {};

  // unbind removes the window listeners (call with destroy).
  unbind(): void {
    window.removeEventListener('mousemove', this.onMove);
    window.removeEventListener('mouseup', this.onUp);
  }

  // draw renders the whole timeline now.
  draw(): void {
    const dpr = window.devicePixelRatio || 1;
    const W = this.el.clientWidth || 800;
    const H = ruler + Math.max(1, this.tracks.length) * this.rowHeight + 4;
    if (this.width !== W || this.height !== H || this.canvas.width !== Math.round(W * dpr)) {
      this.width = W;
      this.height = H;
      this.canvas.width = Math.round(W * dpr);
      this.canvas.height = Math.round(H * dpr);
      this.canvas.style.width = W + 'px';
      this.canvas.style.height = H + 'px';
    }
    const g = this.ctx;
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.fillStyle = '#0b1016';
    g.fillRect(0, 0, W, H);
    this.drawRuler(g, W, H);
    this.tracks.forEach((t, i) => this.drawRow(g, t, i, W));
    // The future: nothing can be recorded there yet.
    const nx = this.xOf(Date.now());
    if (nx < W) { g.fillStyle = 'rgba(0,0,0,.35)'; g.fillRect(Math.max(labelW, nx), ruler, W - Math.max(labelW, nx), H - ruler); }
    this.drawOverlay(g, W, H);
    this.canvas.dataset.from = String(Math.round(this.from));
    this.canvas.dataset.to = String(Math.round(this.to));
    this.canvas.dataset.labelw = String(labelW);
  }

  private drawRuler(g: CanvasRenderingContext2D, W: number, H: number): void {
    const span = this.to - this.from;
    const pxPerMs = (W - labelW) / span;
    const step = steps.find(s => s * pxPerMs >= 90) ?? steps[steps.length - 1];
    const minor = steps.filter(s => s < step).reverse().find(s => step % s === 0 && s * pxPerMs >= 12);
    const tz = new Date(this.from).getTimezoneOffset() * minute;
    const align = (t: number, s: number) => Math.floor((t - (s >= 86_400_000 ? -tz : 0)) / s) * s + (s >= 86_400_000 ? -tz : 0);
    g.font = '11px system-ui, sans-serif';
    g.textBaseline = 'middle';
    if (minor) {
      g.strokeStyle = '#223040';
      g.beginPath();
      for (let t = align(this.from, minor); t <= this.to; t += minor) {
        const x = Math.round(this.xOf(t)) + 0.5;
        if (x < labelW) continue;
        g.moveTo(x, ruler - 5); g.lineTo(x, ruler);
      }
      g.stroke();
    }
    g.strokeStyle = '#2c3a4a';
    g.fillStyle = '#8a99a8';
    g.beginPath();
    for (let t = align(this.from, step); t <= this.to; t += step) {
      const x = Math.round(this.xOf(t)) + 0.5;
      if (x < labelW) continue;
      g.moveTo(x, ruler - 10); g.lineTo(x, H);
      const d = new Date(t);
      let label: string;
      if (step >= 86_400_000) label = `${d.getMonth() + 1}-${pad(d.getDate())}`;
      else if (d.getHours() === 0 && d.getMinutes() === 0 && d.getSeconds() === 0) label = `${d.getMonth() + 1}-${pad(d.getDate())}`;
      else if (step >= minute) label = `${pad(d.getHours())}:${pad(d.getMinutes())}`;
      else label = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
      g.fillText(label, x + 3, 9);
    }
    g.stroke();
    g.fillStyle = '#dce3ea';
    g.fillText(`${fmtWall(this.from, false).slice(0, 10)}`, 6, 9);
    g.fillStyle = '#8a99a8';
    g.fillText(spanLabel(span), 6, 20);
  }

  private drawRow(g: CanvasRenderingContext2D, t: Track, i: number, W: number): void {
    const y = ruler + i * this.rowHeight;
    const h = this.rowHeight - 2;
    const from = this.from, to = this.to;
    if (i === this.selected) { g.fillStyle = 'rgba(61,139,253,.14)'; g.fillRect(0, y, W, h + 2); }
    g.fillStyle = '#dce3ea';
    g.font = (h >= 14 ? 12 : Math.max(7, h - 1)) + 'px system-ui, sans-serif';
    if (h >= 7) g.fillText(t.label.length > 18 ? t.label.slice(0, 17) + '…' : t.label, 6, y + h / 2 + 1);
    const d = t.data;
    // Background: no footage (gaps and beyond the known spans).
    g.fillStyle = '#141b23';
    g.fillRect(labelW, y, W - labelW, h);
    const x0 = (ms: number) => Math.max(labelW, this.xOf(ms));
    const x1 = (ms: number) => Math.min(W, this.xOf(ms));
    // Intervals as one path (one fill per kind and row: a software canvas
    // pays per fill call, not per rectangle in a path).
    const bar = (a: Interval[], color: string, top: number, height: number) => {
      let lastX = -1, n = 0;
      g.beginPath();
      for (let k = first(a, from, s => s.end); k < a.length && a[k].start < to; k++) {
        const l = x0(a[k].start), r = x1(a[k].end);
        // At least one pixel; intervals within one pixel column merge.
        const lx = Math.floor(l), rx = Math.max(lx + 1, Math.ceil(r));
        if (rx <= lastX) continue;
        g.rect(Math.max(lx, lastX), top, rx - Math.max(lx, lastX), height);
        lastX = rx;
        n++;
      }
      if (n) { g.fillStyle = color; g.fill(); }
    };
    bar(d.spans, '#1f6f4a', y, h);
    bar(d.lost, '#8a2f2a', y, h);
    bar(d.gaps, '#3a2a14', y + h - 3, 3);
    // Motion intensity: the max seconds-per-minute in each pixel column,
    // as a bar from the bottom of the row.
    const act = d.activity;
    if (act.length) {
      const cols = new Float32Array(Math.ceil(W - labelW) + 1);
      for (let k = first(act, from, a => a.start + minute); k < act.length && act[k].start < to; k++) {
        const a = act[k];
        const l = Math.max(0, Math.floor(this.xOf(a.start) - labelW));
        const r = Math.min(cols.length - 1, Math.max(l, Math.ceil(this.xOf(a.start + minute) - labelW) - 1));
        for (let c = l; c <= r; c++) if (a.seconds > cols[c]) cols[c] = a.seconds;
      }
      // One step polygon along the column tops.
      const base = y + h;
      g.beginPath();
      g.moveTo(labelW, base);
      let prev = 0;
      for (let c = 0; c < cols.length; c++) {
        const bh = cols[c] ? Math.max(1, Math.round((cols[c] / 60) * (h - 2))) : 0;
        if (bh !== prev) { g.lineTo(labelW + c, base - prev); g.lineTo(labelW + c, base - bh); prev = bh; }
      }
      g.lineTo(labelW + cols.length, base - prev);
      g.lineTo(labelW + cols.length, base);
      g.closePath();
      g.fillStyle = 'rgba(214,92,214,.85)';
      g.fill();
    }
    // Motion intervals: a thin line at the top of the row.
    bar(d.motion, '#d65cd6', y, 2);
    // Events: ticks in amber.
    if (d.events.length) {
      g.beginPath();
      for (let k = first(d.events, from, e => Math.max(e.end, e.start + 1)); k < d.events.length && d.events[k].start < to; k++) {
        const e = d.events[k];
        const l = Math.floor(x0(e.start));
        g.rect(l, y + 2, Math.max(2, Math.ceil(x1(Math.max(e.end, e.start)) - l)), Math.min(6, h / 3));
      }
      g.fillStyle = '#e0a42b';
      g.fill();
    }
  }

  private drawOverlay(g: CanvasRenderingContext2D, W: number, H: number): void {
    if (this.selection) {
      const l = Math.max(labelW, this.xOf(this.selection.start)), r = Math.min(W, this.xOf(this.selection.end));
      if (r > l) {
        g.fillStyle = 'rgba(61,139,253,.22)';
        g.fillRect(l, ruler, r - l, H - ruler);
        g.fillStyle = '#3d8bfd';
        g.fillRect(l, ruler, 1, H - ruler);
        g.fillRect(r - 1, ruler, 1, H - ruler);
      }
    }
    if (this.hover !== null) {
      const x = Math.round(this.xOf(this.hover)) + 0.5;
      g.strokeStyle = 'rgba(220,227,234,.35)';
      g.beginPath(); g.moveTo(x, ruler); g.lineTo(x, H); g.stroke();
      const s = fmtWall(this.hover, (this.to - this.from) < 10 * minute);
      g.font = '11px system-ui, sans-serif';
      const tw = g.measureText(s).width + 8;
      const tx = Math.min(W - tw, x + 4);
      g.fillStyle = '#1f2a36';
      g.fillRect(tx, ruler + 1, tw, 15);
      g.fillStyle = '#dce3ea';
      g.fillText(s, tx + 4, ruler + 9);
    }
    if (this.cursor !== null && this.cursor >= this.from && this.cursor <= this.to) {
      const x = Math.round(this.xOf(this.cursor));
      g.fillStyle = '#ff5a4f';
      g.fillRect(x - 1, 0, 2, H);
      g.beginPath(); g.moveTo(x - 6, 0); g.lineTo(x + 6, 0); g.lineTo(x, 8); g.fill();
    }
  }
}

function spanLabel(ms: number): string {
  const s = ms / 1000;
  if (s < 120) return `${Math.round(s)} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  if (s < 172800) return `${Math.round(s / 3600)} h`;
  return `${Math.round(s / 86400)} d`;
}
