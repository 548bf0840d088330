//! `alert-router setup telegram|discord` run as a process against the fake Telegram Bot
//! API and the fake Discord: what a new user sees and what ends up in `.env`. The token
//! and the webhook URL's secret part never appear in the output; the lines written
//! switch the sink on for a router started on the shipped `router.yaml`.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use alert_router_tests::fake_discord::{self, FakeDiscord};
use alert_router_tests::fake_telegram::{BOT_USERNAME, FakeTelegram};
use alert_router_tests::harness::{Router, TempDir, dir_with, router_binary};
use alert_router_tests::shipped;
use serde_json::json;

/// The secret half of the test bot's token: no output may contain it.
const SECRET: &str = "SETUPsecretAAHdqTcvCH1vGWJxfSeofS";
const BOT_ID: &str = "5550123";

fn token() -> String {
    format!("{BOT_ID}:{SECRET}")
}

/// How long a test waits for the command or the router.
const PATIENCE: Duration = Duration::from_secs(30);

/// A finished command: exit code, stdout, stderr.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

/// Starts `alert-router --config router.yaml setup ARGS` in `dir`, with none of the
/// variables setup reads inherited from the test's environment.
fn spawn(dir: &Path, args: &[&str]) -> std::process::Child {
    Command::new(router_binary())
        .args(["--config", "router.yaml", "setup"])
        .args(args)
        .current_dir(dir)
        .env_remove("TELEGRAM_BOT_TOKEN")
        .env_remove("TELEGRAM_API_URL")
        .env_remove("TELEGRAM_CHAT_ID")
        .env_remove("TELEGRAM_ENABLED")
        .env_remove("DISCORD_WEBHOOK_URL")
        .env_remove("DISCORD_ENABLED")
        .env("ALERT_ROUTER_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the router binary")
}

