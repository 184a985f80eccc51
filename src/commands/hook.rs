//! `net-hook hook [--qemu] [--dry-run] NAME OP SUBOP [-]`: libvirt's network
//! (or qemu) hook protocol, run by hand exactly as libvirt would run it.

use std::ffi::OsString;
use std::io::IsTerminal;

use crate::hook::{self, Input, Mode, Paths};

pub fn run(args: &[OsString], paths: &Paths, dry_run: bool, qemu: bool) -> u8 {
    let mode = if dry_run {
        Mode::DryRun
    } else {
        Mode::Explicit
    };
    let stdin = std::io::stdin();
    let terminal = stdin.is_terminal();
    let input = Input {
        reader: &mut stdin.lock(),
        terminal,
    };
    if qemu {
        crate::qemu_hook::run(args, paths, mode, input)
    } else {
        hook::run(args, paths, mode, input)
    }
}
