// Every string the app shows, in English and Simplified Chinese. t(key, vars, fallback) looks a
// key up in the current language, then English, then uses fallback (or the key).

const en = {
  'lang.label': 'Language',
  'loading': 'Loading…',
  'yes': 'Yes',
  'no': 'No',

  'nav.overview': 'Overview',
  'nav.activity': 'Activity',
  'nav.builds': 'Builds',
  'nav.logs': 'Logs',
  'nav.settings': 'Settings',
  'nav.runners': 'Runners',
  'nav.doctor': 'Doctor',
  'nav.logout': 'Sign out',

  'login.title': 'Sign in to Forgebox',
  'login.help': 'Paste the admin token. On the server, print it with: forgebox token',
  'login.token': 'Admin token',
  'login.submit': 'Sign in',
  'login.dsm': 'On a Synology NAS, open Forgebox from the DSM main menu instead: no token needed.',
  'login.empty': 'Paste the token first.',
  'login.wrong': 'That is not the admin token.',

  'error.network': 'Cannot reach the Forgebox controller. Is it running?',
  'error.generic': 'The controller answered with an error ({status}).',
  'error.unauthorized': 'Your session has ended; sign in again.',

  'toast.copied': 'Copied.',
  'toast.copyFailed': 'Could not copy: select the text and copy it yourself.',
  'toast.started': 'Started. Progress is shown below.',

  'dur.dh': '{d} d {h} h',
  'dur.hm': '{h} h {m} min',
  'dur.m': '{m} min',
  'dur.s': '{s} s',

  'engine.ok': 'Docker {version} · API {api}',
  'engine.down': 'Docker Engine unreachable',
  'engine.downLong': 'The Docker Engine does not answer; Forgebox keeps trying. Check Container Manager (or the docker service).',
  'engine.noController': 'Controller unreachable',

  'stack.running': 'Running',
  'stack.starting': 'Starting',
  'stack.degraded': 'Needs attention',
  'stack.stopped': 'Stopped',
  'stack.partial': 'Partly running',
  'stack.absent': 'Not set up',
  'stack.unknown': 'Unknown',
  'state.running': 'Running',
  'state.exited': 'Exited',
  'state.created': 'Created',
  'state.restarting': 'Restarting',
  'state.paused': 'Paused',
  'state.dead': 'Dead',
  'state.missing': 'Not created',
  'state.removing': 'Removing',
  'health.healthy': 'Healthy',
  'health.starting': 'Starting',
  'health.unhealthy': 'Unhealthy',
  'health.none': 'No health check',
  'health.unknown': 'Health not known yet',

  'overview.stack': 'Stack',
  'overview.busy': '{op} in progress…',
  'overview.components': 'Components',

  'op.up': 'Start',
  'op.down': 'Stop',
  'op.restart': 'Restart',

  'action.start': 'Start',
  'action.restart': 'Restart',
  'action.stop': 'Stop',
  'action.logs': 'Logs',
  'action.copy': 'Copy',
  'action.dismiss': 'Dismiss',
  'action.save': 'Save',
  'action.edit': 'Edit',
  'action.delete': 'Delete',
  'action.cancel': 'Cancel',
  'action.recheck': 'Check again',

  'confirm.restart': 'Restart every component? GitLab is unavailable until it is back.',
  'confirm.stop': 'Stop the stack? Its containers are removed; all data is kept.',
  'confirm.stopOne': 'Stop this component? Its container is removed; its data is kept.',
  'confirm.deleteProfile': 'Delete the runner profile "{name}"? Its runner is unregistered at the next start.',

  'comp.image': 'Image',
  'comp.helper': 'Job helper',
  'comp.helper_missing': 'not on this engine: run up',
  'comp.uptime': 'Up for',
  'comp.memory': 'Memory',
  'comp.cpu': 'CPU',
  'comp.changed': 'Settings changed since this container was made: Start applies them.',
  'comp.memoryTrend': 'Memory use over the last minutes',

  'access.title': 'Reach GitLab',
  'access.web': 'Web',
  'access.ssh': 'SSH clone',
  'access.hostHint': 'The host "{host}" is this machine\'s own name. If other computers cannot reach it by that name, set GitLab host in Settings.',
  'access.rootPassword': 'root password',
  'access.reveal': 'Show the root password',
  'access.rootHelp': 'Sign in to GitLab as root with the initial password, then change it.',
  'access.rootNotYet': 'The initial root password is created when GitLab is first set up.',

  'check.title': 'First steps',
  'check.engine': 'Docker Engine reachable',
  'check.settings': 'Settings reviewed and saved',
  'check.doctor': 'System checks pass',
  'check.started': 'Stack started',
  'check.healthy': 'Every component healthy',
  'check.rootpw': 'GitLab root password ready',
  'check.runner': 'Runner running',

  'progress.running': 'In progress',
  'progress.done': 'Done',
  'progress.failed': 'Failed',
  'progress.layers': '{n} layers',

  'activity.title': 'Activity',
  'activity.empty': 'Nothing has happened yet.',
  'kind.plan': 'Plan',
  'kind.step': 'Step',
  'kind.pull': 'Pull',
  'kind.wait': 'Waiting',
  'kind.info': 'Info',
  'kind.error': 'Error',
  'kind.done': 'Done',

  'logs.title': 'Logs',
  'logs.component': 'Component',
  'logs.lastN': 'Last {n} lines',
  'logs.follow': 'Follow',
  'logs.wrap': 'Wrap lines',
  'logs.noContainer': 'This component has no container yet: start it first.',
  'logs.empty': 'No output yet.',

  'settings.title': 'Settings',
  'settings.intro': 'Changes are checked before anything is saved. Saved changes take effect at the next Start.',
  'settings.file': 'Saved in {path}',
  'settings.noFile': 'Using the built-in defaults; saving creates {path}',
  'settings.saved': 'Settings saved. Press Start on the overview to apply them.',
  'settings.invalid': 'Nothing was saved: {n} settings need a change; each one says why beside it.',
  'settings.changedOnDisk': 'Nothing was saved: {path} was edited outside forgebox after the controller loaded it, and saving would undo that edit. Restart forgebox so it loads the file, then make the change again.',
  'settings.stale': 'Nothing was saved: the config file changed since this page read it. Reload the page and make the change again.',
  'section.stack': 'Stack',
  'section.gitlab': 'GitLab',
  'section.postgres': 'PostgreSQL',
  'section.redis': 'Redis',
  'section.runner': 'GitLab Runner',
  'field.stack.name': 'Stack name',
  'field.stack.data_dir': 'Data folder',
  'field.stack.share_dir': 'GitLab data and backups folder',
  'field.stack.pull_policy': 'Download images',
  'field.stack.pull_via': 'Who downloads images',
  'field.stack.registry_mirrors': 'Registry mirrors',
  'help.stack.pull_via': 'Automatic: the engine downloads, and forgebox takes over (resuming) when that fails or when mirrors are set.',
  'help.stack.registry_mirrors': 'Asked in turn before Docker Hub, e.g. https://mirror.example; another registry’s mirror as registry.gitlab.com=https://mirror.example. Separate with commas.',
  'opt.stack.pull_via.auto': 'Automatic',
  'opt.stack.pull_via.forgebox': 'Forgebox (resumes after cuts)',
  'opt.stack.pull_via.engine': 'The engine (Docker)',
  'field.gitlab.host': 'GitLab host',
  'field.gitlab.http_port': 'HTTP port',
  'field.gitlab.ssh_port': 'SSH port',
  'field.gitlab.flavour': 'GitLab image family',
  'field.gitlab.image': 'GitLab image',
  'field.gitlab.memory': 'Memory profile',
  'field.gitlab.time_zone': 'Time zone',
  'field.gitlab.admin_email': 'Administrator e-mail',
  'field.postgres.image': 'PostgreSQL image',
  'field.postgres.superuser': 'Superuser name',
  'field.redis.image': 'Redis image',
  'field.runner.image': 'Runner image',
  'field.runner.helper_image': 'Helper image',
  'field.runner.concurrent': 'Jobs at once',
  'help.stack.name': 'Prefix of the container names.',
  'help.stack.data_dir': 'Holds the databases and the secrets; change it in the config file only.',
  'help.stack.share_dir': 'Empty: a folder inside the data folder.',
  'help.gitlab.host': 'The name or address other computers reach this machine by; it goes into every clone URL. Empty: this machine\'s host name.',
  'help.gitlab.http_port': 'DSM keeps 80, 443, 5000 and 5001 for itself.',
  'help.gitlab.ssh_port': 'DSM keeps 22 for itself.',
  'help.gitlab.memory': '"small" suits boxes with 4 GiB of memory.',
  'help.gitlab.time_zone': 'A name such as Europe/Berlin. Empty: this machine\'s time zone.',
  'help.runner.helper_image': 'Empty: the helper of the runner\'s version for this machine, pulled by "up". Set it where registry.gitlab.com cannot be reached.',
  'help.runner.concurrent': 'Jobs that run at the same time over all profiles.',
  'opt.stack.pull_policy.missing': 'When missing',
  'opt.stack.pull_policy.always': 'Always',
  'opt.stack.pull_policy.never': 'Never (offline)',
  'opt.gitlab.memory.small': 'Small',
  'opt.gitlab.memory.standard': 'Standard',

  'runners.title': 'Runners',
  'runners.intro': 'Each profile is one registered runner: the image its jobs run in and the tags it picks up. Changes take effect at the next Start.',
  'runners.add': 'Add profile',
  'runners.new': 'New profile',
  'runners.edit': 'Edit profile "{name}"',
  'runners.saved': 'Profile saved.',
  'runners.deleted': 'Profile deleted.',
  'profile.name': 'Name',
  'profile.image': 'Job image',
  'profile.tags': 'Tags',
  'profile.run_untagged': 'Run untagged jobs',
  'profile.privileged': 'Privileged',
  'profile.limits': 'Limits',
  'profile.cpus': 'CPUs',
  'profile.memory': 'Memory',
  'profile.runsOn': 'Jobs run on',
  'profile.onNAS': 'this NAS',
  'profile.onEngine': 'Docker Engine',
  'profile.onKubernetes': 'Kubernetes',
  'profile.concurrency': 'Jobs at once',
  'help.profile.tags': 'Separate with commas, e.g. docker, linux',
  'help.profile.cpus': 'e.g. 1.5; empty: no limit',
  'help.profile.memory': 'e.g. 2g; empty: no limit',
  'help.profile.privileged': 'Only for trusted projects whose jobs need Docker-in-Docker. Never on by default.',
  'profile.privilegedYes': 'Yes: the whole NAS',
  'runners.privilegedWarning': 'privileged: its jobs get the whole NAS (root on the host: every share, the Docker Engine and every container, forgebox\'s secrets included). Anyone who can push a .gitlab-ci.yml that runs on it owns the box.',

  'doctor.title': 'System checks',
  'doctor.ok': 'OK',
  'doctor.warn': 'Warning',
  'doctor.fail': 'Failed',
};

