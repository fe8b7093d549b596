//! Records the commit the binary is built from, for `--version`, the
//! `guildscope_build_info` metric, trace resources and error reports.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/refs/heads");
    println!("cargo:rerun-if-env-changed=GUILDSCOPE_GIT_SHA");
    let sha = std::env::var("GUILDSCOPE_GIT_SHA").ok().or_else(|| {
        let output = Command::new("git")
            .args(["rev-parse", "--short=12", "HEAD"])
            .output()
            .ok()?;
        output
            .status
            .success()
            .then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
            .filter(|s| !s.is_empty())
    });
    if let Some(sha) = sha {
        println!("cargo:rustc-env=GUILDSCOPE_GIT_SHA={sha}");
    }
}
