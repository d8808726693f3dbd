// The live wall (#/live): the camera tree beside a 1/4/9/16 grid of tiles.
// Drag a camera from the tree onto a tile (or click it: the next free
// tile). Tiles play the sub stream; a double-click enlarges a tile and
// switches it to the main stream (Esc or another double-click goes back).
// The tour cycles the tree's cameras through the tiles every N seconds.
// Layouts are saved per user on the server (layouts.ts); the last one
// applied or saved comes back when the page is opened again.
import type { App } from '../app';
import { listLayouts, putLayout, deleteLayout, type Layout } from '../layouts';
import { h, clear } from '../dom';
import { t, extend } from '../i18n';
import { cameraTree } from '../tree';
import { LivePlayer } from '../player';

extend('zh-CN', {
  'live.layout': '分屏',
  'live.tour': '轮巡',
  'live.tourstop': '停止轮巡',
  'live.seconds': '间隔（秒）',
  'live.clear': '清空',
  'live.save': '保存布局',
  'live.layouts': '已存布局',
  'live.layoutname': '布局名称',
  'live.saved': '已保存',
  'live.drop': '拖入摄像机',
  'live.connecting': '连接中…',
  'live.failed': '无法播放：{0}',
  'live.main': '主码流',
  'live.sub': '子码流',
  'live.remove': '移除',
  'live.delete': '删除布局',
  'live.deleted': '已删除',
});
extend('en', {
  'live.layout': 'Layout',
  'live.tour': 'Tour',
  'live.tourstop': 'Stop tour',
  'live.seconds': 'Every (s)',
  'live.clear': 'Clear',
  'live.save': 'Save layout',
  'live.layouts': 'Saved layouts',
  'live.layoutname': 'Layout name',
  'live.saved': 'Saved',
  'live.drop': 'Drop a camera here',
  'live.connecting': 'Connecting…',
  'live.failed': 'Cannot play: {0}',
  'live.main': 'main',
  'live.sub': 'sub',
  'live.remove': 'Remove',
  'live.delete': 'Delete layout',
  'live.deleted': 'Deleted',
});

const grids = [1, 4, 9, 16];

interface Tile { el: HTMLElement; video: HTMLVideoElement; label: HTMLElement; camera: string; player: LivePlayer | null }

