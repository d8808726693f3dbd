// App is what every page gets: the API client, the caller's identity and
// the navigation helpers.
import type { Api, Me } from './api';

export interface App {
  api: Api;
  me: Me | null;
  // can reports whether the caller's role may perform action (GET /api/v1/me).
  can(action: string): boolean;
  navigate(hash: string): void;
  // rerender mounts the current page again (after a language switch).
  rerender(): void;
  // afterLogin fetches the identity and goes to the first page the role may use.
  afterLogin(): Promise<void>;
}

// A page mounts itself into root and returns its unmount.
export type Mount = (root: HTMLElement, app: App) => () => void;
