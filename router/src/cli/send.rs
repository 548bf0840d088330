//! `alert-router send`: builds one event from the command line (fields as `key=value` or
//! `key:=JSON`, optionally on top of a JSON object from a file or stdin) and posts it to
//! a running router.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Args;
use serde_json::{Map, Value, json};

/// What `send --help` shows after the options. `tests/tests/cli_examples.rs` runs every
/// `alert-router send` line here against a router: keep them working.
const EXAMPLES: &str = r#"Examples:
  alert-router send trade_opened symbol=BTC/USDT side=BUY entry_price=45000 quantity=0.5
  alert-router send error message="exchange timeout" component=order_manager --severity critical
  alert-router send portfolio_update total_value=50000 'positions:=[{"symbol": "BTC/USDT", "side": "LONG", "quantity": 0.5, "entry_price": 45000, "current_price": 46000}]'
  alert-router send heartbeat --label env=prod 'note:="007"'
  echo '{"type": "deploy", "service": "api", "version": "1.4.2"}' | alert-router send --json -

The router refuses a documented type without its required fields (see the README's
Events); any other type passes with whatever fields it has."#;

/// `send`'s command line.
#[derive(Debug, Args)]
#[command(after_help = EXAMPLES)]
pub struct Send {
    /// The event type (trade_opened, error, or any type of your own); may instead be the
    /// "type" of the --json object.
    #[arg(value_name = "TYPE")]
    kind: Option<String>,
    /// The event's fields: key=value (numbers, true, false and null are parsed, the
    /// rest is text) or key:=JSON (any JSON value: a list, an object, "quoted text").
    #[arg(value_name = "FIELD")]
    fields: Vec<String>,
    /// Start from the JSON object in FILE (- for stdin); TYPE and the fields are added
    /// to it and win.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// debug, info, warning, error or critical.
    #[arg(long, short)]
    severity: Option<String>,
    /// A label as key=value (repeatable).
    #[arg(long = "label", short = 'l', value_name = "KEY=VALUE")]
    labels: Vec<String>,
    /// The router's address.
    #[arg(
        long,
        env = "ALERT_ROUTER_URL",
        default_value = "http://127.0.0.1:9470"
    )]
    url: String,
    /// The bearer token, if the router has `server.token`.
    #[arg(long, env = "ALERT_ROUTER_TOKEN", hide_env_values = true)]
    token: Option<String>,
}

/// Builds the event and posts it; exits 1 when the router refuses it.
pub fn run(args: Send) -> Result<ExitCode> {
    let event = build(&args)?;
    let endpoint = format!("{}/v1/events", args.url.trim_end_matches('/'));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (status, body) = runtime.block_on(async {
        let mut req = reqwest::Client::new().post(&endpoint).json(&event);
        if let Some(t) = &args.token {
            req = req.bearer_auth(t);
        }
        let resp = req
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .map_err(reqwest::Error::without_url)
            .with_context(|| {
                format!(
                    "cannot reach the router at {}: is it running? (--url or ALERT_ROUTER_URL)",
                    args.url
                )
            })?;
        let status = resp.status();
        anyhow::Ok((status, resp.text().await.unwrap_or_default()))
    })?;
    if status.is_success() {
        println!("{}", body.trim());
        return Ok(ExitCode::SUCCESS);
    }
    let answer: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    match (status.as_u16(), answer["error"].as_str()) {
        (401, _) => eprintln!(
            "error: the router wants its token (server.token): give it with --token or ALERT_ROUTER_TOKEN"
        ),
        (400, Some(reason)) => eprintln!("error: the router refused the event: {reason}"),
        _ => eprintln!("error: the router answered {status}: {}", body.trim()),
    }
    Ok(ExitCode::FAILURE)
}

/// The event `args` describe: the --json object, then the type, the fields, the
/// severity and the labels on top.
fn build(args: &Send) -> Result<Value> {
    let mut event = match &args.json {
        Some(path) => read_object(path)?,
        None => Map::new(),
    };
    // `send key=value --json -`: clap takes the first field for TYPE; a type never
    // holds `=`.
    let (kind, fields): (Option<&String>, Vec<&String>) = match &args.kind {
        Some(k) if k.contains('=') => (None, std::iter::once(k).chain(&args.fields).collect()),
        k => (k.as_ref(), args.fields.iter().collect()),
    };
    if let Some(kind) = kind {
        match event.get("type") {
            Some(Value::String(t)) if t != kind => bail!(
                "the type is {kind:?} on the command line but {t:?} in {}: give one",
                display(args.json.as_deref())
            ),
            _ => {
                event.insert("type".into(), json!(kind));
            }
        }
    }
    for (i, field) in fields.iter().enumerate() {
        let (key, value) = parse_field(field)
            .map_err(|e| anyhow::anyhow!("field {} of {}, `{field}`: {e}", i + 1, fields.len()))?;
        event.insert(key, value);
    }
    if !event.contains_key("type") {
        bail!(
            "say which type of event: `send TYPE [FIELD]...`, or a \"type\" in the --json object"
        );
    }
    if let Some(s) = &args.severity {
        event.insert("severity".into(), json!(s));
    }
    if !args.labels.is_empty() {
        let labels = event
            .entry("labels")
            .or_insert_with(|| Value::Object(Map::new()));
        let Value::Object(labels) = labels else {
            bail!(
                "--label adds to `labels`, which the event already has as something other than an object"
            );
        };
        for l in &args.labels {
            let (k, v) = l
                .split_once('=')
                .filter(|(k, _)| !k.is_empty())
                .with_context(|| format!("--label {l:?}: write labels as key=value"))?;
            labels.insert(k.into(), json!(v));
        }
    }
    Ok(Value::Object(event))
}

