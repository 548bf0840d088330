//! `alert-router setup telegram|discord`: checks a bot token or a webhook URL with the
//! service itself, finds what else the sink needs (Telegram's chat id), and prints the
//! `.env` lines that switch the sink on, or writes them into the `.env` beside the
//! config. Secrets are never printed back in full.

mod discord;
mod telegram;

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Result, bail};
use clap::{Args, Subcommand};

use alert_router_plugin::Secret;

use super::env_file;
use crate::config::read_dotenv;

/// `setup`: which service.
#[derive(Debug, Args)]
pub struct Setup {
    #[command(subcommand)]
    service: Service,
}

#[derive(Debug, Subcommand)]
enum Service {
    /// Check a bot token with Telegram (getMe), wait for /start in the chat that should
    /// get the notifications, and give the .env lines with its chat id.
    #[command(after_help = telegram::HOW_TO)]
    Telegram(TelegramArgs),
    /// Check a Discord webhook URL (a GET on it), show its name and channel, and give
    /// the .env lines.
    #[command(after_help = discord::HOW_TO)]
    Discord(DiscordArgs),
}

#[derive(Debug, Args)]
struct TelegramArgs {
    /// The token @BotFather gave (123456789:AAE...). Default: TELEGRAM_BOT_TOKEN from
    /// the environment or the .env beside the config; else it is asked for.
    #[arg(long, env = "TELEGRAM_BOT_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// The Bot API server, if not Telegram's own (https://api.telegram.org): a
    /// self-hosted one. Default: TELEGRAM_API_URL from the environment or the .env.
    #[arg(long, env = "TELEGRAM_API_URL")]
    api_url: Option<String>,
    /// How long to wait for /start.
    #[arg(long, default_value = "5m", value_parser = crate::config::parse_duration)]
    wait: Duration,
    /// Write the lines into the .env beside the config (its other lines are kept).
    #[arg(long)]
    write_env: bool,
}

#[derive(Debug, Args)]
struct DiscordArgs {
    /// The webhook URL Discord's "Copy Webhook URL" gives
    /// (https://discord.com/api/webhooks/ID/TOKEN). Default: DISCORD_WEBHOOK_URL from the
    /// environment or the .env beside the config; else it is asked for.
    #[arg(long, env = "DISCORD_WEBHOOK_URL", hide_env_values = true)]
    webhook_url: Option<String>,
    /// Write the lines into the .env beside the config (its other lines are kept).
    #[arg(long)]
    write_env: bool,
}

/// One `.env` line to give: the value, and what to print instead when it is a secret.
struct EnvLine {
    name: &'static str,
    value: Secret,
    shown: String,
}

impl EnvLine {
    fn plain(name: &'static str, value: impl Into<String>) -> EnvLine {
        let value = value.into();
        EnvLine {
            name,
            shown: value.clone(),
            value: Secret::new(value),
        }
    }

    fn secret(name: &'static str, value: &Secret, shown: String) -> EnvLine {
        EnvLine {
            name,
            value: value.clone(),
            shown,
        }
    }
}

pub fn run(config_path: &Path, setup: Setup) -> Result<ExitCode> {
    let env_path = env_path(config_path);
    // Said before the person goes through the steps, not after.
    let write = match &setup.service {
        Service::Telegram(args) => args.write_env,
        Service::Discord(args) => args.write_env,
    };
    if write && !config_path.exists() {
        bail!(
            "--write-env writes the .env beside the config, and there is no {}: give --config PATH, or leave out --write-env to see the lines",
            config_path.display()
        );
    }
    let lines = match setup.service {
        Service::Telegram(args) => {
            let token = secret(
                args.token,
                &env_path,
                ("--token", "TELEGRAM_BOT_TOKEN"),
                "the bot token @BotFather gave you",
            )?;
            let api_url = args
                .api_url
                .or_else(|| from_dotenv(&env_path, "TELEGRAM_API_URL"))
                .unwrap_or_else(|| telegram::DEFAULT_API_URL.to_owned());
            telegram::run(&token, &api_url, args.wait)?
        }
        Service::Discord(args) => {
            let url = secret(
                args.webhook_url,
                &env_path,
                ("--webhook-url", "DISCORD_WEBHOOK_URL"),
                "the webhook URL Discord gave you",
            )?;
            discord::run(&url)?
        }
    };
    if write {
        write_env(config_path, &env_path, &lines)?;
    } else {
        print_lines(&env_path, &lines);
    }
    Ok(ExitCode::SUCCESS)
}

/// The `.env` the config reads: beside it.
fn env_path(config_path: &Path) -> PathBuf {
    match config_path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.join(".env"),
        _ => PathBuf::from(".env"),
    }
}

/// The secret from the command line or the environment (`flag`, `name`), else from the
/// `.env`, else asked for at the terminal.
fn secret(
    given: Option<String>,
    env_path: &Path,
    (flag, name): (&str, &str),
    what: &str,
) -> Result<Secret> {
    if let Some(value) = given.filter(|v| !v.trim().is_empty()) {
        return Ok(Secret::new(value.trim()));
    }
    if let Some(value) = from_dotenv(env_path, name) {
        eprintln!("using {name} from {}", env_path.display());
        return Ok(Secret::new(value));
    }
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        bail!(
            "give {what}: with {flag}, or as {name} in the environment or in {}",
            env_path.display()
        );
    }
    eprint!("Paste {what}: ");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    stdin.lock().read_line(&mut line)?;
    let value = line.trim();
    if value.is_empty() {
        bail!("no {what} given");
    }
    Ok(Secret::new(value))
}

/// `name`'s value in the `.env`, if it has a non-empty one.
fn from_dotenv(env_path: &Path, name: &str) -> Option<String> {
    let vars = read_dotenv(env_path).ok()?;
    let value = vars.get(name)?.trim();
    (!value.is_empty()).then(|| value.to_owned())
}

fn print_lines(env_path: &Path, lines: &[EnvLine]) {
    println!();
    println!(
        "Add these lines to {} (or run this again with --write-env to have them written):",
        env_path.display()
    );
    for line in lines {
        println!("{}={}", line.name, line.shown);
    }
    for line in lines.iter().filter(|l| l.shown != l.value.expose()) {
        println!(
            "({} is shown as {}: write the whole value you gave)",
            line.name, line.shown
        );
    }
}

fn write_env(config_path: &Path, env_path: &Path, lines: &[EnvLine]) -> Result<()> {
    let vars: Vec<(&str, &str)> = lines.iter().map(|l| (l.name, l.value.expose())).collect();
    env_file::update(env_path, &vars)?;
    println!();
    println!(
        "Wrote {} to {} (its other lines are kept).",
        lines.iter().map(|l| l.name).collect::<Vec<_>>().join(", "),
        env_path.display()
    );
    println!(
        "A running router reloads it by itself; otherwise start one: alert-router --config {}",
        config_path.display()
    );
    // The process environment wins over .env when the router reads its config.
    for line in lines {
        if std::env::var(line.name).is_ok_and(|v| v != line.value.expose()) {
            println!(
                "note: {} is also set in this shell's environment, which wins over .env: unset it before starting the router",
                line.name
            );
        }
    }
    Ok(())
}

/// A request's error without its URL: the URL holds the token.
fn transport(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// A runtime for the few requests a setup makes.
fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_env_file_is_beside_the_config() {
        assert_eq!(env_path(Path::new("router.yaml")), Path::new(".env"));
        assert_eq!(
            env_path(Path::new("/etc/ar/router.yaml")),
            Path::new("/etc/ar/.env")
        );
    }
}
