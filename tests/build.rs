//! Compiles the C test plugin (`c/test_plugin.c`) against the ABI header alone, three
//! times: as it is, into `$OUT_DIR/c-plugins/libctest.so`; claiming ABI 2, into
//! `$OUT_DIR/c-plugins-abi2/libctest.so`; and with a descriptor from before `validate`
//! was appended, into `$OUT_DIR/c-plugins-old/libctest.so`. The tests find the
//! directories through `AR_TEST_C_PLUGIN_DIR`, `AR_TEST_C_PLUGIN_ABI2_DIR` and
//! `AR_TEST_C_PLUGIN_OLD_DIR` (set at compile time).

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let manifest_dir = PathBuf::from(env("CARGO_MANIFEST_DIR"));
    let out_dir = PathBuf::from(env("OUT_DIR"));
    let source = manifest_dir.join("c/test_plugin.c");
    let include = manifest_dir.join("../plugin-api/include");
    println!("cargo:rerun-if-changed={}", source.display());
    println!(
        "cargo:rerun-if-changed={}",
        include.join("alert_router_plugin.h").display()
    );
    println!("cargo:rerun-if-changed=build.rs");

    for (dir_name, env_name, defines) in [
        ("c-plugins", "AR_TEST_C_PLUGIN_DIR", &[][..]),
        (
            "c-plugins-abi2",
            "AR_TEST_C_PLUGIN_ABI2_DIR",
            &["-DAR_TEST_ABI_VERSION=2"][..],
        ),
        (
            "c-plugins-old",
            "AR_TEST_C_PLUGIN_OLD_DIR",
            &["-DAR_TEST_OLD_DESCRIPTOR"][..],
        ),
    ] {
        let dir = out_dir.join(dir_name);
        if let Err(e) = std::fs::create_dir_all(&dir) {
            fail(&format!("cannot create {}: {e}", dir.display()));
        }
        compile(&source, &include, defines, &dir.join("libctest.so"));
        println!("cargo:rustc-env={env_name}={}", dir.display());
    }
}

fn compile(source: &Path, include: &Path, defines: &[&str], output: &Path) {
    let mut command = cc::Build::new().get_compiler().to_command();
    command
        .args([
            "-shared", "-fPIC", "-std=c99", "-Wall", "-Wextra", "-Werror",
        ])
        .arg("-I")
        .arg(include)
        .args(defines)
        .arg("-o")
        .arg(output)
        .arg(source);
    run(command);
}

fn run(mut command: Command) {
    match command.output() {
        Ok(out) if out.status.success() => {}
        Ok(out) => fail(&format!(
            "{command:?} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )),
        Err(e) => fail(&format!(
            "cannot run the C compiler ({command:?}): {e}; install a C compiler (cc) or set CC"
        )),
    }
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| fail(&format!("cargo did not set {name}")))
}

fn fail(message: &str) -> ! {
    eprintln!("error: building the C test plugin: {message}");
    std::process::exit(1)
}