/// The JSON object in `path` (`-`: stdin), with `file:line:col` when it is not JSON.
fn read_object(path: &Path) -> Result<Map<String, Value>> {
    let name = display(Some(path));
    let mut text = String::new();
    if path == Path::new("-") {
        std::io::stdin()
            .read_to_string(&mut text)
            .context("cannot read the event from stdin")?;
    } else {
        text = std::fs::read_to_string(path).with_context(|| format!("cannot read {name}"))?;
    }
    match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => bail!(
            "{name}: expected one JSON object (an event), found {}; `send` posts one event \
             (post a batch with curl --data-binary @FILE to /v1/events)",
            kind_of(&other)
        ),
        Err(e) => bail!(
            "{name}:{}:{}: not JSON: {}",
            e.line(),
            e.column(),
            message(&e)
        ),
    }
}

fn display(path: Option<&Path>) -> String {
    match path {
        Some(p) if p == Path::new("-") => "stdin".to_owned(),
        Some(p) => p.display().to_string(),
        None => "the --json object".to_owned(),
    }
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// serde_json's message without its own " at line L column C": the caller says where.
fn message(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rfind(" at line ") {
        Some(at) => text[..at].to_owned(),
        None => text,
    }
}

/// One field: `key=value` (numbers, booleans and null become JSON values, the rest
/// text) or `key:=JSON` (the value as JSON, httpie's syntax). The error says what is
/// wrong and, for bad JSON, points at the place.
pub(crate) fn parse_field(arg: &str) -> Result<(String, Value), String> {
    let Some(eq) = arg.find('=') else {
        return Err(
            "write fields as key=value, or key:=JSON for a list, an object or quoted text".into(),
        );
    };
    let (key, typed) = match arg[..eq].strip_suffix(':') {
        Some(key) => (key, true),
        None => (&arg[..eq], false),
    };
    if key.is_empty() {
        return Err(format!(
            "no field name before `{}`",
            if typed { ":=" } else { "=" }
        ));
    }
    let raw = &arg[eq + 1..];
    if typed {
        return serde_json::from_str(raw)
            .map(|v| (key.to_owned(), v))
            .map_err(|e| bad_json(arg, eq + 1, &e));
    }
    let value = match raw {
        "true" => Value::Bool(true),
        "false" => Value::Bool(false),
        "null" => Value::Null,
        _ => match raw.parse::<i64>() {
            Ok(i) => json!(i),
            Err(_) => match raw.parse::<f64>() {
                Ok(f) if f.is_finite() => json!(f),
                _ => Value::String(raw.to_owned()),
            },
        },
    };
    Ok((key.to_owned(), value))
}

/// A `key:=JSON` whose JSON does not parse: the reason, the argument with a caret under
/// the place, and how to write it.
fn bad_json(arg: &str, value_at: usize, e: &serde_json::Error) -> String {
    let hint = "after := comes a JSON value: text in double quotes, the whole argument in \
                single quotes for the shell, e.g. 'positions:=[{\"symbol\": \"BTC/USDT\"}]'";
    if e.line() != 1 {
        return format!(
            "the value after := is not JSON: {} at line {}, column {} of the value; {hint}",
            message(e),
            e.line(),
            e.column()
        );
    }
    // serde_json counts bytes from 1 and may point one past the end.
    let value = &arg[value_at..];
    let byte = e.column().saturating_sub(1).min(value.len());
    let byte = (0..=byte)
        .rev()
        .find(|b| value.is_char_boundary(*b))
        .unwrap_or(0);
    let column = arg[..value_at].chars().count() + value[..byte].chars().count();
    format!(
        "the value after := is not JSON: {} at column {}\n  {arg}\n  {}^\n{hint}",
        message(e),
        column + 1,
        " ".repeat(column)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_fields_parse_numbers_booleans_and_null_and_keep_the_rest_as_text() {
        let field = |s: &str| parse_field(s).unwrap();
        assert_eq!(field("price=45000"), ("price".into(), json!(45000)));
        assert_eq!(field("qty=0.5"), ("qty".into(), json!(0.5)));
        assert_eq!(
            field("symbol=BTC/USDT"),
            ("symbol".into(), json!("BTC/USDT"))
        );
        assert_eq!(field("ok=true"), ("ok".into(), json!(true)));
        assert_eq!(field("gone=null"), ("gone".into(), json!(null)));
        assert_eq!(field("note=a=b"), ("note".into(), json!("a=b")));
        assert_eq!(
            field("url=http://x/?a:=b"),
            ("url".into(), json!("http://x/?a:=b"))
        );
        assert!(parse_field("oops").is_err());
        assert!(parse_field("=5").unwrap_err().contains("no field name"));
    }

    #[test]
    fn typed_fields_take_any_json_value() {
        let field = |s: &str| parse_field(s).unwrap();
        assert_eq!(
            field(r#"positions:=[{"symbol": "BTC/USDT", "quantity": 0.5}]"#),
            (
                "positions".into(),
                json!([{"symbol": "BTC/USDT", "quantity": 0.5}])
            )
        );
        assert_eq!(
            field(r#"labels:={"env": "prod"}"#).1,
            json!({"env": "prod"})
        );
        assert_eq!(field(r#"code:="007""#).1, json!("007"));
        assert_eq!(field("n:=12").1, json!(12));
        assert!(
            parse_field(":=1")
                .unwrap_err()
                .contains("no field name before `:=`")
        );
    }

    #[test]
    fn bad_json_is_shown_with_a_caret_under_the_place() {
        let arg = r#"positions:=[{"symbol": BTC}]"#;
        let err = parse_field(arg).unwrap_err();
        let lines: Vec<&str> = err.lines().collect();
        assert!(
            lines[0].starts_with("the value after := is not JSON: expected value at column 24"),
            "{err}"
        );
        assert_eq!(lines[1], format!("  {arg}"));
        let caret = lines[2].find('^').unwrap() - 2;
        assert_eq!(&arg[caret..caret + 3], "BTC", "{err}");
        assert!(lines[3].contains("double quotes"), "{err}");

        let err = parse_field("p:=[1, 2").unwrap_err();
        assert!(
            err.contains("EOF while parsing a list at column 8"),
            "{err}"
        );
        let err = parse_field("note:=é x").unwrap_err();
        assert!(err.lines().nth(2) == Some("        ^"), "{err}");
    }

    fn args(kind: Option<&str>, fields: &[&str]) -> Send {
        Send {
            kind: kind.map(str::to_owned),
            fields: fields.iter().map(|f| (*f).to_owned()).collect(),
            json: None,
            severity: None,
            labels: Vec::new(),
            url: String::new(),
            token: None,
        }
    }

    #[test]
    fn the_event_has_the_type_the_fields_the_severity_and_the_labels() {
        let mut a = args(Some("trade_opened"), &["symbol=BTC/USDT", "quantity=0.5"]);
        a.severity = Some("warning".into());
        a.labels = vec!["env=prod".into()];
        assert_eq!(
            build(&a).unwrap(),
            json!({"type": "trade_opened", "symbol": "BTC/USDT", "quantity": 0.5,
                   "severity": "warning", "labels": {"env": "prod"}})
        );
        let err = build(&args(Some("x"), &["a=1", "b:=[1,"])).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("field 2 of 2, `b:=[1,`: the value after := is not JSON"),
            "{err}"
        );
    }

    #[test]
    fn a_json_file_is_the_start_and_its_mistakes_have_their_place() {
        let dir = std::env::temp_dir().join(format!("alert-router-send-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("event.json");
        std::fs::write(&file, "{\"type\": \"deploy\", \"version\": \"1.0\"}").unwrap();
        let mut a = args(None, &["version=1.1", r#"hosts:=["a", "b"]"#]);
        a.json = Some(file.clone());
        assert_eq!(
            build(&a).unwrap(),
            json!({"type": "deploy", "version": 1.1, "hosts": ["a", "b"]})
        );
        a.kind = Some("other".into());
        let err = build(&a).unwrap_err().to_string();
        assert!(
            err.contains("\"other\" on the command line but \"deploy\""),
            "{err}"
        );

        std::fs::write(&file, "{\n  \"type\": \"deploy\",\n  \"version\": 1.0.1\n}").unwrap();
        let err = build(&a).unwrap_err().to_string();
        assert_eq!(
            err,
            format!("{}:3:17: not JSON: expected `,` or `}}`", file.display()),
        );
        std::fs::write(&file, "[{\"type\": \"a\"}]").unwrap();
        let err = build(&a).unwrap_err().to_string();
        assert!(
            err.contains("expected one JSON object (an event), found an array"),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn without_a_type_the_first_field_is_a_field() {
        let err = build(&args(Some("a=1"), &["b=2"])).unwrap_err();
        assert!(err.to_string().contains("say which type of event"), "{err}");
    }
}
