//! The shipped `router.yaml`, made to run in a test directory: the test plugins, the
//! repository's rules and templates, everything else as a user gets it.

use crate::harness::repo_root;

/// The shipped rule files that act on events (`{shipped-rules}` in a test config, which
/// the harness expands): all but `schedules.yaml`, whose schedules run on the wall clock
/// and would post into whichever test happened to run at 23:59. They are tested on a
/// clock of their own (tests/alert_rules.rs, and `alert-router test` on
/// tests/rules/trading.yaml).
pub const RULES: &str = "[\"{repo}/rules/default.yaml\", \"{repo}/rules/alerts.yaml\"]";

/// The shipped router.yaml with `plugins.dirs`, `rules` and `templates` pointing at the
/// test plugins and the repository (as `{plugins}` and `{repo}`, which the harness
/// expands). Start it with `DASHBOARD_ENABLED=false`, or the dashboard takes port 8501.
///
/// # Panics
/// If router.yaml cannot be read or no longer has those three lines as shipped.
pub fn router_yaml() -> String {
    let path = repo_root().join("router.yaml");
    let shipped = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let mut config = shipped.clone();
    for (line, replacement) in [
        ("\n  dirs: [plugins]\n", "\n  dirs: [\"{plugins}\"]\n"),
        ("\nrules: rules\n", "\nrules: {shipped-rules}\n"),
        (
            "\ntemplates: templates\n",
            "\ntemplates: \"{repo}/templates\"\n",
        ),
    ] {
        assert!(
            config.contains(line),
            "the shipped router.yaml no longer has {line:?}: update tests/src/shipped.rs"
        );
        config = config.replace(line, replacement);
    }
    config
}
