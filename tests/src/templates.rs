//! The repository's shipped templates, one plugin's folder at a time, compiled by the
//! router's own template layer as the router would compile them.

use alert_router::render::{Markup, Templates};

use crate::harness::{TempDir, repo_root};

/// Compiles `templates/<group>` alone, with `markup` (the markup its plugin declares):
/// another sink's template cannot fail a test of this one. The templates are compiled
/// into memory, so the scratch directory goes when this returns.
pub fn shipped(group: &str, markup: Markup) -> Templates {
    let dir = TempDir::new(&format!("{group}-templates"));
    std::os::unix::fs::symlink(
        repo_root().join("templates").join(group),
        dir.path().join(group),
    )
    .expect("link the template folder");
    Templates::load(dir.path(), &|g| {
        if g == group { markup } else { Markup::None }
    })
    .unwrap_or_else(|problems| panic!("templates/{group} do not load:\n{problems}"))
}
