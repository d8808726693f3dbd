// Timeline data from the server: GET /api/v1/cameras/{id}/timeline (spans,
// gaps, lost footage, motion intervals and per-minute motion activity,
// camera events) for a window around the view, cached per camera. A view
// inside the cached window costs nothing; one outside it (or a window
// that reaches "now" and is older than 15 s) is fetched again.
import type { Api } from '../api';
import type { TrackData, Interval } from './timeline';

interface TimelineJSON {
  spans: { start: string; end: string }[];
  gaps: { start: string; end: string }[];
  lost: { start: string; end: string }[];
  motion: { start: string; end: string }[];
  motion_activity: { start: string; seconds: number }[];
  events: { start: string; end?: string; topic?: string }[];
}

// The server's timeline window limit (api.Server.MaxTimelineWindow).
const maxWindow = 31 * 86_400_000;

const iv = (a: { start: string; end: string }[] | undefined): Interval[] =>
  (a ?? []).map(x => ({ start: Date.parse(x.start), end: Date.parse(x.end) }));

export function parseTimeline(j: TimelineJSON): TrackData {
  return {
    spans: iv(j.spans),
    gaps: iv(j.gaps),
    lost: iv(j.lost),
    motion: iv(j.motion),
    activity: (j.motion_activity ?? []).map(a => ({ start: Date.parse(a.start), seconds: a.seconds })),
    events: (j.events ?? []).map(e => ({ start: Date.parse(e.start), end: e.end ? Date.parse(e.end) : Date.parse(e.start), topic: e.topic ?? '' }))
      .sort((a, b) => a.start - b.start),
  };
}

export async function fetchTimeline(api: Api, camera: string, from: number, to: number): Promise<TrackData> {
  const q = `from=${encodeURIComponent(new Date(from).toISOString())}&to=${encodeURIComponent(new Date(to).toISOString())}`;
  return parseTimeline(await api.json<TimelineJSON>('GET', `/api/v1/cameras/${encodeURIComponent(camera)}/timeline?${q}`));
}

interface Entry { from: number; to: number; at: number; data: TrackData; pending?: Promise<TrackData> }

export class TimelineCache {
  private entries = new Map<string, Entry>();
  constructor(private api: Api, private now: () => number = Date.now) {}

  get(camera: string): TrackData | undefined { return this.entries.get(camera)?.data; }

  // ensure loads camera's data around [from, to) unless cached; it
  // resolves to the data (cached or new).
  async ensure(camera: string, from: number, to: number): Promise<TrackData> {
    const now = this.now();
    const e = this.entries.get(camera);
    const fresh = e && (e.to < now - 60_000 || now - e.at < 15_000);
    if (e && e.from <= from && e.to >= Math.min(to, now) && fresh) return e.data;
    if (e?.pending) return e.pending;
    const span = to - from;
    let a = from - span, b = Math.min(to + span, now + 60_000);
    if (b - a > maxWindow) { a = Math.max(a, from - (maxWindow - span) / 2); b = Math.min(b, a + maxWindow); }
    if (b <= a) b = a + 1000;
    const p = fetchTimeline(this.api, camera, a, b);
    const entry: Entry = e ?? { from: 0, to: 0, at: 0, data: { spans: [], gaps: [], lost: [], motion: [], activity: [], events: [] } };
    entry.pending = p;
    this.entries.set(camera, entry);
    try {
      const data = await p;
      Object.assign(entry, { from: a, to: b, at: now, data, pending: undefined });
      return data;
    } catch (err) {
      entry.pending = undefined;
      throw err;
    }
  }
}

// spanAt returns the recorded span containing t, or else the next one
// after t (null when none is known).
export function spanAt(d: TrackData | undefined, t: number): { span: Interval; inside: boolean } | null {
  if (!d) return null;
  for (const s of d.spans) {
    if (s.end <= t) continue;
    return { span: s, inside: s.start <= t };
  }
  return null;
}
