//! Every example a user may copy works: the `alert-router send ...` commands and the
//! bodies of the `curl` examples in README.md's shell blocks, and the `alert-router send`
//! lines of every command's `--help`, run against a router on the shipped config and
//! accepted by it.
//!
//! The examples are read as a shell would read them (quotes, line continuations,
//! pipes from `echo` and `printf`), by a small reader below that knows only what the
//! examples use, and says so when an example needs more.

use std::io::Write;
use std::process::{Command, Stdio};

use alert_router_tests::harness::{Router, dir_with, repo_root, router_binary};
use alert_router_tests::shipped;
use serde_json::Value;

/// One command of a pipeline: its words.
type Words = Vec<String>;

/// Splits shell text into pipelines (`a | b`), each a list of commands. Knows single
/// and double quotes, backslashes, line continuations, `#` comments, `|`, `&&`, `;`.
fn pipelines(text: &str) -> Vec<Vec<Words>> {
    let mut out: Vec<Vec<Words>> = Vec::new();
    let mut pipeline: Vec<Words> = Vec::new();
    let mut command: Words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = text.chars().peekable();
    let end_word = |word: &mut String, in_word: &mut bool, command: &mut Words| {
        if *in_word {
            command.push(std::mem::take(word));
            *in_word = false;
        }
    };
    let end_command = |command: &mut Words, pipeline: &mut Vec<Words>| {
        if !command.is_empty() {
            pipeline.push(std::mem::take(command));
        }
    };
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                for q in chars.by_ref() {
                    if q == '\'' {
                        break;
                    }
                    word.push(q);
                }
            }
            '"' => {
                in_word = true;
                while let Some(q) = chars.next() {
                    match q {
                        '"' => break,
                        '\\' if matches!(chars.peek(), Some('"' | '\\' | '$' | '`')) => {
                            word.extend(chars.next());
                        }
                        '$' | '`' => panic!(
                            "an example expands a variable, which this reader does not: {text}"
                        ),
                        q => word.push(q),
                    }
                }
            }
            '\\' => match chars.next() {
                Some('\n') => {}
                Some(n) => {
                    in_word = true;
                    word.push(n);
                }
                None => {}
            },
            '#' if !in_word => {
                while chars.peek().is_some_and(|n| *n != '\n') {
                    chars.next();
                }
            }
            ' ' | '\t' => end_word(&mut word, &mut in_word, &mut command),
            '|' => {
                end_word(&mut word, &mut in_word, &mut command);
                end_command(&mut command, &mut pipeline);
            }
            '\n' | ';' => {
                end_word(&mut word, &mut in_word, &mut command);
                end_command(&mut command, &mut pipeline);
                if !pipeline.is_empty() {
                    out.push(std::mem::take(&mut pipeline));
                }
            }
            '&' if chars.peek() == Some(&'&') => {
                chars.next();
                end_word(&mut word, &mut in_word, &mut command);
                end_command(&mut command, &mut pipeline);
                if !pipeline.is_empty() {
                    out.push(std::mem::take(&mut pipeline));
                }
            }
            '$' | '`' | '<' | '>' | '&' => {
                panic!("an example uses `{c}`, which this reader does not know: {text}")
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    end_word(&mut word, &mut in_word, &mut command);
    end_command(&mut command, &mut pipeline);
    if !pipeline.is_empty() {
        out.push(pipeline);
    }
    out
}

/// What the first command of a pipeline writes to the next one (`echo`, `printf '%s\n'`).
fn output_of(command: &Words) -> String {
    match command[0].as_str() {
        "echo" => format!("{}\n", command[1..].join(" ")),
        "printf" if command.get(1).map(String::as_str) == Some("%s\\n") => {
            command[2..].iter().map(|a| format!("{a}\n")).collect()
        }
        _ => panic!("an example pipes from {command:?}, which this test cannot run"),
    }
}

/// An example that posts events.
#[derive(Debug)]
enum Example {
    /// `alert-router ... send ...`: the words after the program, and its stdin.
    Send { args: Words, stdin: Option<String> },
    /// `curl ... -d BODY URL`: the path of the URL and the body.
    Curl { path: String, body: String },
}

/// The examples among `pipelines`; other commands (`cargo build`, a `curl` GET) are not
/// examples of posting.
fn examples(pipelines: &[Vec<Words>]) -> Vec<Example> {
    let mut found = Vec::new();
    for pipeline in pipelines {
        let last = pipeline.last().expect("a pipeline has a command");
        // What the command before the last writes into it, worked out only for examples.
        let stdin = || (pipeline.len() > 1).then(|| output_of(&pipeline[pipeline.len() - 2]));
        if last[0].ends_with("alert-router") && last.iter().any(|w| w == "send") {
            found.push(Example::Send {
                args: last[1..].to_vec(),
                stdin: stdin(),
            });
        } else if last[0] == "curl" {
            let body = last
                .iter()
                .position(|w| {
                    matches!(w.as_str(), "-d" | "--data" | "--data-binary" | "--data-raw")
                })
                .map(|i| last[i + 1].clone());
            let Some(body) = body else { continue };
            let body = match body.as_str() {
                "@-" => stdin().expect("curl reads @- from a pipe"),
                b if b.starts_with('@') => panic!("a curl example reads a file: {last:?}"),
                b => b.to_owned(),
            };
            let url = last
                .iter()
                .find(|w| w.contains("/v1/"))
                .unwrap_or_else(|| panic!("a curl example without a /v1/ URL: {last:?}"));
            let path = url[url.find("/v1/").unwrap_or(0)..].to_owned();
            found.push(Example::Curl { path, body });
        }
    }
    found
}

