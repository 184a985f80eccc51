//! `net-hook uninstall`: removes the network.d entry, if net-hook made it.

use std::path::Path;

use crate::error::Result;
use crate::install;

pub fn run(hooks_dir: &Path, dry_run: bool) -> Result<Vec<String>> {
    Ok(install::uninstall(hooks_dir, dry_run)?)
}
