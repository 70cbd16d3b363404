package dsm

import "fmt"

// Messages the user reads in Package Center after a step (SYNOPKG_TEMP_LOGFILE), in DSM's UI
// language when forgebox speaks it, else English. Logs stay in English.
var messages = map[string]map[string]string{
	"enu": {
		"field.host":        "Host name",
		"field.http_port":   "HTTP port",
		"field.ssh_port":    "SSH port",
		"field.flavour":     "GitLab image",
		"field.memory":      "Memory",
		"field.admin_email": "Administrator e-mail",
		"field.mirrors":     "Mirrors",
		"field.pull_via":    "Who downloads the images",

		"refused":         "Forgebox cannot be installed with these settings:",
		"port.conflict":   "Port %d is already registered on this NAS by %s.",
		"port.in_use":     "Port %d is already in use on this NAS.",
		"port.controller": "Port %d on 127.0.0.1 is already in use; the Forgebox controller needs it. Stop what uses it, then install again.",
		"memory.refused":  "This NAS has %.1f GB of memory; GitLab needs at least 2 GB. Tick \"Install even if this NAS has less than 2 GB of memory\" to install anyway.",
		"memory.low":      "This NAS has %.1f GB of memory: below 4 GB GitLab is slow. Keep the small memory preset.",
		"installed":       "Forgebox is installed. When the package runs, it downloads and sets up GitLab (several GB); then GitLab answers at %s. The Forgebox window shows the progress.",
		"installed.kept":  "The configuration, secrets and data of the earlier installation were found and are used again.",
		"host.auto":       "GitLab's host name is %s, the name of this NAS. If other computers cannot reach the NAS by that name, change it in the Forgebox window.",
		"host.none":       "This NAS's name cannot be used as GitLab's host name; set one in the Forgebox window before the first start.",
		"upgraded":        "Forgebox was upgraded from %s to %s. Configuration, secrets and data are kept.",
		"upgrade.refused": "The new version of Forgebox does not accept the current configuration (%s). " +
			"The old version stays installed. Fix these settings in the Forgebox window, then upgrade again:",
		"config.invalid":               "The Forgebox configuration %s is not valid; fix it in the Forgebox window or in the file:",
		"uninstall.kept":               "Forgebox's configuration, secrets, database, Redis and GitLab data are kept in %s, and the backups in the shared folder %s. Installing Forgebox again uses them.",
		"uninstall.deleted":            "Forgebox's configuration, secrets and data are deleted. The shared folder %s is kept, with any backups in it: delete it in Control Panel > Shared Folder if you no longer need it.",
		"uninstall.images":             "The container images stay on this NAS: %s. If nothing else uses them, remove them in Container Manager > Image, or over SSH with: sudo docker rmi %s",
		"uninstall.images_removed":     "The stack's container images were removed: %s.",
		"uninstall.images_unreachable": "Forgebox could not reach Docker to remove the images (the package runs without access to it).",
		"gitlab.moving":                "GitLab's data moves from %s to %s, the package's own folder, when the stack next comes up: file permissions there work as GitLab needs. The old folder is renamed, not deleted: delete it once GitLab works. Backups stay in the shared folder.",
		"start.marker":                 "Forgebox cannot write %s (%v), so DSM would see it as stopped. Check that the package's var folder belongs to the package user.",
		"uninstall.leftover":           "These could not be deleted, because containers wrote them as other users: %s. An administrator can delete them over SSH with: sudo rm -rf %s",
	},
	"chs": {
		"field.host":        "主机名",
		"field.http_port":   "HTTP 端口",
		"field.ssh_port":    "SSH 端口",
		"field.flavour":     "GitLab 镜像",
		"field.memory":      "内存",
		"field.admin_email": "管理员电子邮件",
		"field.mirrors":     "加速地址",
		"field.pull_via":    "由谁下载镜像",

		"refused":                      "Forgebox 无法以这些设置安装：",
		"port.conflict":                "端口 %d 已被这台 NAS 上的 %s 登记使用。",
		"port.in_use":                  "端口 %d 已在这台 NAS 上被占用。",
		"port.controller":              "127.0.0.1 上的端口 %d 已被占用，而 Forgebox 控制器需要它。请先停止占用该端口的程序，再重新安装。",
		"memory.refused":               "这台 NAS 只有 %.1f GB 内存，GitLab 至少需要 2 GB。如仍要安装，请勾选“即使这台 NAS 的内存少于 2 GB 也继续安装”。",
		"memory.low":                   "这台 NAS 有 %.1f GB 内存：低于 4 GB 时 GitLab 运行较慢，请保留精简内存设置。",
		"installed":                    "Forgebox 已安装。套件运行后，会下载并设置 GitLab（数 GB），之后可通过 %s 访问 GitLab。进度显示在 Forgebox 窗口中。",
		"installed.kept":               "已找到之前安装的配置、密钥和数据，并将继续使用。",
		"host.auto":                    "GitLab 的主机名为 %s，即这台 NAS 的名称。如果其他电脑无法通过该名称访问 NAS，请在 Forgebox 窗口中修改。",
		"host.none":                    "无法使用这台 NAS 的名称作为 GitLab 主机名，请在首次启动前于 Forgebox 窗口中设置。",
		"upgraded":                     "Forgebox 已从 %s 升级到 %s。配置、密钥和数据均已保留。",
		"upgrade.refused":              "新版本的 Forgebox 不接受当前配置（%s）。旧版本保持安装。请在 Forgebox 窗口中修正以下设置后再升级：",
		"config.invalid":               "Forgebox 配置 %s 无效，请在 Forgebox 窗口或该文件中修正：",
		"uninstall.kept":               "Forgebox 的配置、密钥、数据库、Redis 和 GitLab 数据保留在 %s，备份保留在共享文件夹 %s 中。重新安装 Forgebox 时会继续使用它们。",
		"uninstall.deleted":            "Forgebox 的配置、密钥和数据已删除。共享文件夹 %s 及其中的备份仍然保留：如不再需要，请在“控制面板 > 共享文件夹”中删除。",
		"uninstall.images":             "以下容器镜像仍保留在这台 NAS 上：%s。如果没有其他项目使用它们，请在 Container Manager > 映像 中删除，或通过 SSH 执行：sudo docker rmi %s",
		"uninstall.images_removed":     "已删除这些容器镜像：%s。",
		"uninstall.images_unreachable": "Forgebox 无法访问 Docker 来删除镜像（套件运行时没有访问权限）。",
		"gitlab.moving":                "下次启动堆栈时，GitLab 的数据会从 %s 移到套件自己的文件夹 %s：那里的文件权限符合 GitLab 的需要。旧文件夹只会改名，不会删除：确认 GitLab 正常后可将其删除。备份仍保存在共享文件夹中。",
		"start.marker":                 "Forgebox 无法写入 %s（%v），DSM 会认为它已停止。请检查套件的 var 文件夹是否属于套件用户。",
		"uninstall.leftover":           "以下内容由容器以其他用户身份写入，无法删除：%s。管理员可以通过 SSH 执行以下命令删除：sudo rm -rf %s",
	},
}

// msg formats a message in lang (falling back to English).
func msg(lang, key string, args ...any) string {
	s, ok := messages[lang][key]
	if !ok {
		s = messages["enu"][key]
	}
	if s == "" {
		s = key
	}
	if len(args) > 0 {
		return fmt.Sprintf(s, args...)
	}
	return s
}
