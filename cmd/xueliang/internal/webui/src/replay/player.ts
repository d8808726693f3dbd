// ReplayTile plays one camera's recording in a <video>, as windows of
// GET /api/v1/cameras/{id}/replay.mp4?format=fmp4&gaps=stop with a replay
// ticket (a <video src> cannot send the bearer token). Why this form:
// Chromium's <video> applies the edit list of the fragmented MP4, so the
// first frame shown is the frame at the window's start (measured,
// replay/doc.go "Players"); MSE would drop everything up to the next
// keyframe. The fragmented form streams from the first GOP on, so a seek
// outside what is loaded is one new request whose first frame comes after
// one GOP is read. Media time 0 is the window start, so the wall-clock
// time of what is shown is start + currentTime (within a frame).
//
// A window never crosses a gap (gaps=stop, ending at the known span's
// end): the page decides what to do at gaps (skip to the next span, or
// keep the clock running over them) from the timeline data.
import type { Api } from '../api';
import { ApiError } from '../api';

// windowLength is the length of one requested window.
export const windowLength = 10 * 60_000;

interface Ticket { ticket: string; expires: number }

export async function replayTicket(api: Api, camera: string): Promise<Ticket> {
  const r = await api.json<{ ticket: string; expires: string }>('POST', `/api/v1/cameras/${encodeURIComponent(camera)}/replay/ticket`);
  return { ticket: r.ticket, expires: Date.parse(r.expires) };
}

export function replayURL(camera: string, start: number, end: number, ticket: string): string {
  const iso = (ms: number) => encodeURIComponent(new Date(ms).toISOString());
  return `/api/v1/cameras/${encodeURIComponent(camera)}/replay.mp4?start=${iso(start)}&end=${iso(end)}&format=fmp4&gaps=stop&ticket=${encodeURIComponent(ticket)}`;
}

export type TileState = 'idle' | 'loading' | 'ready' | 'gap' | 'error';

export class ReplayTile {
  readonly video: HTMLVideoElement;
  camera = '';
  // The loaded window [start, end) in wall-clock ms; start is media time 0.
  start = 0;
  end = 0;
  state: TileState = 'idle';
  detail = '';
  // frameDur is the frame duration in seconds, measured from presented
  // frames (requestVideoFrameCallback), 1/25 until known.
  frameDur = 0.04;
  // presented is the wall-clock time of the last frame presented.
  presented = NaN;
  onState: (s: TileState) => void = () => {};
  onEnded: () => void = () => {};
  private ticket: Ticket | null = null;
  private gen = 0;
  private lastMedia = NaN;
  private durs: number[] = [];

  constructor(private api: Api) {
    const v = document.createElement('video');
    v.muted = true;
    v.playsInline = true;
    v.preload = 'auto';
    v.disablePictureInPicture = true;
    this.video = v;
    v.addEventListener('ended', () => this.onEnded());
    v.addEventListener('error', () => { if (this.state === 'loading' || this.state === 'ready') this.set('error', v.error?.message || 'media error'); });
    v.addEventListener('waiting', () => { if (this.state === 'ready') this.onState(this.state); });
    if ('requestVideoFrameCallback' in HTMLVideoElement.prototype) {
      const cb = (_now: number, meta: VideoFrameCallbackMetadata) => {
        this.presented = this.start + meta.mediaTime * 1000;
        if (!isNaN(this.lastMedia) && v.playbackRate === 1 && !v.paused) {
          const d = meta.mediaTime - this.lastMedia;
          if (d > 0.005 && d < 0.2) {
            this.durs.push(d);
            if (this.durs.length > 25) this.durs.shift();
            const s = [...this.durs].sort((a, b) => a - b);
            this.frameDur = s[s.length >> 1];
          }
        }
        this.lastMedia = meta.mediaTime;
        v.requestVideoFrameCallback(cb);
      };
      v.requestVideoFrameCallback(cb);
    }
  }

  private set(s: TileState, detail = ''): void {
    this.state = s;
    this.detail = detail;
    this.onState(s);
  }

  // wall is the wall-clock time of the playhead, or NaN when nothing is
  // loaded.
  wall(): number {
    if (this.state !== 'ready') return NaN;
    return this.start + this.video.currentTime * 1000;
  }

  // buffered reports whether wall-clock t is in the loaded window, already
  // buffered and seekable (a seek there is instant). The replay response
  // is a stream without byte ranges, so Chromium's seekable range is the
  // start only (measured: currentTime stays at 0): seeks, frame steps and
  // hard drift corrections then load a new window from t, whose first
  // frame is the frame at t.
  buffered(t: number): boolean {
    if (this.state !== 'ready' || t < this.start || t >= this.end) return false;
    const m = (t - this.start) / 1000;
    const inside = (r: TimeRanges, tail: number) => {
      for (let i = 0; i < r.length; i++) if (m >= r.start(i) && m < r.end(i) - tail) return true;
      return false;
    };
    return inside(this.video.buffered, 0.1) && inside(this.video.seekable, 0);
  }

  // load plays camera from wall-clock start to end (one window, no gap
  // inside); the promise resolves once the first frame can be shown.
  async load(camera: string, start: number, end: number): Promise<void> {
    const gen = ++this.gen;
    this.camera = camera;
    this.set('loading');
    try {
      if (!this.ticket || this.ticket.expires - Date.now() < 5000 || this.ticketCamera !== camera) {
        this.ticket = await replayTicket(this.api, camera);
        this.ticketCamera = camera;
      }
      if (gen !== this.gen) return;
      this.start = start;
      this.end = end;
      this.lastMedia = NaN;
      this.presented = NaN;
      const v = this.video;
      v.src = replayURL(camera, start, end, this.ticket.ticket);
      await new Promise<void>((ok, fail) => {
        const done = () => { v.removeEventListener('loadeddata', onData); v.removeEventListener('error', onErr); };
        const onData = () => { done(); ok(); };
        const onErr = () => { done(); fail(new Error(v.error?.message || 'cannot play this window')); };
        v.addEventListener('loadeddata', onData);
        v.addEventListener('error', onErr);
      });
      if (gen !== this.gen) return;
      this.set('ready');
    } catch (e) {
      if (gen !== this.gen) return;
      this.set('error', e instanceof ApiError ? `${e.status} ${e.message}` : String((e as Error).message ?? e));
      throw e;
    }
  }

  private ticketCamera = '';

  // seekWithin moves the playhead to wall-clock t inside the window. The
  // element shows the frame whose presentation time is at or before the
  // playhead; 1 ms past t keeps a step of exactly one frame from landing a
  // rounding error before that frame. (Media time 0 is the frame at the
  // window start, whose own wall-clock time is up to a frame earlier: a
  // seek inside a loaded window can show the frame before the one at t
  // when t is within that offset of a frame boundary; a new window, as
  // after a seek outside what is loaded, starts exactly at its frame.)
  seekWithin(t: number): void {
    this.video.currentTime = Math.max(0, (t - this.start) / 1000 + 0.001);
  }

  // gap shows that there is no footage at the master time.
  gap(): void {
    ++this.gen;
    this.video.pause();
    this.video.removeAttribute('src');
    this.video.load();
    this.set('gap');
  }

  stop(): void {
    ++this.gen;
    this.video.pause();
    this.video.removeAttribute('src');
    this.video.load();
    this.camera = '';
    this.set('idle');
  }
}