export function mount(root: HTMLElement, app: App): () => void {
  let grid = Number(localStorage.getItem('xl.live.grid')) || 4;
  let enlarged = -1;
  let tourTimer = 0;
  let tourPos = 0;
  const tiles: Tile[] = [];
  const tree = cameraTree(app, { onPick: c => place(c.id) });
  const wall = h('div', { class: 'wall', id: 'wall' });
  const msg = h('span', { class: 'muted', id: 'live-msg' });
  const secs = h('input', { type: 'number', min: '3', value: localStorage.getItem('xl.live.tour') ?? '10', class: 'num', id: 'tour-seconds', title: t('live.seconds') });
  const tourBtn = h('button', { id: 'tour', onclick: () => toggleTour() }, t('live.tour'));
  const layoutSel = h('select', { id: 'layouts', onchange: () => applySaved() }, h('option', { value: '' }, t('live.layouts')));
  const layoutName = h('input', { id: 'layout-name', placeholder: t('live.layoutname'), class: 'short' });
  let saved: Layout[] = [];
  const layoutBtns = grids.map(n => h('button', { 'data-grid': String(n), onclick: () => setGrid(n) }, String(n)));

  const toolbar = h('div', { class: 'toolbar' },
    h('span', { class: 'muted' }, t('live.layout')), layoutBtns,
    h('span', { class: 'sep' }),
    tourBtn, h('label', { class: 'muted inline' }, t('live.seconds'), secs),
    h('span', { class: 'sep' }),
    layoutSel, layoutName,
    h('button', { id: 'save-layout', onclick: () => saveCurrent() }, t('live.save')),
    h('button', { id: 'delete-layout', onclick: () => deleteCurrent() }, t('live.delete')),
    h('button', { id: 'live-clear', onclick: () => { stopTour(); tiles.forEach(tl => assign(tl, '')); } }, t('live.clear')),
    msg);
  root.appendChild(h('div', { class: 'split live' }, tree.el, h('section', { class: 'wallbox' }, toolbar, wall)));

  function setGrid(n: number): void {
    grid = n;
    localStorage.setItem('xl.live.grid', String(n));
    enlarged = -1;
    while (tiles.length < n) tiles.push(newTile(tiles.length));
    for (let i = n; i < tiles.length; i++) assign(tiles[i], '');
    tiles.length = n;
    layoutBtns.forEach(b => b.classList.toggle('active', b.dataset.grid === String(n)));
    drawWall();
  }

  function drawWall(): void {
    const side = Math.sqrt(grid);
    wall.style.gridTemplateColumns = `repeat(${side}, 1fr)`;
    wall.style.gridTemplateRows = `repeat(${side}, 1fr)`;
    wall.classList.toggle('enlarged', enlarged >= 0);
    tiles.forEach((tl, i) => tl.el.classList.toggle('big', i === enlarged));
    // Re-append only when the tiles changed: a <video> taken out of the
    // document pauses.
    if (wall.children.length !== tiles.length || tiles.some((tl, i) => wall.children[i] !== tl.el)) clear(wall, tiles.map(tl => tl.el));
  }

  function newTile(i: number): Tile {
    const video = newVideo();
    const label = h('div', { class: 'tile-label' }, t('live.drop'));
    const el = h('div', {
      class: 'tile', 'data-tile': String(i),
      ondragover: (e: DragEvent) => { e.preventDefault(); el.classList.add('over'); },
      ondragleave: () => el.classList.remove('over'),
      ondrop: (e: DragEvent) => {
        e.preventDefault();
        el.classList.remove('over');
        const id = e.dataTransfer?.getData('text/x-camera') || e.dataTransfer?.getData('text/plain');
        if (id) assign(tile, id);
      },
      ondblclick: () => toggleEnlarge(tiles.indexOf(tile)),
    }, video, label,
    h('button', { class: 'tile-x link', title: t('live.remove'), onclick: (e: Event) => { e.stopPropagation(); assign(tile, ''); } }, '×'));
    const tile: Tile = { el, video, label, camera: '', player: null };
    return tile;
  }

  function cameraName(id: string): string {
    return tree.all().find(c => c.id === id)?.name || id;
  }

  function newVideo(): HTMLVideoElement {
    const v = h('video', { muted: true, autoplay: true, playsInline: true });
    v.muted = true;
    return v;
  }

  function assign(tile: Tile, id: string, stream: 'main' | 'sub' = 'sub'): void {
    tile.player?.stop();
    tile.player = null;
    // Every player gets a fresh <video>: nothing of the previous stream's
    // decoder or MediaSource carries over.
    const v = newVideo();
    tile.video.replaceWith(v);
    tile.video = v;
    tile.camera = id;
    tile.el.dataset.camera = id;
    tile.el.classList.toggle('empty', !id);
    if (!id) { tile.label.textContent = t('live.drop'); return; }
    const p = new LivePlayer(app.api, id, tile.video, stream);
    tile.player = p;
    const name = cameraName(id);
    p.onState = (s, d) => {
      tile.el.dataset.state = s;
      tile.label.textContent = `${name} · ${t('live.' + p.stream)}` + (s === 'connecting' ? ' · ' + t('live.connecting') : s === 'error' ? ' · ' + t('live.failed', d ?? '') : '');
    };
    p.start();
  }

  function place(id: string): void {
    const free = tiles.find(tl => !tl.camera) ?? tiles[tiles.length - 1];
    assign(free, id);
  }

  function toggleEnlarge(i: number): void {
    const prev = enlarged;
    enlarged = prev === i ? -1 : i;
    if (prev >= 0 && tiles[prev]?.camera) assign(tiles[prev], tiles[prev].camera, 'sub');
    if (enlarged >= 0 && tiles[enlarged].camera) assign(tiles[enlarged], tiles[enlarged].camera, 'main');
    drawWall();
  }

  function stopTour(): void {
    if (!tourTimer) return;
    clearInterval(tourTimer);
    tourTimer = 0;
    tourBtn.textContent = t('live.tour');
    tourBtn.classList.remove('active');
  }

  function toggleTour(): void {
    if (tourTimer) { stopTour(); return; }
    const n = Math.max(3, Number(secs.value) || 10);
    localStorage.setItem('xl.live.tour', String(n));
    tourBtn.textContent = t('live.tourstop');
    tourBtn.classList.add('active');
    const step = () => {
      const cams = tree.cameras().filter(c => c.online);
      if (!cams.length) return;
      tiles.forEach((tl, i) => assign(tl, cams[(tourPos + i) % cams.length].id, i === enlarged ? 'main' : 'sub'));
      tourPos = (tourPos + tiles.length) % cams.length;
    };
    step();
    tourTimer = window.setInterval(step, n * 1000);
  }

  // The last layout applied or saved, per user, comes back on the next visit.
  const lastKey = 'xl.live.layout.' + (app.me?.user ?? '');

  async function refreshLayouts(select = ''): Promise<void> {
    try {
      saved = await listLayouts(app.api);
      clear(layoutSel, h('option', { value: '' }, t('live.layouts')), saved.map(l => h('option', { value: l.name, selected: l.name === select }, `${l.name} (${l.grid})`)));
    } catch (e) {
      msg.textContent = t('app.error', (e as Error).message);
    }
  }

  function applySaved(): void {
    const l = saved.find(x => x.name === layoutSel.value);
    if (!l) return;
    stopTour();
    setGrid(l.grid);
    l.cameras.forEach((id, i) => { if (tiles[i]) assign(tiles[i], id); });
    layoutName.value = l.name;
    localStorage.setItem(lastKey, l.name);
    if (l.tour_seconds) { secs.value = String(l.tour_seconds); toggleTour(); }
  }

  async function saveCurrent(): Promise<void> {
    const name = layoutName.value.trim() || layoutSel.value || `${grid}`;
    const l: Layout = { name, grid, cameras: tiles.map(tl => tl.camera), tour_seconds: tourTimer ? Math.max(3, Number(secs.value) || 10) : 0 };
    try {
      await putLayout(app.api, l);
      msg.textContent = t('live.saved');
      localStorage.setItem(lastKey, name);
      await refreshLayouts(name);
    } catch (e) {
      msg.textContent = t('app.error', (e as Error).message);
    }
  }

  async function deleteCurrent(): Promise<void> {
    const name = layoutSel.value || layoutName.value.trim();
    if (!name) return;
    try {
      await deleteLayout(app.api, name);
      msg.textContent = t('live.deleted');
      if (localStorage.getItem(lastKey) === name) localStorage.removeItem(lastKey);
      layoutName.value = '';
      await refreshLayouts();
    } catch (e) {
      msg.textContent = t('app.error', (e as Error).message);
    }
  }

  const onKey = (e: KeyboardEvent) => {
    const tag = (e.target as HTMLElement).tagName;
    if (tag === 'INPUT' || tag === 'SELECT' || tag === 'TEXTAREA') return;
    if (e.shiftKey && ['!', '@', '#', '$', '1', '2', '3', '4'].includes(e.key)) {
      const i = ['!', '@', '#', '$'].indexOf(e.key) >= 0 ? ['!', '@', '#', '$'].indexOf(e.key) : Number(e.key) - 1;
      setGrid(grids[i]);
    } else if (e.key === 't' || e.key === 'T') toggleTour();
    else if (e.key === 'Escape' && enlarged >= 0) toggleEnlarge(enlarged);
  };
  document.addEventListener('keydown', onKey);
  setGrid(grids.includes(grid) ? grid : 4);
  const last = localStorage.getItem(lastKey) ?? '';
  refreshLayouts(last).then(() => { if (last && layoutSel.value === last) applySaved(); });

  return () => {
    document.removeEventListener('keydown', onKey);
    stopTour();
    tiles.forEach(tl => tl.player?.stop());
    tree.destroy();
  };
}
