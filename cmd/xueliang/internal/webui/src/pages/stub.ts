// stub is the placeholder of a page not built yet: it says so.
import type { App } from '../app';
import { h } from '../dom';
import { t } from '../i18n';

export function stub(name: string) {
  return (root: HTMLElement, _app: App): (() => void) => {
    root.appendChild(h('section', { class: 'panel' }, h('h1', null, t('nav.' + name)), h('p', { class: 'muted' }, t('app.notyet'))));
    return () => {};
  };
}
