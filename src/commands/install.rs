//! `net-hook install`: the network.d entry, a symlink to this binary.

use std::path::PathBuf;

use crate::error::Result;
use crate::install;

pub fn run(hooks_dir: PathBuf, target: Option<PathBuf>, dry_run: bool) -> Result<Vec<String>> {
    let target = match target {
        Some(t) => t,
        None => std::env::current_exe()
            .and_then(|p| p.canonicalize())
            .map_err(|e| {
                crate::error::Error::Usage(format!(
                    "cannot tell where this binary is ({e}); pass --target /usr/bin/net-hook"
                ))
            })?,
    };
    Ok(install::install(&install::Opts {
        hooks_dir,
        target,
        dry_run,
    })?)
}
