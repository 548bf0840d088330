//! End to end: settings a first-party plugin's own `validate` refuses (a URL that does
//! not parse, a public dashboard without a token, a program that is not there) are a
//! config error said at the place of the setting (the settings' when it is not written),
//! the same way by `check`, at startup (the router does not start) and on reload
//! (refused; the running config stays).

use std::os::unix::fs::PermissionsExt;

use alert_router_tests::harness::{Router, dir_with, plugin_dir, run_cli, run_refused};
use serde_json::Value;

const KEEP_ROUTE: &str = "routes:\n  - name: all\n    to: [keep]\n";
const TEXT_TEMPLATE: &str = "text: \"{{ event.type }}\"\n";

/// A config whose first sink, `bad`, uses `plugin` with `settings` (indented lines, from
/// line 8 on, so the settings' place is 8:7), then a console sink `keep` that works.
fn config(plugin: &str, settings: &str) -> String {
    format!(
        "plugins: {{dirs: [\"{{plugins}}\"]}}\nrules: rules\ntemplates: templates\nsinks:\n  bad:\n    plugin: {plugin}\n    settings:\n{settings}  keep:\n    plugin: console\n    settings: {{path: \"{{dir}}/keep.txt\"}}\n"
    )
}

/// One refused setting: the plugin, its settings, the start of the plugin's reason, and
/// where it is said: the value of the setting it names, else the settings' place (8:7).
struct Case {
    plugin: &'static str,
    settings: &'static str,
    reason: &'static str,
    place: &'static str,
}

const CASES: &[Case] = &[
    Case {
        plugin: "dashboard",
        settings: "      listen: \"0.0.0.0:0\"\n",
        reason: "settings.token: required because listen (0.0.0.0:0) is not a loopback address",
        place: "8:7",
    },
    Case {
        plugin: "exec",
        settings: "      command: [\"{dir}/no-such-program\", --flag]\n",
        reason: "settings.command: {dir}/no-such-program is not an executable file",
        place: "8:16",
    },
    Case {
        // There, but not executable (written 0644 below).
        plugin: "exec",
        settings: "      command: [\"{dir}/not-executable.sh\"]\n",
        reason: "settings.command: {dir}/not-executable.sh is not an executable file",
        place: "8:16",
    },
    Case {
        plugin: "exec",
        settings: "      command: [sh, -c, \"true\"]\n      working_dir: \"{dir}/no-such-dir\"\n",
        reason: "settings.working_dir: {dir}/no-such-dir is not a directory",
        place: "9:20",
    },
    Case {
        plugin: "webhook",
        settings: "      url: \"ftp://example.com/hook\"\n",
        reason: "settings.url: the scheme is \"ftp\"; only http and https are supported",
        place: "8:12",
    },
    Case {
        plugin: "discord",
        settings: "      webhook_url: \"http://discord.com/api/webhooks/1/abc\"\n",
        reason: "settings.webhook_url: must use https",
        place: "8:20",
    },
    Case {
        plugin: "slack",
        settings: "      webhook_url: \"hooks.slack.com/services/T0/B0/x\"\n",
        reason: "settings.webhook_url: not a URL",
        place: "8:20",
    },
    Case {
        plugin: "email",
        settings: "      host: smtp.example.com\n      from: \"alerts at example.com\"\n      to: [ops@example.com]\n",
        reason: "settings.from: \"alerts at example.com\" is not an email address",
        place: "9:13",
    },
    Case {
        plugin: "console",
        settings: "      path: \"{dir}/no-such-dir/out.txt\"\n",
        reason: "settings.path: {dir}/no-such-dir is not a directory",
        place: "8:13",
    },
    Case {
        plugin: "telegram",
        settings: "      bot_token: \"not-a-token\"\n      chat_ids: [1]\n",
        reason: "settings.bot_token: is not a Telegram bot token",
        place: "8:18",
    },
];

/// Where the plugins are and `dir`, as the harness expands them.
fn expand(text: &str, dir: &std::path::Path) -> String {
    text.replace("{plugins}", &plugin_dir().display().to_string())
        .replace("{dir}", &dir.display().to_string())
}

/// The line every refusal is said as, for `case`'s plugin in `dir`.
fn expected(case: &Case, dir: &std::path::Path) -> String {
    format!(
        "router.yaml:{}: sinks.bad.settings: plugin `{}` refused them: {}",
        case.place,
        case.plugin,
        expand(case.reason, dir)
    )
}

/// Writes what a case's settings name: a script that is not executable.
fn write_props(dir: &std::path::Path) {
    let script = dir.join("not-executable.sh");
    std::fs::write(&script, "#!/bin/sh\nexit 0\n").expect("write the script");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o644)).expect("chmod");
}

#[test]
fn check_and_startup_refuse_each_plugins_invalid_settings_at_their_place() {
    for case in CASES {
        let dir = dir_with(&[
            ("router.yaml", &config(case.plugin, case.settings)),
            ("rules/a.yaml", KEEP_ROUTE),
            ("templates/console/default.yaml", TEXT_TEMPLATE),
        ]);
        write_props(dir.path());
        let line = expected(case, dir.path());
        let (code, stdout, stderr) = run_cli(dir.path(), &["check"]);
        assert_eq!(code, 1, "{}: {stdout}{stderr}", case.plugin);
        let first = stdout.lines().next().unwrap_or_default();
        assert!(first.starts_with(&line), "{}: {stdout}", case.plugin);
        assert_eq!(stdout.lines().count(), 1, "one problem: {stdout}");

        // Startup: the same line, and no router.
        let (code, stderr) = run_refused(dir.path());
        assert_eq!(code, 1, "{}: {stderr}", case.plugin);
        assert!(stderr.contains(&line), "{}: {stderr}", case.plugin);
        assert!(
            !dir.path().join("keep.txt").exists(),
            "nothing started: {stderr}"
        );
    }
}

#[tokio::test]
async fn a_reload_with_invalid_plugin_settings_is_refused_and_the_running_config_stays() {
    let good = config("console", "      format: json\n");
    let router = Router::start(
        &good,
        &[
            ("rules/a.yaml", KEEP_ROUTE),
            ("templates/console/default.yaml", TEXT_TEMPLATE),
        ],
    )
    .await;
    let dir = router.dir.path().to_path_buf();
    write_props(&dir);
    for case in CASES {
        std::fs::write(
            dir.join("router.yaml"),
            expand(&config(case.plugin, case.settings), &dir),
        )
        .expect("write the config");
        let resp = reqwest::Client::new()
            .post(format!("{}/v1/reload", router.url))
            .timeout(std::time::Duration::from_secs(30))
            .send()
            .await
            .expect("POST /v1/reload");
        let status = resp.status().as_u16();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        assert_eq!(status, 422, "{}: {body}", case.plugin);
        let errors: Vec<&str> = body["errors"]
            .as_array()
            .map(|e| e.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let line = expected(case, &dir);
        assert_eq!(errors.len(), 1, "{}: {body}", case.plugin);
        assert!(
            errors[0].contains(&line),
            "{}: {line} in {body}",
            case.plugin
        );
    }
    // The running config stays: `bad` is still the console it started as.
    let status = router.get_json("/v1/status").await;
    assert_eq!(status["sinks"]["bad"]["plugin"], "console", "{status}");
    assert_eq!(status["sinks"]["bad"]["healthy"], true, "{status}");
}
