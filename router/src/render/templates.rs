//! [`Templates`]: every template file under the templates directory, compiled once per
//! configuration load, and the lookup and rendering the pipeline calls for each message.

use std::collections::HashMap;
use std::fs;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::io;
use std::path::{Path, PathBuf};

use minijinja::{Environment, Template, UndefinedBehavior, Value};

use super::compile::{Chunk, FileTemplate, Shape};
use super::escape::{self, SEP};
use super::json::{Unconvertible, to_json, write_json_string};
use super::locate::locate;
use super::names::{Known, Scan};
use super::{FUEL, Markup, RenderError, filters};
use crate::diag::{Diagnostic, Diagnostics};

/// A template found by [`Templates::resolve`]; valid for the [`Templates`] that gave it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TemplateId(u32);

/// The compiled templates of one configuration. `Send + Sync`: build it once, share it
/// behind an `Arc`, render from any thread without locks.
pub struct Templates {
    files: Vec<File>,
    /// group → name → file.
    index: HashMap<String, HashMap<String, TemplateId>>,
    compiled: Compiled,
}

struct File {
    path: PathBuf,
    hash: u64,
    markup: Markup,
    /// The file's text, to point errors at their line and column.
    text: String,
    template: FileTemplate,
}

type Handles<'env> = Vec<Option<Template<'env, 'env>>>;

self_cell::self_cell!(
    /// The environment owns the compiled templates; the handles borrow it, so a render
    /// neither looks a template up by name nor takes the environment's lock.
    struct Compiled {
        owner: Environment<'static>,
        #[not_covariant]
        dependent: Handles,
    }
);

/// Directories deeper than this under the templates directory are not searched (a
/// symlink loop would otherwise never end).
const MAX_DEPTH: usize = 16;

impl Templates {
    /// Loads and compiles every `*.yaml` under `dir`: `dir/<group>/<name>.yaml`, where
    /// `<group>` is a sink or plugin name and `<name>` may contain `/`. `markup_of(group)`
    /// gives each group's markup (`Markup::None` for a group that matches no sink or
    /// plugin: such files are compiled and checked anyway).
    ///
    /// Reports every problem (unreadable files, YAML errors, template syntax errors),
    /// each with `file:line:col`. A missing `dir` is an empty set, not an error.
    pub fn load(dir: &Path, markup_of: &dyn Fn(&str) -> Markup) -> Result<Templates, Diagnostics> {
        let mut problems = Diagnostics::default();
        let mut found = Vec::new();
        match fs::metadata(dir) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => problems.push(Diagnostic::file(dir, format!("cannot read: {e}"))),
            Ok(meta) if !meta.is_dir() => problems.push(Diagnostic::file(
                dir,
                "is not a directory: `templates` must name the templates directory",
            )),
            Ok(_) => walk(dir, &mut Vec::new(), &mut found, &mut problems),
        }
        found.sort();

        let mut files = Vec::with_capacity(found.len());
        let mut index: HashMap<String, HashMap<String, TemplateId>> = HashMap::new();
        for (group, name) in found {
            let path = dir.join(&group).join(format!("{name}.yaml"));
            let text = match fs::read_to_string(&path) {
                Ok(text) => text,
                Err(e) => {
                    problems.push(Diagnostic::file(&path, format!("cannot read: {e}")));
                    continue;
                }
            };
            match FileTemplate::compile(&path, &text) {
                Ok(template) => {
                    let id = TemplateId(files.len() as u32);
                    index.entry(group.clone()).or_default().insert(name, id);
                    files.push(File {
                        hash: hash(&text),
                        markup: markup_of(&group),
                        path,
                        text,
                        template,
                    });
                }
                Err(more) => problems.extend(more),
            }
        }

