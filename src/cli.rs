//! The command line for people and scripts: the arguments, and which
//! command runs. libvirt's own calls bypass it (see main.rs).

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::commands::{self, Ctx, Libvirt};
use crate::config;
use crate::error::{Error, Result};
use crate::hook::Paths;
use crate::install;

/// How the libvirt-linked binary connects; `None` in `net-hook` itself, which
/// then execs `net-hook-virt` for the commands that need libvirt.
pub type Connector<'a> = &'a dyn Fn(&str) -> Result<Box<dyn Libvirt>>;

/// What only `net-hook-virt` has: libvirt, and the system bus.
pub struct Companion<'a> {
    pub connect: Connector<'a>,
    /// Subscribes to firewalld's reload and restart signals.
    pub firewalld_events: &'a dyn Fn() -> std::result::Result<
        Box<dyn commands::firewalld_reload::Events>,
        commands::firewalld_reload::Error,
    >,
}

const COMPANION: &str = "net-hook-virt";
const COMPANION_LIBEXEC: &str = "/usr/libexec/net-hook/net-hook-virt";

#[derive(Parser)]
#[command(
    name = "net-hook",
    version,
    about = "libvirt network hook that creates VLAN sub-interfaces on libvirt bridges",
    long_about = "libvirt network hook that creates VLAN sub-interfaces (e.g. virbr1.104 = 10.12.8.1/22) \
on a libvirt network's bridge when libvirt reports the network started, and deletes them when it stops.\n\n\
Installed as /etc/libvirt/hooks/network.d/50-net-hook (a link to this binary), it is run by libvirt \
as `50-net-hook NETWORK OP SUBOP -` with the network XML on stdin. A network is configured in the \
config file or in its own libvirt <metadata> (namespace urn:net-hook:network:1); networks configured \
in neither are ignored at the cost of a process start."
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
    /// Example: `virsh net-dumpxml 1_provider | net-hook hook 1_provider started begin -`;
    /// for a domain's routed interfaces: `virsh dumpxml routed-demo | net-hook hook --qemu
    /// routed-demo started begin -`. Exit status: 0, or 1 when a strict network (or a
    /// strict domain's prepare or started) failed, 2 on a usage error.
    Hook {
        /// Read the host and print the plan; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// The qemu hook (DOMAIN OP SUBOP EXTRA, domain XML on stdin) instead of the network hook.
        #[arg(long)]
        qemu: bool,
        /// NETWORK OP SUBOP [-] (or DOMAIN OP SUBOP EXTRA), as libvirt passes them.
        #[arg(value_name = "ARGS", num_args = 3..=4, allow_hyphen_values = true, required = true)]
        args: Vec<OsString>,
    },
    /// Validate the config file, or export a network's config as <metadata>.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Routed VM interfaces: print the <interface> element for a configured one.
    Routed {
        #[command(subcommand)]
        command: RoutedCommand,
    },
    /// Install the hook entries network.d/50-net-hook and qemu.d/50-net-hook (symlinks to this binary).
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
    /// Remove the network.d and qemu.d hook entries, if net-hook created them.
    Uninstall {
        #[arg(long, value_name = "DIR", default_value = install::DEFAULT_HOOKS_DIR)]
        hooks_dir: PathBuf,
        #[arg(long)]
        dry_run: bool,
    },
    /// Audit a network: the runbook's G1-G6 and the hook's own preconditions;
    /// or a domain's routed interfaces (gateway, taps, effective sysctls,
    /// routes, neighbour entries, what BIRD learned).
    ///
    /// One PASS / WARN / FAIL line per check. Exit status: 0 no FAIL, 1 any
    /// FAIL, 2 could not run (no libvirt, unknown network).
    Check {
        /// A network, or a domain of the config's [domains].
        network: String,
        /// Machine-readable output (see README, "JSON output").
        #[arg(long)]
        json: bool,
        /// libvirt's hooks directory.
        #[arg(long, value_name = "DIR", default_value = install::DEFAULT_HOOKS_DIR)]
        hooks_dir: PathBuf,
        #[command(flatten)]
        libvirt: LibvirtArgs,
    },
    /// Desired versus actual for each configured network (or one).
    ///
    /// Exit status: 0 when every active network is as configured, 1 on
    /// drift, 2 could not run.
    Status {
        /// A network (or, with --domains, a domain).
        network: Option<String>,
        #[arg(long)]
        json: bool,
        /// Only the domains with routed interfaces (text shows both by default;
        /// --json shows networks, or with this flag domains).
        #[arg(long)]
        domains: bool,
        #[command(flatten)]
        libvirt: LibvirtArgs,
    },
    /// Do what the hook does on `started`, for a running network (or what
    /// the qemu hook does on `prepare` and `started`, for a running domain).
    ///
    /// The bridge name (the domain XML) comes from libvirt. Exit status: 0 done (or nothing to
    /// do), 1 failed (rolled back), 2 could not run.
    Apply {
        network: String,
        /// Print the plan; change nothing.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        libvirt: LibvirtArgs,
    },
    /// Do what the hook does on `stopped`: delete the network's marked VLANs and
    /// exemptions; for a domain, its routes, neighbour entries and pre-created taps.
    ///
    /// Needs no libvirt. Exit status: 0 done, 1 something could not be removed.
    Teardown {
        /// The network; or --all.
        #[arg(required_unless_present = "all")]
        network: Option<String>,
        /// Everything net-hook owns: every marked VLAN, every exemption rule
        /// and table, on both firewall backends, every gateway device and
        /// pre-created tap with the routes it recorded (for package removal).
        #[arg(long, conflicts_with = "network")]
        all: bool,
        #[arg(long)]
        dry_run: bool,
    },
    /// Apply every active configured network and running configured domain;
    /// tear down what is marked for networks (domains) that are not active
    /// or no longer configured.
    ///
    /// For after a daemon restart (hooks do not re-run) or a VLAN deleted by
    /// hand. Exit status: 0 all done, 1 any network failed, 2 could not run.
    Reconcile {
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        libvirt: LibvirtArgs,
    },
    /// Reconcile now and again after every firewalld reload or restart;
    /// runs until stopped.
    ///
    /// What net-hook-firewalld-reload.service runs: `firewall-cmd --reload`
    /// and a firewalld restart drop the VLANs' runtime zones (and, with some
    /// backends, the exemption) without running any hook. It listens on the
    /// system bus for firewalld's `Reloaded` signal and its name changing
    /// owner, waits until they have been quiet for 2 s (libvirt rebuilds its
    /// own rules meanwhile), then reconciles. Exit status: 1 when the bus is
    /// lost (the service restarts it), 2 could not run.
    FirewalldReload {
        #[command(flatten)]
        libvirt: LibvirtArgs,
    },
}

