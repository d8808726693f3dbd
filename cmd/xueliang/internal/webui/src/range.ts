// A time range picker: presets (last 15 min … 7 days) and from/to inputs
// in the browser's local time, to the second. Used by the search and
// exports pages.
import { h } from './dom';
import { t, extend } from './i18n';

extend('zh-CN', {
  'range.from': '开始',
  'range.to': '结束',
  'range.15m': '15 分钟',
  'range.1h': '1 小时',
  'range.6h': '6 小时',
  'range.24h': '24 小时',
  'range.7d': '7 天',
  'range.bad': '开始时间必须早于结束时间',
});
extend('en', {
  'range.from': 'From',
  'range.to': 'To',
  'range.15m': '15 min',
  'range.1h': '1 hour',
  'range.6h': '6 hours',
  'range.24h': '24 hours',
  'range.7d': '7 days',
  'range.bad': 'From must be before To',
});

const presets: [string, number][] = [['15m', 15 * 60e3], ['1h', 3600e3], ['6h', 6 * 3600e3], ['24h', 24 * 3600e3], ['7d', 7 * 24 * 3600e3]];

// localInput formats d for an <input type=datetime-local step=1>.
export function localInput(d: Date): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

// fmtTime shows an instant in local time to the second (the date too when
// it is not today).
export function fmtTime(d: Date): string {
  const s = localInput(d).replace('T', ' ');
  return localInput(d).slice(0, 10) === localInput(new Date()).slice(0, 10) ? s.slice(11) : s;
}

export interface RangePicker {
  el: HTMLElement;
  // range returns [from, to], or null (and says why on the page) when it
  // is not a valid range.
  range(): [Date, Date] | null;
  set(from: Date, to: Date): void;
}

export function rangePicker(prefix: string, initial = 3600e3): RangePicker {
  const from = h('input', { type: 'datetime-local', step: '1', id: prefix + '-from' });
  const to = h('input', { type: 'datetime-local', step: '1', id: prefix + '-to' });
  const err = h('span', { class: 'error', id: prefix + '-range-error' });
  const set = (a: Date, b: Date) => { from.value = localInput(a); to.value = localInput(b); err.textContent = ''; };
  const buttons = presets.map(([k, ms]) => h('button', {
    type: 'button', 'data-preset': k,
    onclick: () => { const now = new Date(); set(new Date(now.getTime() - ms), now); },
  }, t('range.' + k)));
  const now = new Date();
  set(new Date(now.getTime() - initial), now);
  const el = h('div', { class: 'range' }, buttons,
    h('label', { class: 'inline' }, t('range.from'), from),
    h('label', { class: 'inline' }, t('range.to'), to), err);
  return {
    el,
    set,
    range() {
      const a = new Date(from.value), b = new Date(to.value);
      if (isNaN(a.getTime()) || isNaN(b.getTime()) || a >= b) { err.textContent = t('range.bad'); return null; }
      err.textContent = '';
      return [a, b];
    },
  };
}

// isTyping reports whether a keyboard event goes to a form field (page
// shortcuts leave those alone).
export function isTyping(e: KeyboardEvent): boolean {
  const el = e.target as HTMLElement;
  return el.tagName === 'INPUT' || el.tagName === 'TEXTAREA' || el.tagName === 'SELECT' || el.isContentEditable;
}
