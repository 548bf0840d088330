//! The conversion on its own: what each Alertmanager construct becomes, and what is
//! listed as not converted, at its place. The round trip against `amtool` and a real
//! delivery are tests/tests/import_alertmanager.rs.

use std::path::Path;

use super::*;

fn import(yaml: &str) -> Imported {
    convert(Path::new("am.yml"), yaml, &[]).expect("converts")
}

fn file<'a>(imported: &'a Imported, name: &str) -> &'a str {
    imported
        .files
        .iter()
        .find(|(p, _)| p == Path::new(name))
        .map(|(_, text)| text.as_str())
        .unwrap_or_else(|| panic!("no {name} in {:?}", imported.files))
}

/// The written rules and config compile as the router's own, with the routes in tree
/// order and the inherited settings written on each.
#[test]
fn inheritance_is_written_out_and_the_rules_compile() {
    let imported = import(
        r#"
route:
  receiver: hook
  group_by: [alertname]
  group_wait: 1m
  routes:
    - matchers: [team="db"]
      group_interval: 1h30m
      routes:
        - receiver: hook
          match_re: {severity: "crit.*"}
          continue: true
receivers:
  - name: hook
    webhook_configs: [{url: "http://127.0.0.1:1/x", send_resolved: false}]
"#,
    );
    let rules = file(&imported, "rules/alertmanager.yaml");
    let compiled = crate::rules::Rules::compile(
        &[(PathBuf::from("rules/alertmanager.yaml"), rules.to_owned())],
        &|s| s == "hook",
    )
    .unwrap_or_else(|e| panic!("{e}\n{rules}"));
    let names: Vec<(&str, usize, bool)> = compiled
        .routes()
        .iter()
        .map(|r| (r.name.as_str(), r.depth, r.continue_))
        .collect();
    assert_eq!(
        names,
        [
            ("hook", 0, false),
            ("hook-2", 1, false),
            ("hook-3", 2, true)
        ]
    );
    // The grandchild inherits the receiver, group_by, group_wait and its parent's
    // group_interval; send_resolved is the receiver's.
    assert!(
        rules.contains(
            "          - name: hook-3\n            match:\n              matchers: [\"labels.severity=~\\\"crit.*\\\"\"]\n            to: [\"hook\"]\n            group_by: [\"labels.alertname\"]\n            group_wait: 1m\n            group_interval: 90m\n            repeat_interval: 4h\n            send_resolved: false\n"
        ),
        "{rules}"
    );
    assert!(imported.notes.is_empty(), "{:?}", imported.notes);
    assert_eq!(
        imported.env,
        [("HOOK_URL".to_owned(), "http://127.0.0.1:1/x".to_owned())]
    );
    let config = file(&imported, "router.yaml");
    assert!(
        config
            .contains("  hook:\n    plugin: webhook\n    settings:\n      url: \"${HOOK_URL}\"\n"),
        "{config}"
    );
    assert!(
        file(&imported, "templates/hook/group.yaml").contains("receiver: \"hook\""),
        "the webhook gets Alertmanager's body"
    );
}

#[test]
fn what_cannot_be_converted_is_listed_at_its_place() {
    let imported = import(
        "route:\n  receiver: r\nreceivers:\n  - name: r\n    pagerduty_configs:\n      - routing_key: k\n    slack_configs:\n      - channel: '#x'\n        api_url_file: /run/secret\n  - name: e\n    email_configs:\n      - to: a@b\n",
    );
    assert_eq!(
        imported.notes,
        [
            "am.yml:6:7: receiver `r`: pagerduty_configs: not converted: the router has no plugin for it (write one, README \"Plugins\")",
            "am.yml:9:23: receiver `r`: slack_configs: api_url_file: set webhook_url in .env",
            "am.yml:8:18: receiver `r`: slack_configs: channel: an incoming webhook posts to the channel it was made for",
            "am.yml:8:9: receiver `r`: slack_configs: not converted: no api_url",
            "am.yml:12:9: receiver `e`: email_configs: not converted: to, from and smarthost are needed",
        ]
    );
}

