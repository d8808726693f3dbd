// LivePlayer plays a camera's live view in a <video>: it gets a signed
// ticket, opens the WebSocket GET /api/v1/cameras/{id}/live (a JSON header
// with the MIME type, then fMP4 fragments) and appends the fragments to a
// Media Source Extensions SourceBuffer, keeping the playhead near the live
// edge and the buffer short. stream "sub" falls back to "main" when the
// camera has no sub stream.
import type { Api } from './api';

export class LivePlayer {
  private ws: WebSocket | null = null;
  private ms: MediaSource | null = null;
  private sb: SourceBuffer | null = null;
  private queue: ArrayBuffer[] = [];
  private stopped = false;
  private retry = 0;
  stream: 'main' | 'sub';
  onState: (s: 'connecting' | 'playing' | 'error', detail?: string) => void = () => {};

  constructor(private api: Api, readonly camera: string, readonly video: HTMLVideoElement, stream: 'main' | 'sub') {
    this.stream = stream;
  }

  async start(): Promise<void> {
    this.onState('connecting');
    let gotHeader = false;
    try {
      const url = await this.api.liveURL(this.camera, this.stream);
      if (this.stopped) return;
      const ms = new MediaSource();
      this.ms = ms;
      this.video.src = URL.createObjectURL(ms);
      await new Promise(ok => ms.addEventListener('sourceopen', ok, { once: true }));
      if (this.stopped) return;
      const ws = new WebSocket(url);
      this.ws = ws;
      ws.binaryType = 'arraybuffer';
      ws.onmessage = (e: MessageEvent) => {
        if (typeof e.data === 'string') {
          const hdr = JSON.parse(e.data) as { mime?: string };
          if (!hdr.mime || this.sb) return;
          if (!MediaSource.isTypeSupported(hdr.mime)) { this.onState('error', 'unsupported ' + hdr.mime); ws.close(); return; }
          gotHeader = true;
          this.sb = ms.addSourceBuffer(hdr.mime);
          this.sb.mode = 'segments';
          this.sb.addEventListener('updateend', () => this.onUpdated());
          return;
        }
        this.queue.push(e.data as ArrayBuffer);
        this.pump();
      };
      ws.onclose = () => {
        if (this.stopped) return;
        // No sub stream (the server refuses the upgrade): use the main one.
        if (!gotHeader && this.stream === 'sub') { this.stream = 'main'; this.restart(0); return; }
        this.onState('error', 'closed');
        this.restart(Math.min(10000, 1000 * 2 ** this.retry++));
      };
    } catch (e) {
      if (this.stopped) return;
      this.onState('error', String((e as Error).message ?? e));
      this.restart(Math.min(10000, 1000 * 2 ** this.retry++));
    }
  }

  private restart(delay: number): void {
    this.teardown();
    window.setTimeout(() => { if (!this.stopped) this.start(); }, delay);
  }

  private pump(): void {
    const sb = this.sb;
    if (!sb || sb.updating || !this.queue.length) return;
    try {
      sb.appendBuffer(this.queue.shift()!);
    } catch (e) {
      // QuotaExceeded: drop what is behind the playhead and go on.
      if (sb.buffered.length && this.video.currentTime - sb.buffered.start(0) > 2) sb.remove(0, this.video.currentTime - 1);
    }
  }

  private onUpdated(): void {
    // A late updateend of a torn-down SourceBuffer: not ours any more.
    if (this.stopped || !this.sb) return;
    const v = this.video, sb = this.sb;
    const b = v.buffered;
    if (b.length) {
      const end = b.end(b.length - 1);
      if (end - v.currentTime > 1.5 || v.currentTime < b.start(0)) v.currentTime = Math.max(b.start(b.length - 1), end - 0.3);
      if (!sb.updating && v.currentTime - b.start(0) > 30) { sb.remove(0, v.currentTime - 10); return; }
    }
    if (v.paused) v.play().then(() => { this.retry = 0; this.onState('playing'); }).catch(() => {});
    this.pump();
  }

  private teardown(): void {
    if (this.ws) { this.ws.onclose = null; this.ws.close(); this.ws = null; }
    this.sb = null;
    this.queue = [];
    if (this.ms) {
      URL.revokeObjectURL(this.video.src);
      this.ms = null;
    }
    this.video.removeAttribute('src');
    this.video.load();
  }

  stop(): void {
    this.stopped = true;
    this.teardown();
  }
}