const zh = {
  'lang.label': '语言',
  'loading': '加载中…',
  'yes': '是',
  'no': '否',

  'nav.overview': '概览',
  'nav.activity': '活动',
  'nav.builds': '构建',
  'nav.logs': '日志',
  'nav.settings': '设置',
  'nav.runners': 'Runner',
  'nav.doctor': '系统检查',
  'nav.logout': '退出登录',

  'login.title': '登录 Forgebox',
  'login.help': '请粘贴管理员令牌。在服务器上可用命令 forgebox token 显示它。',
  'login.token': '管理员令牌',
  'login.submit': '登录',
  'login.dsm': '在群晖 NAS 上，请从 DSM 主菜单打开 Forgebox，无需令牌。',
  'login.empty': '请先粘贴令牌。',
  'login.wrong': '令牌不正确。',

  'error.network': '无法连接 Forgebox 控制器，它是否在运行？',
  'error.generic': '控制器返回错误（{status}）。',
  'error.unauthorized': '会话已结束，请重新登录。',

  'toast.copied': '已复制。',
  'toast.copyFailed': '无法复制：请手动选中文本复制。',
  'toast.started': '已开始，进度显示在下方。',

  'dur.dh': '{d} 天 {h} 小时',
  'dur.hm': '{h} 小时 {m} 分钟',
  'dur.m': '{m} 分钟',
  'dur.s': '{s} 秒',

  'engine.ok': 'Docker {version} · API {api}',
  'engine.down': '无法连接 Docker Engine',
  'engine.downLong': 'Docker Engine 没有响应，Forgebox 会继续重试。请检查 Container Manager（或 docker 服务）。',
  'engine.noController': '无法连接控制器',

  'stack.running': '运行中',
  'stack.starting': '启动中',
  'stack.degraded': '需要处理',
  'stack.stopped': '已停止',
  'stack.partial': '部分运行',
  'stack.absent': '尚未部署',
  'stack.unknown': '未知',
  'state.running': '运行中',
  'state.exited': '已退出',
  'state.created': '已创建',
  'state.restarting': '重启中',
  'state.paused': '已暂停',
  'state.dead': '已失效',
  'state.missing': '未创建',
  'state.removing': '删除中',
  'health.healthy': '健康',
  'health.starting': '启动中',
  'health.unhealthy': '不健康',
  'health.none': '无健康检查',
  'health.unknown': '健康状况暂未知',

  'overview.stack': '服务栈',
  'overview.busy': '正在{op}…',
  'overview.components': '组件',

  'op.up': '启动',
  'op.down': '停止',
  'op.restart': '重启',

  'action.start': '启动',
  'action.restart': '重启',
  'action.stop': '停止',
  'action.logs': '日志',
  'action.copy': '复制',
  'action.dismiss': '关闭',
  'action.save': '保存',
  'action.edit': '编辑',
  'action.delete': '删除',
  'action.cancel': '取消',
  'action.recheck': '重新检查',

  'confirm.restart': '要重启所有组件吗？重启完成前 GitLab 无法使用。',
  'confirm.stop': '要停止服务栈吗？容器会被删除，所有数据都会保留。',
  'confirm.stopOne': '要停止此组件吗？它的容器会被删除，数据会保留。',
  'confirm.deleteProfile': '要删除 Runner 配置“{name}”吗？下次启动时会注销它的 Runner。',

  'comp.image': '镜像',
  'comp.helper': '作业辅助镜像',
  'comp.helper_missing': '本机没有：请运行 up',
  'comp.uptime': '已运行',
  'comp.memory': '内存',
  'comp.cpu': 'CPU',
  'comp.changed': '此容器创建后设置已更改：点击“启动”即可应用。',
  'comp.memoryTrend': '最近几分钟的内存用量',

  'access.title': '访问 GitLab',
  'access.web': '网页',
  'access.ssh': 'SSH 克隆',
  'access.hostHint': '主机名“{host}”是本机自己的名称。如果其他电脑无法通过它访问，请在设置中填写 GitLab 主机。',
  'access.rootPassword': 'root 密码',
  'access.reveal': '显示 root 密码',
  'access.rootHelp': '请用初始密码以 root 身份登录 GitLab，然后修改密码。',
  'access.rootNotYet': '首次部署 GitLab 时才会生成初始 root 密码。',

  'check.title': '入门步骤',
  'check.engine': 'Docker Engine 可以连接',
  'check.settings': '已检查并保存设置',
  'check.doctor': '系统检查通过',
  'check.started': '服务栈已启动',
  'check.healthy': '所有组件均健康',
  'check.rootpw': 'GitLab root 密码已就绪',
  'check.runner': 'Runner 正在运行',

  'progress.running': '进行中',
  'progress.done': '已完成',
  'progress.failed': '失败',
  'progress.layers': '{n} 个镜像层',

  'activity.title': '活动',
  'activity.empty': '暂无活动。',
  'kind.plan': '计划',
  'kind.step': '步骤',
  'kind.pull': '下载',
  'kind.wait': '等待',
  'kind.info': '信息',
  'kind.error': '错误',
  'kind.done': '完成',

  'logs.title': '日志',
  'logs.component': '组件',
  'logs.lastN': '最近 {n} 行',
  'logs.follow': '自动刷新',
  'logs.wrap': '自动换行',
  'logs.noContainer': '此组件还没有容器，请先启动它。',
  'logs.empty': '暂无输出。',

  'settings.title': '设置',
  'settings.intro': '保存前会先检查所有更改。保存的更改在下次“启动”时生效。',
  'settings.file': '保存在 {path}',
  'settings.noFile': '正在使用内置默认值；保存后会创建 {path}',
  'settings.saved': '设置已保存。请在概览页点击“启动”以应用。',
  'settings.invalid': '未保存任何内容：有 {n} 项设置需要修改，原因写在各项旁边。',
  'settings.changedOnDisk': '未保存任何内容：控制器加载 {path} 之后，该文件在 forgebox 之外被修改过，此时保存会覆盖那些修改。请重启 forgebox 让它加载该文件，然后再做一次此更改。',
  'settings.stale': '未保存任何内容：此页面读取配置文件之后，该文件已被修改。请重新加载页面，然后再做一次此更改。',
  'section.stack': '服务栈',
  'section.gitlab': 'GitLab',
  'section.postgres': 'PostgreSQL',
  'section.redis': 'Redis',
  'section.runner': 'GitLab Runner',
  'field.stack.name': '服务栈名称',
  'field.stack.data_dir': '数据文件夹',
  'field.stack.share_dir': 'GitLab 数据与备份文件夹',
  'field.stack.pull_policy': '下载镜像',
  'field.stack.pull_via': '由谁下载镜像',
  'field.stack.registry_mirrors': '镜像加速地址',
  'help.stack.pull_via': '自动：由引擎下载，失败时或设置了加速地址时由 Forgebox 接手（可续传）。',
  'help.stack.registry_mirrors': '在访问 Docker Hub 之前依次请求，例如 https://mirror.example；其他仓库的加速地址写作 registry.gitlab.com=https://mirror.example。多个地址用逗号分隔。',
  'opt.stack.pull_via.auto': '自动',
  'opt.stack.pull_via.forgebox': 'Forgebox（断线后可续传）',
  'opt.stack.pull_via.engine': '引擎（Docker）',
  'field.gitlab.host': 'GitLab 主机',
  'field.gitlab.http_port': 'HTTP 端口',
  'field.gitlab.ssh_port': 'SSH 端口',
  'field.gitlab.flavour': 'GitLab 镜像类型',
  'field.gitlab.image': 'GitLab 镜像',
  'field.gitlab.memory': '内存配置',
  'field.gitlab.time_zone': '时区',
  'field.gitlab.admin_email': '管理员邮箱',
  'field.postgres.image': 'PostgreSQL 镜像',
  'field.postgres.superuser': '超级用户名',
  'field.redis.image': 'Redis 镜像',
  'field.runner.image': 'Runner 镜像',
  'field.runner.helper_image': '作业辅助镜像',
  'field.runner.concurrent': '同时运行的作业数',
  'help.stack.name': '容器名称的前缀。',
  'help.stack.data_dir': '存放数据库和密钥；只能在配置文件中修改。',
  'help.stack.share_dir': '留空：数据文件夹中的一个子文件夹。',
  'help.gitlab.host': '其他电脑访问本机所用的名称或地址，会写入每个克隆地址。留空：本机主机名。',
  'help.gitlab.http_port': 'DSM 自己占用 80、443、5000 和 5001。',
  'help.gitlab.ssh_port': 'DSM 自己占用 22。',
  'help.gitlab.memory': '“小”适合 4 GiB 内存的设备。',
  'help.gitlab.time_zone': '例如 Asia/Shanghai。留空：本机的时区。',
  'help.runner.helper_image': '留空：与 Runner 版本和本机架构匹配的辅助镜像，由 “up” 拉取。无法访问 registry.gitlab.com 时请设置。',
  'help.runner.concurrent': '所有配置合计同时运行的作业数。',
  'opt.stack.pull_policy.missing': '缺少时下载',
  'opt.stack.pull_policy.always': '总是下载',
  'opt.stack.pull_policy.never': '从不（离线）',
  'opt.gitlab.memory.small': '小',
  'opt.gitlab.memory.standard': '标准',

  'runners.title': 'Runner',
  'runners.intro': '每个配置对应一个已注册的 Runner：作业运行所用的镜像和它接收的标签。更改在下次“启动”时生效。',
  'runners.add': '添加配置',
  'runners.new': '新配置',
  'runners.edit': '编辑配置“{name}”',
  'runners.saved': '配置已保存。',
  'runners.deleted': '配置已删除。',
  'profile.name': '名称',
  'profile.image': '作业镜像',
  'profile.tags': '标签',
  'profile.run_untagged': '运行无标签作业',
  'profile.privileged': '特权模式',
  'profile.limits': '资源限制',
  'profile.cpus': 'CPU',
  'profile.memory': '内存',
  'profile.runsOn': '作业运行于',
  'profile.onNAS': '本 NAS',
  'profile.onEngine': 'Docker Engine',
  'profile.onKubernetes': 'Kubernetes',
  'profile.concurrency': '同时运行的作业数',
  'help.profile.tags': '用逗号分隔，例如 docker, linux',
  'help.profile.cpus': '例如 1.5；留空：不限制',
  'help.profile.memory': '例如 2g；留空：不限制',
  'help.profile.privileged': '仅用于作业需要 Docker-in-Docker 的可信项目。默认从不开启。',
  'profile.privilegedYes': '是：整台 NAS',
  'runners.privilegedWarning': '特权模式：其作业将获得整台 NAS（主机上的 root 权限：所有共享文件夹、Docker Engine 及所有容器，包括 forgebox 的密钥）。任何能推送在其上运行的 .gitlab-ci.yml 的人都能完全控制这台设备。',

  'doctor.title': '系统检查',
  'doctor.ok': '正常',
  'doctor.warn': '警告',
  'doctor.fail': '失败',
};

