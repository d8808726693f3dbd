// Typed client of the xueliang HTTP API (/api/v1, docs/openapi.yaml). The
// session token from POST /api/v1/login is kept in sessionStorage and sent
// as a bearer token; any 401 clears it and calls onUnauthorized (the app
// goes to #/login).

export interface Me {
  user: string;
  role: 'admin' | 'installer' | 'operator' | 'auditor' | string;
  townships: string[];
  actions: string[];
}

export interface Camera {
  id: string;
  name: string;
  township: string;
  village: string;
  lat?: number;
  lon?: number;
  main_url?: string;
  sub_url?: string;
  username?: string;
  has_password: boolean;
  transport?: string;
  segment_duration?: string;
  motion: boolean;
  enabled: boolean;
  online: boolean;
  source: string;
}

export class ApiError extends Error {
  constructor(public status: number, message: string, public body: Record<string, unknown> = {}) {
    super(message);
  }
}

const tokenKey = 'xl.token';

export class Api {
  onUnauthorized: () => void = () => {};

  get token(): string { return sessionStorage.getItem(tokenKey) ?? ''; }
  set token(v: string) { if (v) sessionStorage.setItem(tokenKey, v); else sessionStorage.removeItem(tokenKey); }

  // raw sends a request with the bearer token and returns the response;
  // non-2xx answers become an ApiError.
  async raw(method: string, path: string, body?: BodyInit | object, headers: Record<string, string> = {}): Promise<Response> {
    const h: Record<string, string> = { ...headers };
    if (this.token) h['Authorization'] = 'Bearer ' + this.token;
    let b: BodyInit | undefined;
    if (body instanceof Blob || body instanceof FormData || typeof body === 'string') b = body;
    else if (body !== undefined) { b = JSON.stringify(body); h['Content-Type'] = 'application/json'; }
    const r = await fetch(path, { method, headers: h, body: b });
    if (r.status === 401 && path !== '/api/v1/login') {
      this.token = '';
      this.onUnauthorized();
    }
    if (!r.ok) {
      let j: Record<string, unknown> = {};
      try { j = await r.json(); } catch { /* not JSON */ }
      throw new ApiError(r.status, String(j.error ?? r.statusText), j);
    }
    return r;
  }

  async json<T>(method: string, path: string, body?: object): Promise<T> {
    const r = await this.raw(method, path, body);
    if (r.status === 204) return undefined as T;
    return (await r.json()) as T;
  }

  async login(user: string, password: string): Promise<void> {
    const r = await this.json<{ token: string }>('POST', '/api/v1/login', { user, password });
    this.token = r.token;
  }

  async logout(): Promise<void> {
    try { await this.raw('POST', '/api/v1/logout'); } finally { this.token = ''; }
  }

  me(): Promise<Me> { return this.json('GET', '/api/v1/me'); }
  cameras(): Promise<Camera[]> { return this.json<{ cameras: Camera[] }>('GET', '/api/v1/cameras').then(r => r.cameras); }
  camera(id: string): Promise<Camera> { return this.json('GET', '/api/v1/cameras/' + encodeURIComponent(id)); }

  // liveURL returns the WebSocket URL of a camera's live view, with a
  // short-lived signed ticket (browsers cannot send headers on a WebSocket).
  async liveURL(id: string, stream: 'main' | 'sub'): Promise<string> {
    const r = await this.json<{ ticket: string }>('POST', `/api/v1/cameras/${encodeURIComponent(id)}/live/ticket`);
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    return `${proto}//${location.host}/api/v1/cameras/${encodeURIComponent(id)}/live?stream=${stream}&audio=false&ticket=${encodeURIComponent(r.ticket)}`;
  }

  // blobURL fetches an authenticated binary (a snapshot) as an object URL.
  async blobURL(path: string): Promise<string> {
    const r = await this.raw('GET', path);
    return URL.createObjectURL(await r.blob());
  }
}

// CameraStatus is one entry of GET /api/v1/camera-status.
export interface CameraStatus {
  id: string;
  name: string;
  township: string;
  village: string;
  state: 'recording' | 'no_footage' | 'offline' | 'disabled';
  online: boolean;
  motion_now: boolean;
  bitrate_bps: number;
  frames: number;
  reconnects: number;
  last_error?: string;
  last_error_class?: string;
  last_keyframe?: string;
  session_start?: string;
}

export function cameraStatus(api: Api): Promise<CameraStatus[]> {
  return api.json<{ cameras: CameraStatus[] }>('GET', '/api/v1/camera-status').then(r => r.cameras);
}