        let mut env = environment();
        for (i, file) in files.iter().enumerate() {
            let source = &file.template.source;
            if source.is_empty() {
                continue;
            }
            if let Err(e) = env.add_template_owned(template_name(i, file.markup), source.clone()) {
                problems.push(file.template.diagnose(&file.path, &file.text, &e, FUEL));
            }
        }
        problems.extend(unknown_names(&env, &files));
        if !problems.is_empty() {
            return Err(problems);
        }
        let compiled = Compiled::try_new(env, |env| {
            let mut handles = Vec::with_capacity(files.len());
            for (i, file) in files.iter().enumerate() {
                if file.template.source.is_empty() {
                    handles.push(None);
                } else {
                    let name = template_name(i, file.markup);
                    let handle = env
                        .get_template(&name)
                        .map_err(|e| file.template.diagnose(&file.path, &file.text, &e, FUEL))?;
                    handles.push(Some(handle));
                }
            }
            Ok::<_, Diagnostic>(handles)
        })?;
        Ok(Templates {
            files,
            index,
            compiled,
        })
    }

    /// The template a message for `sink` (an instance of `plugin`) uses: `sink/template`,
    /// then `plugin/template`, then `sink/default`, then `plugin/default`. `template` is
    /// the rule's `template`, or by default the event type.
    pub fn resolve(&self, sink: &str, plugin: &str, template: &str) -> Option<TemplateId> {
        self.find(sink, plugin, template)
            .or_else(|| self.find(sink, plugin, "default"))
    }

    /// `sink/name`, then `plugin/name`, without falling back to `default`: the lookup
    /// for a plugin rendering one of its own templates (the host `render` callback).
    pub fn find(&self, sink: &str, plugin: &str, name: &str) -> Option<TemplateId> {
        let in_group = |group: &str| self.index.get(group)?.get(name).copied();
        in_group(sink).or_else(|| in_group(plugin))
    }

    /// Renders one template to the payload JSON. `ctx` is usually [`super::context`].
    pub fn render(&self, id: TemplateId, ctx: &Value) -> Result<serde_json::Value, RenderError> {
        self.evaluate(id, ctx, |file, pieces, natives| {
            fill(file, &file.template.shape, pieces, natives)
        })
    }

    /// Renders one template to the payload as JSON text: exactly `render(..)` serialized,
    /// but without building the JSON tree, which is most of the cost of a large
    /// payload. For a caller that stores or sends the payload as text.
    pub fn render_json(&self, id: TemplateId, ctx: &Value) -> Result<String, RenderError> {
        self.evaluate(id, ctx, |file, pieces, natives| {
            write_json(file, pieces, natives)
        })
    }

    /// Runs the file's combined template and hands its output, cut per string, and its
    /// native values to `finish`.
    fn evaluate<T>(
        &self,
        id: TemplateId,
        ctx: &Value,
        finish: impl FnOnce(&File, &[&str], &[Value]) -> Result<T, RenderError>,
    ) -> Result<T, RenderError> {
        let Some(file) = self.files.get(id.0 as usize) else {
            return Err(RenderError::new(Diagnostic::file(
                "<templates>",
                format!(
                    "no template #{} in this set: it comes from another load",
                    id.0
                ),
            )));
        };
        let template = &file.template;
        let fail = |e: &minijinja::Error| {
            RenderError::new(template.diagnose(&file.path, &file.text, e, FUEL))
        };
        self.compiled.with_dependent(|_, handles| {
            let Some(Some(handle)) = handles.get(id.0 as usize) else {
                // Nothing to render: every string in the file is literal.
                return finish(file, &[], &[]);
            };
            if template.natives.is_empty() {
                let out = handle.render(ctx.clone()).map_err(|e| fail(&e))?;
                finish(file, &split(file, &out)?, &[])
            } else {
                let captured = handle.render_captured(ctx.clone()).map_err(|e| fail(&e))?;
                let state = captured.state();
                let natives: Vec<Value> = template
                    .natives
                    .iter()
                    .map(|n| state.lookup(&n.var).unwrap_or(Value::UNDEFINED))
                    .collect();
                finish(file, &split(file, captured.output())?, &natives)
            }
        })
    }

    /// The file a template came from, for messages (an empty path for an id from
    /// another set).
    pub fn path(&self, id: TemplateId) -> &Path {
        self.files
            .get(id.0 as usize)
            .map_or(Path::new(""), |f| f.path.as_path())
    }

    /// Every file with a hash of its content, to tell what a reload changed. The hash
    /// is stable within one build of the router, not across versions.
    pub fn files(&self) -> impl Iterator<Item = (&Path, u64)> {
        self.files.iter().map(|f| (f.path.as_path(), f.hash))
    }

    /// How many template files there are.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }
}

