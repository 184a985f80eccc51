//! The command line for people and scripts. libvirt's own calls bypass it.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::config::{self, Config};
use crate::hook::{self, Mode, Paths};
use crate::install;

#[derive(Parser)]
#[command(
    name = "net-hook",
    version,
    about = "libvirt network hook that creates VLAN sub-interfaces on libvirt bridges",
    long_about = "libvirt network hook that creates VLAN sub-interfaces (e.g. virbr1.104 = 10.12.8.1/22) \
on a libvirt network's bridge when libvirt reports the network started, and deletes them when it stops.\n\n\
Installed as /etc/libvirt/hooks/network.d/50-net-hook (a link to this binary), it is run by libvirt \
as `50-net-hook NETWORK OP SUBOP -` with the network XML on stdin; networks not in the config are \
ignored at the cost of a process start."
)]
pub struct Cli {
    /// Config file.
    #[arg(long, global = true, value_name = "PATH", default_value = config::DEFAULT_PATH)]
    config: PathBuf,
    /// Where the lock and the per-network outcome records live.
    #[arg(long, global = true, value_name = "DIR", default_value = crate::state::DEFAULT_RUN_DIR)]
    run_dir: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the hook by hand, exactly as libvirt would (network XML on stdin).
    ///
    /// Example: `virsh net-dumpxml 1_provider | net-hook hook 1_provider started begin -`.
    /// Exit status: 0, or 1 when a strict network failed, 2 on a usage error.
    Hook {
        /// Read the host and print the plan; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// NETWORK OP SUBOP [-], as libvirt passes them.
        #[arg(value_name = "ARGS", num_args = 3..=4, allow_hyphen_values = true, required = true)]
        args: Vec<OsString>,
    },
    /// Validate the config.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Install the network.d hook entry (a symlink to this binary).
    Install {
        /// libvirt's hooks directory.
        #[arg(long, value_name = "DIR", default_value = install::DEFAULT_HOOKS_DIR)]
        hooks_dir: PathBuf,
        /// The binary the entry links to (default: this one).
        #[arg(long, value_name = "PATH")]
        target: Option<PathBuf>,
        /// Say what would be done; change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Remove the network.d hook entry, if net-hook created it.
    Uninstall {
        #[arg(long, value_name = "DIR", default_value = install::DEFAULT_HOOKS_DIR)]
        hooks_dir: PathBuf,
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Validate the whole file and print what each network will get.
    /// Exit status: 0 valid, 1 invalid.
    Check,
}

pub fn main(args: Vec<OsString>) -> u8 {
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 2 } else { 0 };
        }
    };
    let paths = Paths {
        config: cli.config,
        run_dir: cli.run_dir,
    };
    match cli.command {
        Command::Hook { dry_run, args } => {
            let mode = if dry_run {
                Mode::DryRun
            } else {
                Mode::Explicit
            };
            hook::run(&args, &paths, mode, &mut std::io::stdin().lock())
        }
        Command::Config {
            command: ConfigCommand::Check,
        } => config_check(&paths),
        Command::Install {
            hooks_dir,
            target,
            dry_run,
        } => {
            let target = match target
                .map(Ok)
                .unwrap_or_else(|| std::env::current_exe().and_then(|p| p.canonicalize()))
            {
                Ok(t) => t,
                Err(e) => {
                    eprintln!(
                        "net-hook: cannot tell where this binary is ({e}); pass --target /usr/bin/net-hook"
                    );
                    return 2;
                }
            };
            report(install::install(&install::Opts {
                hooks_dir,
                target,
                dry_run,
            }))
        }
        Command::Uninstall { hooks_dir, dry_run } => {
            report(install::uninstall(&hooks_dir, dry_run))
        }
    }
}

fn report(res: crate::error::Result<Vec<String>>) -> u8 {
    match res {
        Ok(lines) => {
            for l in lines {
                println!("{l}");
            }
            0
        }
        Err(e) => {
            eprintln!("net-hook: {e}");
            1
        }
    }
}

fn config_check(paths: &Paths) -> u8 {
    let file = paths.config.display().to_string();
    let text = match config::load(&paths.config) {
        Ok(config::Loaded::Text {
            text,
            insecure: None,
        }) => text,
        Ok(config::Loaded::Text {
            insecure: Some(e), ..
        }) => {
            eprintln!("net-hook: {e}");
            return 1;
        }
        Ok(config::Loaded::Missing) => {
            eprintln!("net-hook: {file} does not exist; the hook manages no network until it does");
            return 1;
        }
        Err(e) => {
            eprintln!("net-hook: {e}");
            return 1;
        }
    };
    if !nix::unistd::geteuid().is_root() {
        // The hook (root) checks ownership; we cannot vouch for it here.
        eprintln!("note: not running as root, so the owner/mode check the hook makes was skipped");
    }
    let cfg = match Config::parse(&text, &file) {
        Ok(c) => c,
        Err(crate::error::Error::Config(errors)) => {
            for e in &errors {
                eprintln!("{e}");
            }
            eprintln!("{file}: {} error(s)", errors.len());
            return 1;
        }
        Err(e) => {
            eprintln!("net-hook: {e}");
            return 1;
        }
    };
    println!("{file}: valid, {} network(s)", cfg.networks.len());
    for net in cfg.networks.values() {
        let mode = if net.strict {
            "strict: a failure fails the network start"
        } else {
            "fail-soft: failures are logged, the network stays up"
        };
        println!(
            "network {:?} ({mode}); on started, on its bridge <br>:",
            net.name
        );
        for v in &net.vlans {
            let name = v.name.clone().unwrap_or_else(|| format!("<br>.{}", v.id));
            let addrs: Vec<String> = v.addresses.iter().map(ToString::to_string).collect();
            let mtu = v
                .mtu
                .map(|m| m.to_string())
                .unwrap_or_else(|| "the bridge's".into());
            println!(
                "  VLAN {:>4}  {name:<15}  addresses {}  mtu {mtu}",
                v.id,
                if addrs.is_empty() {
                    "none".to_string()
                } else {
                    addrs.join(", ")
                }
            );
        }
    }
    0
}
