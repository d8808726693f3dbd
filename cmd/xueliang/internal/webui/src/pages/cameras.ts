// The cameras page (#/cameras): the camera tree, and for the camera picked
// its registry entry. Installers and admins (camera.write) add and edit
// cameras here: "probe" connects to the stream URL (POST /api/v1/probe)
// and shows the codec, resolution, frame rate, bitrate and a snapshot
// before anything is saved.
import type { App } from '../app';
import { ApiError, type Camera } from '../api';
import { h, clear } from '../dom';
import { t, extend } from '../i18n';
import { cameraTree } from '../tree';

extend('zh-CN', {
  'cam.add': '添加摄像机',
  'cam.edit': '编辑摄像机',
  'cam.view': '摄像机信息',
  'cam.pick': '在左侧选择摄像机。',
  'cam.id': '国标编码',
  'cam.nextid': '生成编码',
  'cam.name': '名称',
  'cam.township': '乡镇',
  'cam.village': '村',
  'cam.main_url': '主码流 RTSP 地址',
  'cam.sub_url': '子码流 RTSP 地址',
  'cam.username': '用户名',
  'cam.password': '密码',
  'cam.password.keep': '（不修改则留空）',
  'cam.motion': '移动侦测',
  'cam.enabled': '启用',
  'cam.probe': '探测',
  'cam.probing': '探测中…',
  'cam.probe.ok': '{0} {1}×{2} {3} fps，{4} kbit/s，连接 {5} ms',
  'cam.saved': '已保存',
  'cam.readonly': '您的角色只能查看摄像机。',
});
extend('en', {
  'cam.add': 'Add camera',
  'cam.edit': 'Edit camera',
  'cam.view': 'Camera',
  'cam.pick': 'Pick a camera in the tree.',
  'cam.id': 'GB/T 28181 ID',
  'cam.nextid': 'Next free ID',
  'cam.name': 'Name',
  'cam.township': 'Township',
  'cam.village': 'Village',
  'cam.main_url': 'Main stream RTSP URL',
  'cam.sub_url': 'Sub stream RTSP URL',
  'cam.username': 'User',
  'cam.password': 'Password',
  'cam.password.keep': '(leave empty to keep)',
  'cam.motion': 'Motion detection',
  'cam.enabled': 'Enabled',
  'cam.probe': 'Probe',
  'cam.probing': 'Probing…',
  'cam.probe.ok': '{0} {1}×{2} {3} fps, {4} kbit/s, connected in {5} ms',
  'cam.saved': 'Saved',
  'cam.readonly': 'Your role can only view cameras.',
});

interface ProbeResult {
  video: { codec: string; width: number; height: number; fps: number; bitrate: number };
  connect_ms: number;
  snapshot?: { content_type: string; data: string } | null;
  snapshot_error?: string;
}

