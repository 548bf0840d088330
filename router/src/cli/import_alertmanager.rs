//! `alert-router import-alertmanager`: writes the router's configuration for an
//! Alertmanager one (see [`crate::am_import`]), checks it as `check` does, and lists what
//! it could not convert.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow, bail};
use clap::Args;

use super::env_file;

/// `import-alertmanager`: what to read and where to write.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  alert-router import-alertmanager /etc/alertmanager/alertmanager.yml --output /etc/alert-router
  alert-router --config /etc/alert-router/router.yaml check

It writes router.yaml, rules/alertmanager.yaml, the templates its sinks render and, when
the receivers hold secrets, a .env (readable by its owner only) beside router.yaml. What
it cannot convert is listed as file:line:col, and at the top of router.yaml.")]
pub struct ImportAlertmanager {
    /// Alertmanager's configuration file.
    #[arg(value_name = "ALERTMANAGER_YML")]
    source: PathBuf,
    /// The directory to write into: created if needed, and it must not hold a
    /// router.yaml, rules or templates of the same names already.
    #[arg(long, short, value_name = "DIR", default_value = "alertmanager-import")]
    output: PathBuf,
    /// Where the router finds its plugins (`plugins.dirs`), if not beside router.yaml
    /// or the executable; repeat for several.
    #[arg(long = "plugins", value_name = "DIR")]
    plugin_dirs: Vec<PathBuf>,
}

pub fn run(args: ImportAlertmanager) -> Result<ExitCode> {
    let text = std::fs::read_to_string(&args.source)
        .with_context(|| format!("cannot read {}", args.source.display()))?;
    // router.yaml reads relative paths from its own folder: write these absolute.
    let plugin_dirs = args
        .plugin_dirs
        .iter()
        .map(std::path::absolute)
        .collect::<std::io::Result<Vec<_>>>()
        .context("--plugins")?;
    let imported =
        crate::am_import::convert(&args.source, &text, &plugin_dirs).map_err(|d| anyhow!("{d}"))?;
    let out = &args.output;
    for (path, _) in &imported.files {
        let target = out.join(path);
        if target.exists() {
            bail!(
                "{} exists already: import into a new directory (--output DIR), nothing was written",
                target.display()
            );
        }
    }
    for (path, text) in &imported.files {
        let text = if path == Path::new("router.yaml") && !imported.notes.is_empty() {
            format!("{}{text}", notes_comment(&imported.notes))
        } else {
            text.clone()
        };
        write(&out.join(path), &text)?;
    }
    let env_path = out.join(".env");
    if !imported.env.is_empty() {
        let vars: Vec<(&str, &str)> = imported
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        env_file::update(&env_path, &vars)?;
    }
    println!(
        "wrote {} ({} files{})",
        out.display(),
        imported.files.len(),
        if imported.env.is_empty() {
            String::new()
        } else {
            format!(", and {} secrets in .env", imported.env.len())
        }
    );
    if imported.notes.is_empty() {
        println!("everything was converted");
    } else {
        println!("not converted ({}):", imported.notes.len());
        for note in &imported.notes {
            println!("  {note}");
        }
    }
    // The same validation as `check`, startup and reload.
    let config_path = out.join("router.yaml");
    match super::checked(&config_path) {
        Ok(_) => {
            println!(
                "`alert-router --config {} check` passes",
                config_path.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("the written configuration does not pass `check`:\n{e}");
            Ok(ExitCode::from(1))
        }
    }
}

/// The notes as a comment block for the top of router.yaml.
fn notes_comment(notes: &[String]) -> String {
    let mut out = String::from("# Not converted from Alertmanager's configuration:\n");
    for note in notes {
        out.push_str(&format!("#   {note}\n"));
    }
    out.push_str("#\n");
    out
}

fn write(path: &PathBuf, text: &str) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}