impl std::fmt::Debug for Templates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Templates")
            .field(
                "files",
                &self.files.iter().map(|f| &f.path).collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// The environment every template renders in: strict about missing values, bounded by
/// fuel, escaping for each group's markup, with the trading filters.
fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_fuel(Some(FUEL));
    // Debug mode makes errors name the missing value (`event.x is undefined`) even when a
    // filter or operator received it; it costs nothing until something fails.
    env.set_debug(true);
    env.set_formatter(escape::format);
    env.set_auto_escape_callback(|name| {
        let markup = name
            .split(':')
            .next()
            .and_then(|m| m.parse().ok())
            .unwrap_or(Markup::None);
        escape::auto_escape(markup)
    });
    filters::register(&mut env);
    env
}

/// Every filter, test and function the files call that `env` does not have, at its
/// place: `templates/console/x.yaml:3:22: unknown filter `datetme` (did you mean
/// `datetime`?)`. A name one string of a file defines (a macro, `{% set %}`) counts for
/// the strings after it too, as it does when the file renders.
fn unknown_names(env: &Environment<'_>, files: &[File]) -> Diagnostics {
    let mut known = Known::new(env, filters::NAMES);
    let mut problems = Diagnostics::default();
    for file in files {
        let segments = &file.template.segments;
        let scans: Vec<Scan> = segments
            .iter()
            .map(|s| Scan::template(&s.scalar.text))
            .collect();
        let defined: Vec<String> = scans.iter().flat_map(|s| s.defined.clone()).collect();
        for (segment, scan) in segments.iter().zip(&scans) {
            for call in &scan.calls {
                if let Some(message) = known.problem(call, &defined) {
                    let (line, col) = locate(&file.text, &segment.scalar, call.at.clone());
                    problems.push(Diagnostic::new(&file.path, line, col, message));
                }
            }
        }
    }
    problems
}

/// A file's name in the environment: its markup (read back by the auto-escape callback)
/// and its index.
fn template_name(index: usize, markup: Markup) -> String {
    format!("{}:{index}", markup.as_str())
}

/// The combined output cut into one piece per text string.
fn split<'a>(file: &File, out: &'a str) -> Result<Vec<&'a str>, RenderError> {
    let mut pieces: Vec<&str> = Vec::with_capacity(file.template.texts + 1);
    pieces.extend(out.split(SEP));
    // Every text string ends with a separator, so the last piece is empty.
    if pieces.len() != file.template.texts + 1 {
        return Err(RenderError::new(Diagnostic::file(
            &file.path,
            "a value contained the control character U+001F, which a template cannot carry \
             (inside `{% autoescape %}`, values are not cleaned of it)",
        )));
    }
    Ok(pieces)
}

/// The payload: `shape` with its slots filled.
fn fill(
    file: &File,
    shape: &Shape,
    pieces: &[&str],
    natives: &[Value],
) -> Result<serde_json::Value, RenderError> {
    Ok(match shape {
        Shape::Literal(v) => v.clone(),
        Shape::Text(i) => {
            serde_json::Value::String(pieces.get(*i).copied().unwrap_or("").to_owned())
        }
        Shape::Native(i) => native(file, *i, natives)?,
        Shape::Seq(items) => serde_json::Value::Array(
            items
                .iter()
                .map(|i| fill(file, i, pieces, natives))
                .collect::<Result<_, _>>()?,
        ),
        Shape::Map(entries) => {
            let mut map = serde_json::Map::with_capacity(entries.len());
            for (key, value) in entries {
                map.insert(key.clone(), fill(file, value, pieces, natives)?);
            }
            serde_json::Value::Object(map)
        }
    })
}

