//! Events the router derives itself: alert rules over the event stream (`alerts:` in
//! rule files) and, on a calendar, schedules.

pub mod cron;
pub mod eval;
pub mod rules;
pub mod schedules;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_saphyr::Spanned;

use crate::diag::{Diagnostic, Diagnostics};

/// The names alert rules (or schedules) took, across every rule file: each must be a
/// valid name and unique.
#[derive(Default)]
pub(crate) struct Names(BTreeMap<String, (PathBuf, u32)>);

impl Names {
    /// Takes `name` for what `owner` says (`alert rule `x``), defined in `file`; a
    /// problem at the name's place when it is not a valid name or was taken before.
    pub(crate) fn claim(
        &mut self,
        file: &Path,
        name: &Spanned<String>,
        owner: &str,
        problems: &mut Diagnostics,
    ) {
        let place = name.referenced;
        let at = |m: String| {
            Diagnostic::new(
                file,
                place.line() as u32,
                place.column() as u32,
                format!("{owner}: {m}"),
            )
        };
        if !crate::config::valid_name(&name.value) {
            problems.push(at("use letters, digits, `_` and `-` in a name".into()));
        }
        match self.0.get(&name.value) {
            Some((first, line)) => problems.push(at(format!(
                "the name is used twice (first at {}:{line}): names must be unique",
                first.display()
            ))),
            None => {
                self.0.insert(
                    name.value.clone(),
                    (file.to_path_buf(), place.line() as u32),
                );
            }
        }
    }
}
