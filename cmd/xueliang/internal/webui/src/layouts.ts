// Saved live-wall layouts of the caller (GET/PUT/DELETE /api/v1/layouts,
// docs/openapi.yaml): every user sees and changes only their own.
import type { Api } from './api';

export interface Layout {
  name: string;
  // grid is the number of tiles: 1, 4, 9 or 16.
  grid: number;
  // cameras are the tiles' camera ids in order ("" = an empty tile).
  cameras: string[];
  // tour_seconds > 0: the wall tours the cameras every that many seconds.
  tour_seconds?: number;
  updated?: string;
}

const base = '/api/v1/layouts';

export async function listLayouts(api: Api): Promise<Layout[]> {
  return (await api.json<{ layouts: Layout[] }>('GET', base)).layouts;
}

export function putLayout(api: Api, l: Layout): Promise<Layout> {
  return api.json('PUT', base + '/' + encodeURIComponent(l.name), { grid: l.grid, cameras: l.cameras, tour_seconds: l.tour_seconds ?? 0 });
}

export function deleteLayout(api: Api, name: string): Promise<void> {
  return api.json('DELETE', base + '/' + encodeURIComponent(name));
}