#[derive(clap::Args)]
struct LibvirtArgs {
    /// libvirt connection URI (modular daemons answer on the same URI).
    #[arg(long, value_name = "URI", default_value = "qemu:///system")]
    connect: String,
}

#[derive(Subcommand)]
enum RoutedCommand {
    /// Print the <interface type='ethernet'> element of DOMAIN's interface
    /// TAP, to paste with `virsh edit DOMAIN` (or `virt-xml DOMAIN
    /// --add-device --network ...`). Exit status: 0, 1 when not configured.
    Xml {
        domain: String,
        tap: String,
        /// The guest's MAC (default: libvirt picks one).
        #[arg(long, value_name = "MAC")]
        mac: Option<String>,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Validate the whole file and print what each network will get.
    /// Exit status: 0 valid, 1 invalid.
    Check,
    /// Print a file-configured network's config as the element to put in
    /// its libvirt <metadata> (virsh net-edit, or virsh net-metadata).
    ///
    /// Example: `virsh net-metadata 1_provider urn:net-hook:network:1 --key nh
    /// --set "$(net-hook config export 1_provider)" --config`. Exit status: 0,
    /// 1 when the file does not configure NETWORK or is invalid.
    Export {
        /// A network the config file configures.
        network: String,
    },
}

pub fn main(args: Vec<OsString>, companion: Option<&Companion>) -> u8 {
    let cli = match Cli::try_parse_from(args.iter()) {
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
        Command::Hook {
            dry_run,
            qemu,
            args,
        } => commands::hook::run(&args, &paths, dry_run, qemu),
        Command::Config {
            command: ConfigCommand::Check,
        } => commands::config::check(&paths.config),
        Command::Config {
            command: ConfigCommand::Export { network },
        } => match commands::config::export(&paths.config, &network) {
            Ok(xml) => {
                print!("{xml}");
                0
            }
            Err(e) => {
                eprintln!("net-hook: {e}");
                1
            }
        },
        Command::Routed {
            command: RoutedCommand::Xml { domain, tap, mac },
        } => match commands::routed::interface_xml(&paths.config, &domain, &tap, mac.as_deref()) {
            Ok(xml) => {
                print!("{xml}");
                0
            }
            Err(e) => {
                eprintln!("net-hook: {e}");
                1
            }
        },
        Command::Install {
            hooks_dir,
            target,
            dry_run,
        } => lines(commands::install::run(hooks_dir, target, dry_run)),
        Command::Uninstall { hooks_dir, dry_run } => {
            lines(commands::uninstall::run(&hooks_dir, dry_run))
        }
        Command::Teardown {
            network,
            all,
            dry_run,
        } => lines(match (all, network) {
            (true, _) => commands::teardown::run_all(&paths.run_dir, dry_run),
            (false, Some(n)) if is_domain(&paths.config, &n) => {
                commands::routed::teardown(&paths.config, &paths.run_dir, &n, dry_run)
                    .map(|s| s.iter().map(ToString::to_string).collect())
            }
            (false, Some(n)) => commands::teardown::run(&paths.config, &paths.run_dir, &n, dry_run),
            (false, None) => Err(Error::Usage("name a network, or pass --all".into())),
        }),
        cmd => {
            let Some(companion) = companion else {
                return exec_companion(&args);
            };
            if let Command::FirewalldReload { libvirt } = &cmd {
                return firewalld_reload(&paths, companion, &libvirt.connect);
            }
            let connector = companion.connect;
            let (uri, hooks_dir) = match &cmd {
                Command::Check {
                    libvirt, hooks_dir, ..
                } => (&libvirt.connect, hooks_dir.clone()),
                Command::Status { libvirt, .. }
                | Command::Apply { libvirt, .. }
                | Command::Reconcile { libvirt, .. } => {
                    (&libvirt.connect, PathBuf::from(install::DEFAULT_HOOKS_DIR))
                }
                _ => return fail(&Error::Usage("not a libvirt command".into())),
            };
            let lv = match connector(uri) {
                Ok(l) => l,
                Err(e) => return fail(&e),
            };
            let cx = Ctx {
                config: &paths.config,
                run_dir: &paths.run_dir,
                hooks_dir,
                libvirt: lv.as_ref(),
            };
            libvirt_command(&cx, cmd)
        }
    }
}

/// A report as JSON or as text (`print`), its exit status from `code`;
/// or the error.
fn report<T: serde::Serialize>(
    res: Result<T>,
    json: bool,
    print: impl Fn(&T, bool),
    code: impl Fn(&T) -> u8,
) -> u8 {
    match res {
        Ok(r) => {
            if json {
                commands::print_json(&r);
            } else {
                print(&r, commands::use_color());
            }
            code(&r)
        }
        Err(e) => fail(&e),
    }
}

/// Whether the config names `name` as a domain (routed interfaces) and not
/// as a network: the commands that take either then act on the domain.
fn is_domain(config: &std::path::Path, name: &str) -> bool {
    commands::load_config(config).is_ok_and(|c| commands::routed::is_domain(&c, name))
}

fn libvirt_command(cx: &Ctx, cmd: Command) -> u8 {
    match cmd {
        Command::Check { network, json, .. } if is_domain(cx.config, &network) => report(
            commands::routed::check(cx, &network),
            json,
            commands::routed::print,
            |r| u8::from(r.result == commands::check::Status::Fail),
        ),
        Command::Check { network, json, .. } => report(
            commands::check::run(cx, &network),
            json,
            commands::check::print,
            |r| u8::from(r.result == commands::check::Status::Fail),
        ),
        Command::Status {
            network,
            json,
            domains,
            ..
        } if domains || network.as_deref().is_some_and(|n| is_domain(cx.config, n)) => report(
            commands::routed::status(cx, network.as_deref()),
            json,
            |l, color| commands::routed::print_status(l, color),
            |l| u8::from(l.iter().any(|d| !d.drift.is_empty())),
        ),
        Command::Status { network, json, .. } => {
            match commands::status::run(cx, network.as_deref()) {
                Ok(list) => {
                    let mut drift = list.iter().any(|n| n.drifted());
                    if json {
                        commands::print_json(&list);
                    } else {
                        commands::status::print(&list, commands::use_color());
                        // Then the domains, when the config has any.
                        if network.is_none() {
                            match commands::routed::status(cx, None) {
                                Ok(d) => {
                                    commands::routed::print_status(&d, commands::use_color());
                                    drift |= d.iter().any(|d| !d.drift.is_empty());
                                }
                                Err(e) => return fail(&e),
                            }
                        }
                    }
                    u8::from(drift)
                }
                Err(e) => fail(&e),
            }
        }
        Command::Apply {
            network, dry_run, ..
        } if is_domain(cx.config, &network) => {
            match commands::routed::apply(cx, &network, dry_run) {
                Ok(steps) => {
                    if steps.is_empty() && !dry_run {
                        println!(
                            "domain {network}: nothing to do, every routed interface is as configured"
                        );
                    }
                    commands::print_steps(&steps);
                    0
                }
                Err(e) => fail(&e),
            }
        }
        Command::Apply {
            network, dry_run, ..
        } => match commands::apply::run(cx, &network, dry_run) {
            Ok(steps) => {
                if steps.is_empty() && !dry_run {
                    println!("{network}: nothing to do, every VLAN is as configured");
                }
                commands::print_steps(&steps);
                0
            }
            Err(e) => fail(&e),
        },
        Command::Reconcile { dry_run, .. } => {
            let nets = commands::reconcile::run(cx, dry_run);
            let doms = commands::routed::reconcile(cx, dry_run);
            let mut rc = 0;
            for res in [nets, doms] {
                match res {
                    Ok((lines, failures)) => {
                        for l in lines {
                            println!("{l}");
                        }
                        if failures > 0 {
                            rc = rc.max(1);
                        }
                    }
                    Err(e) => rc = rc.max(fail(&e)),
                }
            }
            rc
        }
        _ => fail(&Error::Usage("not a libvirt command".into())),
    }
}

fn firewalld_reload(paths: &Paths, companion: &Companion, uri: &str) -> u8 {
    use commands::firewalld_reload as fr;
    let mut events = match (companion.firewalld_events)() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("net-hook: {e}");
            return 2;
        }
    };
    println!("net-hook: listening for firewalld's reloads and restarts on the system bus");
    let mut reconcile = |why: &str| {
        let lv = match (companion.connect)(uri) {
            Ok(l) => l,
            Err(e) => {
                println!("net-hook: reconcile after {why}: {e}");
                return;
            }
        };
        let cx = Ctx {
            config: &paths.config,
            run_dir: &paths.run_dir,
            hooks_dir: PathBuf::from(install::DEFAULT_HOOKS_DIR),
            libvirt: lv.as_ref(),
        };
        match commands::reconcile::run(&cx, false) {
            Ok((lines, failures)) => {
                let n = lines.len();
                for l in lines {
                    println!("net-hook: reconcile after {why}: {l}");
                }
                if n == 0 {
                    println!("net-hook: reconcile after {why}: no configured network is active");
                }
                if failures > 0 {
                    println!(
                        "net-hook: reconcile after {why}: {failures} network(s) failed (see above)"
                    );
                }
            }
            Err(e) => println!("net-hook: reconcile after {why}: {e}"),
        }
    };
    let res = fr::run(events.as_mut(), fr::SETTLE, &mut reconcile, &mut |l| {
        println!("net-hook: {l}")
    });
    match res {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("net-hook: {e}");
            1
        }
    }
}

