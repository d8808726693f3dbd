// Synchronized replay: one master clock (wall-clock ms, running at the
// chosen speed) and up to nine ReplayTiles held to it. Every 100 ms each
// tile's playhead (window start + currentTime) is compared with the clock:
// more than a quarter of a frame off while playing → its playbackRate is
// nudged to close the difference within about a second; more than
// max(1 s, ¼ s × speed) off, or half a frame while paused → it seeks
// (inside what is seekable) or loads a new window from the clock. While a
// playing tile is loading or starved the clock holds, so the others wait
// for it instead of running away. Gaps: a tile whose camera has no
// footage at the clock shows "no footage"; with gaps "skip", when no tile
// has footage the clock jumps to the next recorded span of any camera.
import type { TrackData } from '../timeline/timeline';
import { spanAt } from '../timeline/data';
import { ReplayTile, windowLength } from './player';

export class MasterClock {
  private base = 0;
  private t0 = 0;
  rate = 1;
  playing = false;
  now(): number { return this.playing ? this.base + (performance.now() - this.t0) * this.rate : this.base; }
  set(t: number): void { this.base = t; this.t0 = performance.now(); }
  play(): void { if (!this.playing) { this.set(this.now()); this.playing = true; } }
  pause(): void { if (this.playing) { this.set(this.now()); this.playing = false; } }
  setRate(r: number): void { this.set(this.now()); this.rate = r; }
  // hold keeps the clock where it is (it restarts from there).
  hold(): void { this.set(this.now()); }
}

export type GapMode = 'skip' | 'show';

export interface Slot { tile: ReplayTile; camera: string; retryAt: number }

export class SyncGroup {
  readonly clock = new MasterClock();
  slots: Slot[] = [];
  gaps: GapMode = 'skip';
  // maxDriftMs is the largest pairwise difference between the tiles'
  // playheads at the last check (for the Nx SYNC badge and the tests).
  maxDriftMs = 0;
  private timer = 0;

  constructor(private data: (camera: string) => TrackData | undefined, private now: () => number = Date.now) {
    this.timer = window.setInterval(() => this.tick(), 100);
  }

  destroy(): void {
    clearInterval(this.timer);
    this.slots.forEach(s => s.tile.stop());
  }

  // seek moves the clock to t and every tile with it (instant when t is
  // buffered, else a new window).
  seek(t: number): void {
    t = Math.min(t, this.now());
    this.clock.set(t);
    for (const s of this.slots) this.place(s, t, true);
  }

  setRate(r: number): void {
    this.clock.setRate(r);
    for (const s of this.slots) if (s.tile.state === 'ready') s.tile.video.playbackRate = r;
  }

  play(): void {
    this.clock.play();
    for (const s of this.slots) if (s.tile.state === 'ready') { s.tile.video.playbackRate = this.clock.rate; s.tile.video.play().catch(() => {}); }
  }

  pause(): void {
    this.clock.pause();
    const t = this.clock.now();
    for (const s of this.slots) {
      if (s.tile.state !== 'ready') continue;
      s.tile.video.pause();
      // A new window from the clock: its first frame is the frame at t
      // exactly. (Inside a window, media time 0 is a frame whose own time
      // is up to a frame before the window start, so a paused position
      // inside it can show the frame before the one at the clock.)
      this.place(s, t, true, true);
    }
  }

  // step moves the paused clock by n frames (of the first playing tile).
  step(n: number): void {
    this.pause();
    const fd = this.slots.find(s => s.tile.state === 'ready')?.tile.frameDur ?? 0.04;
    this.seek(this.clock.now() + n * fd * 1000);
  }

  // place loads or positions slot s at wall-clock t (fresh: always a new
  // window).
  private place(s: Slot, t: number, force: boolean, fresh = false): void {
    const tile = s.tile;
    if (!s.camera) return;
    if (!fresh && tile.camera === s.camera && tile.state === 'ready' && tile.buffered(t)) {
      tile.seekWithin(t);
      if (this.clock.playing) tile.video.play().catch(() => {});
      return;
    }
    if (!force && tile.state === 'loading') return;
    const d = this.data(s.camera);
    // Without the camera's timeline yet, wait for it (the page seeks once
    // it is loaded, or failed to load).
    if (!d && !force) return;
    const sp = spanAt(d, t);
    if (d && (!sp || !sp.inside)) { if (tile.state !== 'gap') tile.gap(); return; }
    const end = Math.min(sp ? sp.span.end : Infinity, t + windowLength, this.now());
    if (end - t < 200) { if (tile.state !== 'gap') tile.gap(); return; }
    tile.load(s.camera, t, end).then(() => {
      const now = this.clock.now();
      tile.video.playbackRate = this.clock.rate;
      if (Math.abs(now - t) > 1) tile.seekWithin(now);
      if (this.clock.playing) tile.video.play().catch(() => {});
    }, () => { s.retryAt = performance.now() + 2000; });
  }

  private tick(): void {
    const c = this.clock;
    let t = c.now();
    if (t > this.now()) { c.set(this.now()); c.pause(); t = c.now(); }
    let stalled = false, anyFootage = false;
    const heads: number[] = [];
    for (const s of this.slots) {
      const tile = s.tile;
      if (!s.camera) continue;
      switch (tile.state) {
        case 'idle':
        case 'gap':
          this.place(s, t, false);
          if ((tile.state as string) === 'loading') stalled = true;
          break;
        case 'error':
          if (performance.now() >= s.retryAt) this.place(s, t, false);
          break;
        case 'loading':
          anyFootage = true;
          stalled = true;
          break;
        case 'ready': {
          anyFootage = true;
          if (t >= tile.end - 20) { this.place(s, t, false); break; }
          const v = tile.video;
          const drift = tile.wall() - t;
          const fd = tile.frameDur * 1000;
          if (!c.playing) {
            if (!v.paused) v.pause();
            if (Math.abs(drift) > fd / 2 && !v.seeking) this.place(s, t, false);
          } else {
            if (v.paused && !v.ended) v.play().catch(() => {});
            if (Math.abs(drift) > Math.max(1000, 250 * c.rate)) this.place(s, t, false);
            else if (Math.abs(drift) > fd / 4) {
              const want = c.rate - drift / 1000;
              v.playbackRate = Math.min(16, Math.max(0.0625, c.rate * 0.5, Math.min(c.rate * 1.5, want)));
            } else if (v.playbackRate !== c.rate) v.playbackRate = c.rate;
            if (v.readyState < 3 || v.seeking) stalled = true;
          }
          heads.push(tile.wall());
        }
      }
    }
    this.maxDriftMs = heads.length > 1 ? Math.max(...heads) - Math.min(...heads) : 0;
    if (stalled && c.playing) c.hold();
    if (c.playing && !anyFootage && this.gaps === 'skip') {
      // Nothing recorded at the clock: on to the next footage of any camera.
      let next = Infinity;
      for (const s of this.slots) {
        const sp = spanAt(this.data(s.camera), t);
        if (sp) next = Math.min(next, Math.max(t, sp.span.start));
      }
      if (next !== Infinity && next > t) this.seek(next);
    }
  }
}