#[test]
fn group_by_all_labels_continue_and_null_receivers() {
    let imported = import(
        "route:\n  receiver: none\n  group_by: ['...']\n  routes:\n    - receiver: none\n      continue: true\n      mute_time_intervals: [night]\nreceivers:\n  - name: none\ntime_intervals:\n  - name: night\n    time_intervals: [{times: [{start_time: '22:00', end_time: '24:00'}]}]\n",
    );
    let rules = file(&imported, "rules/alertmanager.yaml");
    assert!(rules.contains("group_by: [\"labels.*\"]"), "{rules}");
    assert!(rules.contains("to: []"), "{rules}");
    assert!(rules.contains("muted_during: [\"night\"]"), "{rules}");
    assert!(rules.contains("continue: true"), "{rules}");
    let compiled = crate::rules::Rules::compile(
        &[(PathBuf::from("rules/alertmanager.yaml"), rules.to_owned())],
        &|_| false,
    );
    assert!(compiled.is_ok(), "{rules}");
}

#[test]
fn a_config_alertmanager_would_refuse_is_an_error_at_its_place() {
    let err = convert(Path::new("am.yml"), "receivers: []\n", &[]).unwrap_err();
    assert!(err.to_string().contains("no `route:`"), "{err}");
    let err = convert(
        Path::new("am.yml"),
        "route:\n  receiver: r\n  group_wait: soon\n",
        &[],
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("am.yml:3:15: \"soon\" is not a duration"),
        "{err}"
    );
    let err = convert(
        Path::new("am.yml"),
        "route:\n  receiver: r\n  routes:\n    - matchers: ['a=~\"(\"']\n",
        &[],
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("am.yml:4:18: matchers: matcher"),
        "{err}"
    );
}

#[test]
fn receivers_become_the_router_plugins_settings() {
    let imported = import(
        r#"
global:
  smtp_smarthost: mail:465
  smtp_from: am@x
  telegram_api_url: http://127.0.0.1:8081
route: {receiver: all}
receivers:
  - name: all
    email_configs: [{to: "a@x, b@x", auth_username: u, auth_password: "p'w"}]
    telegram_configs: [{bot_token: "1:t", chat_id: -100, parse_mode: MarkdownV2}]
    discord_configs: [{webhook_url: "https://discord.com/api/webhooks/1/t"}]
    webhook_configs: [{url: "http://h", http_config: {authorization: {type: Token, credentials: c}}, timeout: 1m}]
"#,
    );
    let config = file(&imported, "router.yaml");
    for expected in [
        "  all-email:\n    plugin: email\n    settings:\n      from: \"am@x\"\n      host: \"mail\"\n      password: \"${ALL_EMAIL_PASSWORD}\"\n      port: 465\n      tls: \"tls\"\n      to: [\"a@x\", \"b@x\"]\n      username: \"u\"\n",
        "  all-telegram:\n    plugin: telegram\n    settings:\n      api_url: \"http://127.0.0.1:8081\"\n      bot_token: \"${ALL_TELEGRAM_BOT_TOKEN}\"\n      chat_ids: [-100]\n      commands: false\n      parse_mode: \"MarkdownV2\"\n",
        "  all-discord:\n    plugin: discord\n    settings:\n      webhook_url: \"${ALL_DISCORD_WEBHOOK_URL}\"\n",
        "  all-webhook:\n    plugin: webhook\n    settings:\n      headers: {\"Authorization\": \"${ALL_WEBHOOK_AUTHORIZATION}\"}\n      timeout: \"1m\"\n      url: \"${ALL_WEBHOOK_URL}\"\n",
    ] {
        assert!(config.contains(expected), "{expected}\nin\n{config}");
    }
    let env: BTreeMap<&str, &str> = imported
        .env
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(env["ALL_EMAIL_PASSWORD"], "p'w");
    assert_eq!(env["ALL_WEBHOOK_AUTHORIZATION"], "Token c");
    // Email and Telegram templates come with it; the webhook's is Alertmanager's body.
    for f in [
        "templates/email/group.yaml",
        "templates/telegram/group.yaml",
        "templates/discord/group.yaml",
        "templates/all-webhook/group.yaml",
    ] {
        file(&imported, f);
    }
    assert!(
        imported.notes[0].contains("send_resolved: its integrations differ"),
        "{:?}",
        imported.notes
    );
}

#[test]
fn basic_auth_becomes_an_authorization_header_in_env() {
    let imported = import(
        "route: {receiver: h}\nreceivers:\n  - name: h\n    webhook_configs:\n      - url: http://h\n        http_config: {basic_auth: {username: user, password: pa$$}}\n",
    );
    assert!(
        imported.env.contains(&(
            "H_AUTHORIZATION".to_owned(),
            "Basic dXNlcjpwYSQk".to_owned()
        )),
        "{:?}",
        imported.env
    );
}
