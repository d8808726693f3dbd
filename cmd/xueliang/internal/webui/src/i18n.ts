// Interface strings: zh-CN first, English by the toggle in the header (kept
// in localStorage). Every visible string goes through t(key); {0}, {1}…
// are replaced by the arguments.

export type Lang = 'zh-CN' | 'en';

const zh: Record<string, string> = {
  'app.title': '雪亮工程 视频监控',
  'app.lang': 'English',
  'app.logout': '退出',
  'app.help': '快捷键',
  'app.loading': '加载中…',
  'app.error': '出错：{0}',
  'app.empty': '（空）',
  'app.close': '关闭',
  'app.save': '保存',
  'app.cancel': '取消',
  'app.notyet': '此页面尚在建设中。',
  'nav.live': '实时',
  'nav.replay': '回放',
  'nav.search': '移动侦测检索',
  'nav.exports': '导出',
  'nav.cameras': '摄像机',
  'nav.import': '批量导入',
  'nav.audit': '审计',
  'nav.health': '运行状态',
  'role.admin': '管理员',
  'role.installer': '安装人员',
  'role.operator': '值班员',
  'role.auditor': '审计员',
  'login.title': '登录',
  'login.user': '用户名',
  'login.password': '密码',
  'login.submit': '登录',
  'login.bad': '用户名或密码错误',
  'login.throttled': '登录失败次数过多，请稍后再试',
  'help.title': '键盘快捷键',
  'help.key.help': '显示/隐藏本帮助',
  'help.key.nav': '切换页面（1 实时 … 按导航顺序）',
  'help.key.lang': '切换中文/英文',
  'help.key.search': '聚焦摄像机搜索',
  'help.key.layout': '实时：1/4/9/16 分屏（Shift+1…4）',
  'help.key.tour': '实时：开始/停止轮巡',
  'help.key.esc': '退出放大/关闭窗口',
};

const en: Record<string, string> = {
  'app.title': 'Xueliang video surveillance',
  'app.lang': '中文',
  'app.logout': 'Log out',
  'app.help': 'Shortcuts',
  'app.loading': 'Loading…',
  'app.error': 'Error: {0}',
  'app.empty': '(empty)',
  'app.close': 'Close',
  'app.save': 'Save',
  'app.cancel': 'Cancel',
  'app.notyet': 'This page is under construction.',
  'nav.live': 'Live',
  'nav.replay': 'Replay',
  'nav.search': 'Motion search',
  'nav.exports': 'Exports',
  'nav.cameras': 'Cameras',
  'nav.import': 'Import',
  'nav.audit': 'Audit',
  'nav.health': 'Health',
  'role.admin': 'Administrator',
  'role.installer': 'Installer',
  'role.operator': 'Operator',
  'role.auditor': 'Auditor',
  'login.title': 'Log in',
  'login.user': 'User name',
  'login.password': 'Password',
  'login.submit': 'Log in',
  'login.bad': 'Bad user name or password',
  'login.throttled': 'Too many failed logins; try again later',
  'help.title': 'Keyboard shortcuts',
  'help.key.help': 'Show/hide this help',
  'help.key.nav': 'Go to page (in navigation order)',
  'help.key.lang': 'Switch Chinese/English',
  'help.key.search': 'Focus the camera search',
  'help.key.layout': 'Live: 1/4/9/16 tiles (Shift+1…4)',
  'help.key.tour': 'Live: start/stop the tour',
  'help.key.esc': 'Leave the enlarged tile / close a dialog',
};

const dicts: Record<Lang, Record<string, string>> = { 'zh-CN': zh, en };

// extend adds a page's strings (pages keep their own keys next to them).
export function extend(lang: Lang, strings: Record<string, string>): void {
  Object.assign(dicts[lang], strings);
}

let lang: Lang = localStorage.getItem('xl.lang') === 'en' ? 'en' : 'zh-CN';

export function getLang(): Lang { return lang; }

export function setLang(l: Lang): void {
  lang = l;
  localStorage.setItem('xl.lang', l);
  document.documentElement.lang = l;
}

export function t(key: string, ...args: (string | number)[]): string {
  const s = dicts[lang][key] ?? dicts['zh-CN'][key] ?? key;
  return args.length ? s.replace(/\{(\d+)\}/g, (_, i) => String(args[Number(i)] ?? '')) : s;
}