/// Prints what a command did, one line each; or its error.
fn lines(res: Result<Vec<String>>) -> u8 {
    match res {
        Ok(lines) => {
            for l in lines {
                println!("{l}");
            }
            0
        }
        Err(e) => fail(&e),
    }
}

/// Reports `e` on stderr; its exit status.
fn fail(e: &Error) -> u8 {
    eprintln!("net-hook: {e}");
    crate::error::exit_code(e)
}

/// Hands a libvirt command to `net-hook-virt`, next to this binary or in
/// /usr/libexec/net-hook.
fn exec_companion(args: &[OsString]) -> u8 {
    use std::os::unix::process::CommandExt;
    let sibling = std::env::current_exe()
        .ok()
        .and_then(|p| p.canonicalize().ok())
        .and_then(|p| p.parent().map(|d| d.join(COMPANION)));
    let candidates: Vec<PathBuf> = sibling
        .into_iter()
        .chain([PathBuf::from(COMPANION_LIBEXEC)])
        .collect();
    let Some(bin) = candidates.iter().find(|p| p.is_file()) else {
        eprintln!(
            "net-hook: this command needs {COMPANION} (the part that links libvirt); found neither {}",
            candidates
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(" nor ")
        );
        return 2;
    };
    let err = std::process::Command::new(bin)
        .arg0("net-hook")
        .args(args.iter().skip(1))
        .exec();
    eprintln!("net-hook: cannot run {}: {err}", bin.display());
    2
}
