use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    // Run by libvirt: skip the CLI parser entirely, this is the hot path.
    if args
        .first()
        .is_some_and(|a0| net_hook::hook::is_hook_path(a0))
    {
        let paths = net_hook::hook::Paths::default();
        // libvirt's stdin is a pipe: no need to ask whether it is a terminal.
        let input = net_hook::hook::Input {
            reader: &mut std::io::stdin().lock(),
            terminal: false,
        };
        let code = net_hook::hook::run(&args[1..], &paths, net_hook::hook::Mode::Libvirt, input);
        return ExitCode::from(code);
    }
    ExitCode::from(net_hook::cli::main(args, None))
}