export function mount(root: HTMLElement, app: App): () => void {
  let selected = '';
  const detail = h('section', { class: 'panel', id: 'camera-detail' });
  const tree = cameraTree(app, { onPick: c => { selected = c.id; show(c.id); }, selected: () => selected });
  const canWrite = app.can('camera.write');
  root.appendChild(h('div', { class: 'split' }, tree.el, detail));

  async function show(id: string): Promise<void> {
    try {
      form(await app.api.camera(id));
    } catch (e) {
      clear(detail, h('p', { class: 'error' }, t('app.error', (e as Error).message)));
    }
  }

  function form(cam: Camera | null): void {
    const f = (name: keyof Camera | 'password', label: string, value: string, attrs: Record<string, unknown> = {}) => {
      const input = h('input', { name, value, disabled: !canWrite, ...attrs });
      return { input, el: h('label', null, t(label), input) };
    };
    const id = f('id', 'cam.id', cam?.id ?? '', { disabled: !canWrite || !!cam, pattern: '[0-9A-Za-z_-]+' });
    const name = f('name', 'cam.name', cam?.name ?? '');
    const town = f('township', 'cam.township', cam?.township ?? app.me?.townships[0] ?? '');
    const village = f('village', 'cam.village', cam?.village ?? '');
    const main = f('main_url', 'cam.main_url', cam?.main_url ?? '', { placeholder: 'rtsp://192.168.1.64:554/Streaming/Channels/101' });
    const sub = f('sub_url', 'cam.sub_url', cam?.sub_url ?? '');
    const user = f('username', 'cam.username', cam?.username ?? '', { autocomplete: 'off' });
    const pass = f('password', 'cam.password', '', { type: 'password', autocomplete: 'new-password', placeholder: cam?.has_password ? t('cam.password.keep') : '' });
    const motion = h('input', { type: 'checkbox', checked: cam?.motion ?? false, disabled: !canWrite });
    const enabled = h('input', { type: 'checkbox', checked: cam?.enabled ?? true, disabled: !canWrite });
    const msg = h('p', { class: 'muted', id: 'camera-msg' });
    const preview = h('div', { class: 'preview', id: 'probe-preview' });
    const nextID = h('button', {
      type: 'button', id: 'next-id', onclick: async () => {
        try {
          const r = await app.api.json<{ id: string }>('GET', `/api/v1/sites/next-id?township=${encodeURIComponent(town.input.value)}&village=${encodeURIComponent(village.input.value)}`);
          id.input.value = r.id;
        } catch (e) { msg.textContent = t('app.error', (e as Error).message); }
      },
    }, t('cam.nextid'));
    const probe = h('button', {
      type: 'button', id: 'probe', onclick: async () => {
        msg.textContent = t('cam.probing');
        clear(preview);
        try {
          const body: Record<string, string> = { url: main.input.value };
          if (user.input.value) body.user = user.input.value;
          if (pass.input.value) body.password = pass.input.value;
          const r = await app.api.json<ProbeResult>('POST', '/api/v1/probe', body);
          msg.textContent = t('cam.probe.ok', r.video.codec, r.video.width, r.video.height, r.video.fps.toFixed(1), Math.round(r.video.bitrate / 1000), r.connect_ms);
          if (r.snapshot) preview.appendChild(h('img', { id: 'probe-snapshot', src: `data:${r.snapshot.content_type};base64,${r.snapshot.data}`, alt: 'snapshot' }));
          else if (r.snapshot_error) preview.appendChild(h('p', { class: 'muted' }, r.snapshot_error));
        } catch (e) {
          msg.textContent = t('app.error', (e as Error).message);
        }
      },
    }, t('cam.probe'));
    const save = async (e: Event) => {
      e.preventDefault();
      const body: Record<string, unknown> = {
        id: id.input.value.trim(), name: name.input.value, township: town.input.value, village: village.input.value,
        main_url: main.input.value, sub_url: sub.input.value, username: user.input.value, motion: motion.checked, enabled: enabled.checked,
      };
      if (pass.input.value) body.password = pass.input.value;
      try {
        if (cam) await app.api.json('PATCH', '/api/v1/cameras/' + encodeURIComponent(cam.id), (delete body.id, body));
        else await app.api.json('POST', '/api/v1/cameras', body);
        msg.textContent = t('cam.saved');
        selected = String(id.input.value);
      } catch (err) {
        const fields = err instanceof ApiError ? err.body.fields as Record<string, string> | undefined : undefined;
        msg.textContent = t('app.error', fields ? Object.entries(fields).map(([k, v]) => `${k}: ${v}`).join('; ') : (err as Error).message);
      }
    };
    // The live snapshot of a registered camera (GET …/snapshot.jpg).
    if (cam && app.can('live')) {
      app.api.blobURL(`/api/v1/cameras/${encodeURIComponent(cam.id)}/snapshot.jpg`)
        .then(u => preview.appendChild(h('img', { src: u, alt: 'snapshot', id: 'camera-snapshot' }))).catch(() => {});
    }
    clear(detail,
      h('h1', null, cam ? (canWrite ? t('cam.edit') : t('cam.view')) : t('cam.add')),
      !canWrite && h('p', { class: 'muted' }, t('cam.readonly')),
      h('form', { class: 'form camform', onsubmit: save },
        h('div', { class: 'cols' },
          h('div', null, id.el, canWrite && !cam && nextID, name.el, town.el, village.el,
            h('label', { class: 'check' }, motion, t('cam.motion')), h('label', { class: 'check' }, enabled, t('cam.enabled'))),
          h('div', null, main.el, sub.el, user.el, pass.el,
            canWrite && h('div', { class: 'toolbar' }, probe, h('button', { type: 'submit', class: 'primary', id: 'camera-save' }, t('app.save'))),
            msg)),
        preview));
  }

  if (canWrite) {
    clear(detail, h('p', { class: 'muted' }, t('cam.pick')), h('button', { class: 'primary', id: 'camera-add', onclick: () => { selected = ''; form(null); } }, t('cam.add')));
  } else {
    clear(detail, h('p', { class: 'muted' }, t('cam.pick')));
  }
  return () => tree.destroy();
}
