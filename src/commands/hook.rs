//! `net-hook hook [--dry-run] NETWORK OP SUBOP [-]`: libvirt's protocol,
//! run by hand exactly as libvirt would run it.

use std::ffi::OsString;
use std::io::IsTerminal;

use crate::hook::{self, Input, Mode, Paths};

pub fn run(args: &[OsString], paths: &Paths, dry_run: bool) -> u8 {
    let mode = if dry_run {
        Mode::DryRun
    } else {
        Mode::Explicit
    };
    let stdin = std::io::stdin();
    let terminal = stdin.is_terminal();
    hook::run(
        args,
        paths,
        mode,
        Input {
            reader: &mut stdin.lock(),
            terminal,
        },
    )
}