/// The `i`-th native value as JSON.
fn native(file: &File, i: usize, natives: &[Value]) -> Result<serde_json::Value, RenderError> {
    let value = natives.get(i).cloned().unwrap_or(Value::UNDEFINED);
    to_json(&value, file.markup).map_err(|why| {
        let segment = file
            .template
            .natives
            .get(i)
            .map_or(usize::MAX, |n| n.segment);
        RenderError::new(
            file.template
                .diagnose_segment(&file.path, &file.text, segment, |expr| match why {
                    Unconvertible::Undefined => format!("undefined value: {expr}"),
                    Unconvertible::Other(reason) => format!("{reason} (in `{expr}`)"),
                }),
        )
    })
}

/// The payload as JSON text: the file's chunks with their holes filled.
fn write_json(file: &File, pieces: &[&str], natives: &[Value]) -> Result<String, RenderError> {
    let mut out = String::with_capacity(file.template.source.len() + 256);
    for chunk in &file.template.chunks {
        match chunk {
            Chunk::Raw(text) => out.push_str(text),
            Chunk::Text(i) => write_json_string(&mut out, pieces.get(*i).copied().unwrap_or("")),
            Chunk::Native(i) => out.push_str(&native(file, *i, natives)?.to_string()),
        }
    }
    Ok(out)
}

fn hash(text: &str) -> u64 {
    let mut h = DefaultHasher::new();
    text.hash(&mut h);
    h.finish()
}

/// Collects `(group, name)` of every `*.yaml` under `dir`; `rel` is the path below it.
fn walk(
    dir: &Path,
    rel: &mut Vec<String>,
    found: &mut Vec<(String, String)>,
    problems: &mut Diagnostics,
) {
    let here = rel.iter().fold(dir.to_path_buf(), |p, c| p.join(c));
    if rel.len() > MAX_DEPTH {
        problems.push(Diagnostic::file(
            &here,
            format!("nested more than {MAX_DEPTH} directories deep (a symlink loop?)"),
        ));
        return;
    }
    let entries = match fs::read_dir(&here) {
        Ok(entries) => entries,
        Err(e) => {
            problems.push(Diagnostic::file(
                &here,
                format!("cannot read directory: {e}"),
            ));
            return;
        }
    };
    for entry in entries {
        let entry = match entry {
            Ok(entry) => entry,
            Err(e) => {
                problems.push(Diagnostic::file(
                    &here,
                    format!("cannot read directory: {e}"),
                ));
                continue;
            }
        };
        let path = entry.path();
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            problems.push(Diagnostic::file(
                &path,
                "the file name is not UTF-8: rename it",
            ));
            continue;
        };
        // Hidden files: editor swap files, `.git`.
        if name.starts_with('.') {
            continue;
        }
        // Follows symlinks, so a linked file or folder counts as what it points to.
        let meta = match fs::metadata(&path) {
            Ok(meta) => meta,
            Err(e) => {
                problems.push(Diagnostic::file(&path, format!("cannot read: {e}")));
                continue;
            }
        };
        if meta.is_dir() {
            rel.push(name);
            walk(dir, rel, found, problems);
            rel.pop();
        } else if let Some(stem) = name.strip_suffix(".yaml") {
            match rel.split_first() {
                None => problems.push(Diagnostic::file(
                    &path,
                    "a template must be in a folder named after its sink or plugin: \
                     templates/<sink or plugin>/<name>.yaml",
                )),
                Some((group, sub)) => {
                    let mut template = sub.join("/");
                    if !template.is_empty() {
                        template.push('/');
                    }
                    template.push_str(stem);
                    found.push((group.clone(), template));
                }
            }
        } else if name.ends_with(".yml") {
            problems.push(Diagnostic::file(
                &path,
                "templates are read from *.yaml files only: rename it to .yaml",
            ));
        }
    }
}
