//! The `net-hook` binary: libvirt's hook, and the companion commands.
//!
//! No Rust runtime start-up (`no_main`): libvirt runs this for every network
//! event, and std's set-up before `main` (probing fds 0-2, reading
//! /proc/self/maps for the stack guard, a signal stack, SIGPIPE) was a third
//! of an unmanaged run's syscalls (BENCHMARKS.md). std still works: glibc
//! hands it argc/argv. The companion commands restore SIGPIPE's handling.
// The test harness brings its own main.
#![cfg_attr(not(test), no_main)]

#[cfg(not(test))]
use std::ffi::c_int;

#[cfg(not(test))]
#[unsafe(no_mangle)]
pub extern "C" fn main(_argc: c_int, _argv: *const *const std::ffi::c_char) -> c_int {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    // Run by libvirt: skip the CLI parser entirely, this is the hot path.
    if let Some(kind) = args.first().and_then(|a0| net_hook::hook::hook_kind(a0)) {
        use net_hook::hook::{HookKind, Input, Mode, Paths};
        let paths = Paths::default();
        // libvirt's stdin is a pipe: no need to ask whether it is a terminal.
        let input = Input {
            reader: &mut std::io::stdin().lock(),
            terminal: false,
        };
        let code = match kind {
            HookKind::Network => net_hook::hook::run(&args[1..], &paths, Mode::Libvirt, input),
            HookKind::Qemu => net_hook::qemu_hook::run(&args[1..], &paths, Mode::Libvirt, input),
        };
        return c_int::from(code);
    }
    // As std's runtime does: a closed pipe is an error to report, not a kill.
    // SAFETY: setting a signal's disposition to SIG_IGN before any thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
    let code = net_hook::cli::main(args, None);
    // std's runtime flushed stdout on the way out; without it a last line
    // without its newline would be lost.
    let _ = std::io::Write::flush(&mut std::io::stdout());
    c_int::from(code)
}