/// Waits for the command to finish, at most [`PATIENCE`].
async fn finish(child: std::process::Child) -> Run {
    let out = tokio::time::timeout(
        PATIENCE,
        tokio::task::spawn_blocking(move || child.wait_with_output()),
    )
    .await
    .expect("setup finished in time")
    .expect("the waiting thread")
    .expect("the command's output");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

async fn run(dir: &Path, args: &[&str]) -> Run {
    finish(spawn(dir, args)).await
}

fn dotenv(dir: &TempDir) -> String {
    std::fs::read_to_string(dir.path().join(".env")).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn telegram_setup_finds_the_chat_of_start_and_its_lines_switch_the_sink_on() {
    let telegram = FakeTelegram::start(&token()).await;
    let dir = dir_with(&[
        ("router.yaml", &shipped::router_yaml()),
        (".env", "# mine\nOTHER=keep\nTELEGRAM_CHAT_ID=0\n"),
    ]);
    let api_url = telegram.api_url();
    let token = token();
    let child = spawn(
        dir.path(),
        &[
            "telegram",
            "--token",
            &token,
            "--api-url",
            &api_url,
            "--wait",
            "60s",
            "--write-env",
        ],
    );
    // The person sends /start once the command has checked the token (it may already
    // be polling, or not yet: either way the /start is found).
    let checked = telegram.wait_for(PATIENCE, |t| {
        (!t.calls_to("getMe").is_empty()).then_some(())
    });
    assert!(checked.is_some(), "setup never called getMe");
    telegram.push_command(42, 42, "/start");
    let out = finish(child).await;

    assert_eq!(out.code, 0, "{}", out.all());
    assert!(
        out.stdout.contains(&format!("@{BOT_USERNAME}"))
            && out.stdout.contains(&format!("https://t.me/{BOT_USERNAME}"))
            && out.stdout.contains("chat id 42"),
        "{}",
        out.stdout
    );
    assert!(
        !out.all().contains(SECRET),
        "the token was printed: {}",
        out.all()
    );
    // The bot says so in the chat, and the /start is confirmed: the router's bot will
    // not answer it again.
    let said = telegram.messages_to(42);
    assert_eq!(said.len(), 1, "{said:?}");
    assert!(
        said[0].visible.contains("chat id 42"),
        "{}",
        said[0].visible
    );
    assert_eq!(telegram.pending_updates(), 0);
    // The .env keeps its other lines and gets the sink's.
    assert_eq!(
        dotenv(&dir),
        format!(
            "# mine\nOTHER=keep\nTELEGRAM_CHAT_ID=42\nTELEGRAM_ENABLED=true\nTELEGRAM_BOT_TOKEN={token}\nTELEGRAM_API_URL={api_url}\n"
        )
    );

    // Those lines are all a router on the shipped router.yaml needs to send to the chat.
    let router = Router::start_in_with_env(dir, &[("DASHBOARD_ENABLED", "false")]).await;
    let (status, _) = router
        .post_events(
            json!({"type": "trade_opened", "symbol": "BTC/USDT", "side": "BUY",
                   "entry_price": 45000, "quantity": 0.5})
            .to_string(),
        )
        .await;
    assert_eq!(status, 202);
    let sent = telegram.wait_for(PATIENCE, |t| {
        t.messages_to(42)
            .into_iter()
            .find(|m| m.visible.contains("BTC/USDT"))
    });
    assert!(
        sent.is_some(),
        "no trade reached chat 42: {}",
        router.stderr()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_write_env_the_lines_are_printed_with_the_token_masked() {
    let telegram = FakeTelegram::start(&token()).await;
    let dir = dir_with(&[("router.yaml", &shipped::router_yaml())]);
    // A /start sent before setup runs counts too; a group addresses the bot by name.
    telegram.push_command(-100_200_300, 7, "hello everyone");
    telegram.push_command(-100_200_300, 7, &format!("/start@{BOT_USERNAME}"));
    let out = run(
        dir.path(),
        &[
            "telegram",
            "--token",
            &token(),
            "--api-url",
            &telegram.api_url(),
        ],
    )
    .await;
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(
        out.stdout.contains("the group Group -100200300"),
        "{}",
        out.stdout
    );
    for line in [
        "TELEGRAM_ENABLED=true".to_owned(),
        format!("TELEGRAM_BOT_TOKEN={BOT_ID}:***"),
        "TELEGRAM_CHAT_ID=-100200300".to_owned(),
        format!("TELEGRAM_API_URL={}", telegram.api_url()),
    ] {
        assert!(
            out.stdout.lines().any(|l| l == line),
            "no {line:?} in:\n{}",
            out.stdout
        );
    }
    assert!(out.stdout.contains("--write-env"), "{}", out.stdout);
    assert!(!out.all().contains(SECRET), "{}", out.all());
    assert!(
        !dir.path().join(".env").exists(),
        "nothing written without --write-env"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_telegram_refuses_is_reported_and_never_printed() {
    let telegram = FakeTelegram::start(&token()).await;
    let dir = dir_with(&[("router.yaml", &shipped::router_yaml())]);
    let wrong = format!("{BOT_ID}:WRONGsecretAAHdqTcvCH1vGWJxfSeo");
    let out = run(
        dir.path(),
        &[
            "telegram",
            "--token",
            &wrong,
            "--api-url",
            &telegram.api_url(),
            "--write-env",
        ],
    )
    .await;
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(
        out.stderr
            .contains("Telegram refused the token (401 Unauthorized)")
            && out.stderr.contains("@BotFather"),
        "{}",
        out.stderr
    );
    assert!(!out.all().contains("WRONGsecret"), "{}", out.all());
    assert_eq!(telegram.calls_to("getUpdates").len(), 0);
    assert!(!dir.path().join(".env").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_token_setup_says_where_to_give_it() {
    let dir = dir_with(&[("router.yaml", &shipped::router_yaml())]);
    let out = run(dir.path(), &["telegram"]).await;
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(
        out.stderr.contains(
            "give the bot token @BotFather gave you: with --token, or as TELEGRAM_BOT_TOKEN"
        ),
        "{}",
        out.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_start_before_the_deadline_says_what_to_do() {
    let telegram = FakeTelegram::start(&token()).await;
    // Run again after an earlier setup: the token and the server come from .env.
    let dir = dir_with(&[
        ("router.yaml", &shipped::router_yaml()),
        (
            ".env",
            &format!(
                "TELEGRAM_BOT_TOKEN={}\nTELEGRAM_API_URL={}\n",
                token(),
                telegram.api_url()
            ),
        ),
    ]);
    telegram.push_command(42, 42, "just chatting");
    let out = run(dir.path(), &["telegram", "--wait", "1s"]).await;
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(
        out.stderr.contains("using TELEGRAM_BOT_TOKEN from .env"),
        "{}",
        out.stderr
    );
    assert!(!out.all().contains(SECRET), "{}", out.all());
    assert!(
        out.stderr
            .contains(&format!("no /start reached @{BOT_USERNAME} within 1s"))
            && out.stderr.contains(&format!("https://t.me/{BOT_USERNAME}"))
            && out.stderr.contains("--wait"),
        "{}",
        out.stderr
    );
    assert!(telegram.messages().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discord_setup_shows_the_webhook_and_writes_its_lines() {
    let discord = FakeDiscord::start().await;
    let dir = dir_with(&[
        ("router.yaml", &shipped::router_yaml()),
        (".env", "OTHER=keep"),
    ]);
    let url = discord.webhook_url();
    let out = run(
        dir.path(),
        &["discord", "--webhook-url", &url, "--write-env"],
    )
    .await;
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(
        out.stdout.contains(fake_discord::WEBHOOK_NAME)
            && out.stdout.contains(fake_discord::CHANNEL_ID)
            && out.stdout.contains(fake_discord::GUILD_ID),
        "{}",
        out.stdout
    );
    assert!(!out.all().contains(discord.token()), "{}", out.all());
    assert_eq!(discord.lookups(), 1);
    assert!(discord.accepted().is_empty(), "setup posts nothing");
    assert_eq!(
        dotenv(&dir),
        format!("OTHER=keep\nDISCORD_ENABLED=true\nDISCORD_WEBHOOK_URL={url}\n")
    );

    // Without --write-env: the lines, the URL's token masked.
    let out = run(dir.path(), &["discord", "--webhook-url", &url]).await;
    assert_eq!(out.code, 0, "{}", out.all());
    let masked = url.replace(discord.token(), "***");
    assert!(
        out.stdout
            .lines()
            .any(|l| l == format!("DISCORD_WEBHOOK_URL={masked}")),
        "{}",
        out.stdout
    );
    assert!(!out.all().contains(discord.token()), "{}", out.all());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_discord_does_not_know_is_reported_in_discords_words() {
    let discord = FakeDiscord::start().await;
    let dir = dir_with(&[("router.yaml", &shipped::router_yaml())]);
    let unknown = discord
        .webhook_url()
        .replace(fake_discord::WEBHOOK_ID, "1111111111111111111");
    let out = run(
        dir.path(),
        &["discord", "--webhook-url", &unknown, "--write-env"],
    )
    .await;
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(
        out.stderr
            .contains("Discord does not know this webhook (404 Unknown Webhook)")
            && out.stderr.contains("Copy Webhook URL"),
        "{}",
        out.stderr
    );
    assert!(!out.all().contains(discord.token()), "{}", out.all());
    assert!(!dir.path().join(".env").exists());

    let wrong_token = discord
        .webhook_url()
        .replace(discord.token(), "WrongToken-123");
    let out = run(dir.path(), &["discord", "--webhook-url", &wrong_token]).await;
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(
        out.stderr.contains("401 Invalid Webhook Token"),
        "{}",
        out.stderr
    );
    assert!(!out.all().contains("WrongToken-123"), "{}", out.all());

    let out = run(
        dir.path(),
        &[
            "discord",
            "--webhook-url",
            "https://discord.com/channels/1/2",
        ],
    )
    .await;
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(
        out.stderr.contains("/api/webhooks/ID/TOKEN"),
        "{}",
        out.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_env_without_a_config_is_refused_before_anything_is_asked() {
    let discord = FakeDiscord::start().await;
    let dir = dir_with(&[]);
    let out = run(
        dir.path(),
        &[
            "discord",
            "--webhook-url",
            &discord.webhook_url(),
            "--write-env",
        ],
    )
    .await;
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(
        out.stderr
            .contains("there is no router.yaml: give --config PATH"),
        "{}",
        out.stderr
    );
    assert_eq!(discord.lookups(), 0, "nothing is checked before that");
    assert!(!dir.path().join(".env").exists());
}
