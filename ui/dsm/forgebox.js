// Forgebox's DSM app window: a DSM 7.2 "app" (ui/config) whose window holds one same-origin
// iframe. The iframe loads index.cgi, the forgebox binary in CGI mode, which checks the DSM
// login (administrators only) and passes the request on to the Forgebox controller. DSM 7.2
// only lets app windows embed pages of its own origin, hence the CGI rather than the
// controller's own port.
Ext.namespace("SYNO.SDS.Forgebox");

Ext.define("SYNO.SDS.Forgebox.Application", {
    extend: "SYNO.SDS.AppInstance",
    appWindowName: "SYNO.SDS.Forgebox.MainWindow",
    constructor: function () {
        this.callParent(arguments);
    }
});

Ext.define("SYNO.SDS.Forgebox.MainWindow", {
    extend: "SYNO.SDS.AppWindow",
    constructor: function (config) {
        this.appInstance = config.appInstance;
        SYNO.SDS.Forgebox.MainWindow.superclass.constructor.call(this, Ext.apply({
            layout: "fit",
            cls: "syno-app-win",
            resizable: true,
            maximizable: true,
            minimizable: true,
            width: 1100,
            height: 760,
            minWidth: 720,
            minHeight: 480,
            // One file with the DSM facts Forgebox relies on (never a secret), for a support
            // request; index.cgi serves it itself, so it works while the controller is down.
            tbar: [{
                text: SYNO.SDS.Forgebox.text("diagnostics", "Download diagnostics"),
                handler: function () {
                    window.open(SYNO.SDS.Forgebox.reportUrl(), "_blank");
                }
            }],
            html: SYNO.SDS.Forgebox.frameHtml()
        }, config));
    }
});

// The iframe's address: the CGI with a trailing slash (so the web app's relative links stay
// below it), DSM's UI language, and the session's CSRF token when DSM has one. The CGI hands
// the token to DSM's authenticate.cgi and never forwards it; the language reaches the
// controller as X-Forgebox-Lang. The timestamp keeps a cached page from an older version away.
SYNO.SDS.Forgebox.frameHtml = function () {
    var lang = "", token = "";
    try {
        lang = (typeof _S === "function" && _S("lang")) || "";
    } catch (e) { lang = ""; }
    try {
        token = (SYNO.SDS.Session && SYNO.SDS.Session.SynoToken) || "";
    } catch (e) { token = ""; }
    var src = "webman/3rdparty/forgebox/index.cgi/?lang=" + encodeURIComponent(lang) +
        "&_ts=" + new Date().getTime();
    if (token) {
        src += "&SynoToken=" + encodeURIComponent(token);
    }
    return '<iframe src="' + src + '" title="Forgebox" ' +
        'style="width:100%;height:100%;border:none;margin:0;display:block"></iframe>';
};

// The session's CSRF token, when DSM has one.
SYNO.SDS.Forgebox.token = function () {
    try {
        return (SYNO.SDS.Session && SYNO.SDS.Session.SynoToken) || "";
    } catch (e) { return ""; }
};

// A string of the app's texts (ui/texts/<lang>/strings, section app), else the English one.
SYNO.SDS.Forgebox.text = function (key, fallback) {
    try {
        if (typeof _TT === "function") {
            var s = _TT("SYNO.SDS.Forgebox.Application", "app", key);
            if (s && s !== key) {
                return s;
            }
        }
    } catch (e) { /* DSM without this helper: English */ }
    return fallback;
};

// The diagnostics file's address: the front's own route below index.cgi.
SYNO.SDS.Forgebox.reportUrl = function () {
    var token = SYNO.SDS.Forgebox.token();
    return "webman/3rdparty/forgebox/index.cgi/_dsm/report" + (token ? "?SynoToken=" + encodeURIComponent(token) : "");
};