export const dictionaries = { en, 'zh-CN': zh };
export const languages = Object.keys(dictionaries);

const STORE_KEY = 'forgebox.lang';
let current = 'en';

// normalize maps a DSM language code (enu, chs, cht, ...) or a browser tag (zh-CN, en-US)
// to one of ours, or '' when there is none.
export function normalize(code) {
  if (!code) return '';
  const c = String(code).toLowerCase().replace('_', '-');
  if (c === 'chs' || c === 'cht' || c.startsWith('zh')) return 'zh-CN';
  if (c === 'enu' || c === 'def' || c.startsWith('en')) return 'en';
  return '';
}

function stored() {
  try { return localStorage.getItem(STORE_KEY) || ''; } catch (e) { return ''; }
}

// detectLang picks: ?lang= in the address, then the user's own choice, then DSM's language
// (passed by the DSM front), then the browser's languages, then English.
export function detectLang(dsmLang, urlLang) {
  for (const c of [urlLang, stored(), dsmLang, ...(navigator.languages || [navigator.language])]) {
    const n = normalize(c);
    if (n) return n;
  }
  return 'en';
}

export function setLang(lang, remember) {
  current = dictionaries[lang] ? lang : 'en';
  if (remember) {
    try { localStorage.setItem(STORE_KEY, current); } catch (e) { /* private mode */ }
  }
}

export function getLang() { return current; }

export function t(key, vars, fallback) {
  let s = dictionaries[current][key];
  if (s === undefined) s = en[key];
  if (s === undefined) s = fallback !== undefined && fallback !== null ? fallback : key;
  if (vars) s = s.replace(/\{(\w+)\}/g, (m, k) => (vars[k] !== undefined ? String(vars[k]) : m));
  return s;
}

// applyI18n fills every element marked data-i18n with its string.
export function applyI18n(root) {
  for (const el of root.querySelectorAll('[data-i18n]')) {
    el.textContent = t(el.dataset.i18n, null, el.dataset.i18nFallback);
  }
  document.documentElement.lang = current;
}