/// The `sh` blocks of a Markdown text.
fn shell_blocks(markdown: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in markdown.lines() {
        match (&mut current, line.trim_start().strip_prefix("```")) {
            (None, Some(lang)) if matches!(lang.trim(), "sh" | "bash" | "shell" | "console") => {
                current = Some(String::new());
            }
            (Some(block), Some(_)) => {
                blocks.push(std::mem::take(block));
                current = None;
            }
            (None, Some(_)) => current = Some(String::from("#not shell")),
            (Some(block), None) => {
                block.push_str(line);
                block.push('\n');
            }
            (None, None) => {}
        }
    }
    blocks
        .into_iter()
        .filter(|b| !b.starts_with("#not shell"))
        .collect()
}

/// The help of `words` and of every command below it.
fn all_help(words: &mut Vec<String>, out: &mut String) {
    let help = Command::new(router_binary())
        .args(words.iter())
        .arg("--help")
        .output()
        .expect("run --help");
    let text = String::from_utf8_lossy(&help.stdout).into_owned();
    assert!(help.status.success(), "{words:?} --help: {text}");
    let commands: Vec<String> = text
        .split("\nCommands:\n")
        .nth(1)
        .map(|rest| {
            rest.lines()
                .take_while(|l| l.starts_with("  "))
                .filter_map(|l| l.split_whitespace().next())
                .filter(|c| *c != "help")
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    out.push_str(&text);
    for command in commands {
        words.push(command);
        all_help(words, out);
        words.pop();
    }
}

/// The shell lines of help text that post with `send`: lines holding `alert-router send`,
/// and `send ...` in backticks.
fn help_examples(help: &str) -> String {
    let mut shell = String::new();
    for line in help.lines() {
        let line = line.trim();
        if line.contains("alert-router send") {
            shell.push_str(line.trim_start_matches("$ "));
            shell.push('\n');
        }
        for (i, span) in line.split('`').enumerate() {
            if i % 2 == 1 && span.starts_with("send ") {
                shell.push_str(&format!("alert-router {span}\n"));
            }
        }
    }
    shell
}

/// Runs `example` against `router`; returns what went wrong, if anything.
async fn run(example: &Example, router: &Router) -> Option<String> {
    match example {
        Example::Send { args, stdin } => {
            let mut child = Command::new(router_binary())
                .args(args)
                .env("ALERT_ROUTER_URL", &router.url)
                .env_remove("ALERT_ROUTER_TOKEN")
                .env("ALERT_ROUTER_LOG", "warn")
                .stdin(if stdin.is_some() {
                    Stdio::piped()
                } else {
                    Stdio::null()
                })
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("start the router binary");
            if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
                pipe.write_all(text.as_bytes()).expect("write stdin");
            }
            let out = child.wait_with_output().expect("send's output");
            let answer: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
            (!(out.status.success() && answer["accepted"] == 1)).then(|| {
                format!(
                    "{example:?}: exit {:?}, {}{}",
                    out.status.code(),
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                )
            })
        }
        Example::Curl { path, body } => {
            let resp = reqwest::Client::new()
                .post(format!("{}{path}", router.url))
                .header("content-type", "application/json")
                .body(body.clone())
                .send()
                .await
                .expect("POST the example's body");
            let status = resp.status().as_u16();
            let answer: Value = resp.json().await.unwrap_or(Value::Null);
            (!(status == 202 && answer["accepted"].as_u64() >= Some(1)))
                .then(|| format!("{example:?}: {status} {answer}"))
        }
    }
}

/// A router on the shipped config, as a user runs it (without the dashboard's port).
async fn shipped_router() -> Router {
    let dir = dir_with(&[("router.yaml", &shipped::router_yaml())]);
    Router::start_in_with_env(dir, &[("DASHBOARD_ENABLED", "false")]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_posting_example_in_the_readme_is_accepted() {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).expect("README.md");
    let examples: Vec<Example> = shell_blocks(&readme)
        .iter()
        .flat_map(|block| examples(&pipelines(block)))
        .collect();
    let sends = examples
        .iter()
        .filter(|e| matches!(e, Example::Send { .. }))
        .count();
    let curls = examples.len() - sends;
    assert!(
        sends >= 5 && curls >= 2,
        "too few examples found ({sends} send, {curls} curl): is the reader still right?"
    );
    let router = shipped_router().await;
    let mut failed = Vec::new();
    for example in &examples {
        failed.extend(run(example, &router).await);
    }
    assert!(
        failed.is_empty(),
        "README examples refused:\n{}",
        failed.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_send_example_in_the_help_is_accepted() {
    let mut help = String::new();
    all_help(&mut Vec::new(), &mut help);
    let examples = examples(&pipelines(&help_examples(&help)));
    assert!(
        examples.len() >= 5,
        "too few examples in the help: {examples:?}"
    );
    let router = shipped_router().await;
    let mut failed = Vec::new();
    for example in &examples {
        failed.extend(run(example, &router).await);
    }
    assert!(
        failed.is_empty(),
        "--help examples refused:\n{}",
        failed.join("\n")
    );
}

#[test]
fn the_reader_reads_quotes_continuations_and_pipes_as_a_shell_does() {
    let text = "cargo build && ./x send a 'b:=[1, \"2\"]' c=\"d e\" \\\n  f=g # a comment\nprintf '%s\\n' '{\"a\":1}' x | curl -s -XPOST h/v1/events --data-binary @-\n";
    let p = pipelines(text);
    assert_eq!(p.len(), 3, "{p:?}");
    assert_eq!(
        p[1],
        vec![vec!["./x", "send", "a", "b:=[1, \"2\"]", "c=d e", "f=g"]]
    );
    assert_eq!(output_of(&p[2][0]), "{\"a\":1}\nx\n");
    assert_eq!(p[2][1][0], "curl");
}
