//! The companion commands: `check`, `status`, `apply`, `teardown`,
//! `reconcile`. They run outside the hook, so they may ask libvirt; they do
//! so through [`Libvirt`], implemented with the `virt` crate in the
//! `net-hook-virt` binary only, so the hook binary never loads libvirt.

pub mod check;
pub mod status;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::config::{self, Config, NetworkConfig};
use crate::error::{Error, Result};
use crate::firewall;
use crate::hookdata;
use crate::log::Log;
use crate::netlink::{Net, Rtnl};
use crate::ops;
use crate::plan;
use crate::state::RunDir;

/// What the companion commands need to know of a libvirt network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NetInfo {
    pub name: String,
    pub active: bool,
    pub persistent: bool,
    pub autostart: bool,
    pub bridge: Option<String>,
    /// `None` for an isolated network.
    pub forward_mode: Option<String>,
    /// The network's own subnets and `<nat ipv6>`, for the un-NAT exemption.
    #[serde(skip)]
    pub subnets: Vec<ipnet::IpNet>,
    #[serde(skip)]
    pub nat_ipv6: bool,
}

impl NetInfo {
    /// Builds the info from `virsh net-dumpxml`-style XML and the API's flags.
    pub fn from_xml(xml: &str, active: bool, persistent: bool, autostart: bool) -> Result<NetInfo> {
        let hn = hookdata::parse(xml)?;
        Ok(NetInfo {
            name: hn.name,
            active,
            persistent,
            autostart,
            bridge: hn.bridge,
            forward_mode: hn.forward_mode,
            subnets: hn.subnets,
            nat_ipv6: hn.nat_ipv6,
        })
    }

    /// What the hook would have been told about this network.
    pub fn hook_network(&self) -> crate::hookdata::HookNetwork {
        crate::hookdata::HookNetwork {
            name: self.name.clone(),
            bridge: self.bridge.clone(),
            forward_mode: self.forward_mode.clone(),
            subnets: self.subnets.clone(),
            nat_ipv6: self.nat_ipv6,
        }
    }
}

pub trait Libvirt {
    /// `Ok(None)` when no such network is defined.
    fn network(&self, name: &str) -> Result<Option<NetInfo>>;
    fn networks(&self) -> Result<Vec<NetInfo>>;
}

/// Everything a companion command is told on the command line.
pub struct Ctx<'a> {
    pub config: &'a Path,
    pub run_dir: &'a Path,
    pub hooks_dir: PathBuf,
    pub libvirt: &'a dyn Libvirt,
}

/// One configured VLAN as status and check G6 judge it: its interface name,
/// the link of that name, whether that link carries net-hook's mark, and the
/// plan that would bring just this VLAN up.
pub(crate) struct VlanView<'a> {
    pub vlan: &'a config::VlanConfig,
    pub name: String,
    pub link: Option<&'a crate::model::Link>,
    pub owned: bool,
    pub plan: std::result::Result<Vec<plan::Step>, Vec<plan::Problem>>,
}

pub(crate) fn vlan_views<'a>(
    net: &'a NetworkConfig,
    bridge: &str,
    obs: &'a crate::model::Observed,
) -> Vec<VlanView<'a>> {
    let mark = crate::model::owner_mark(&net.name);
    net.vlans
        .iter()
        .map(|vlan| {
            let name = vlan.ifname(bridge);
            let link = obs.link_by_name(&name);
            let one = NetworkConfig {
                vlans: vec![vlan.clone()],
                ..net.clone()
            };
            VlanView {
                vlan,
                owned: link.is_some_and(|l| l.alias.as_deref() == Some(mark.as_str())),
                link,
                name,
                plan: plan::plan_up(&one, bridge, obs),
            }
        })
        .collect()
}

/// Whether the running network's un-NAT exemption is in place: `None` when
/// the config asks for none, `Err` when it cannot apply to this network.
pub(crate) fn unnat_present(
    net: &NetworkConfig,
    info: &NetInfo,
) -> Option<std::result::Result<bool, String>> {
    let u = net.unnat.as_ref()?;
    Some(
        firewall::exemptions(u, &info.hook_network())
            .map(|exs| firewall::present(&net.name, &exs, &mut firewall::Sys)),
    )
}

/// Colours only on a terminal, and never with `NO_COLOR` set.
pub fn use_color() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// `text` in the ANSI colour `code` ("31" red, "32" green, "33" yellow)
/// when `color` is set (see [`use_color`]), else as it is.
pub(crate) fn paint(text: &str, code: &str, color: bool) -> String {
    if color {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_string()
    }
}

pub fn load_config(path: &Path) -> Result<Config> {
    Ok(Config::parse(
        &config::read_file(path)?,
        &path.display().to_string(),
    )?)
}

fn network_config<'c>(cfg: &'c Config, network: &str, path: &Path) -> Result<&'c NetworkConfig> {
    cfg.networks.get(network).ok_or_else(|| {
        Error::Usage(format!(
            "network {network:?} is not in {}; add a [networks.{}] table",
            path.display(),
            config::key_repr(network)
        ))
    })
}

/// libvirt's view of `network`; a usage error when libvirt has none.
fn lookup_network(cx: &Ctx, network: &str) -> Result<NetInfo> {
    cx.libvirt.network(network)?.ok_or_else(|| {
        Error::Usage(format!(
            "libvirt has no network {network:?} (see `virsh net-list --all`)"
        ))
    })
}

/// libvirt's view of `network`, which must be running.
fn running_info(cx: &Ctx, network: &str) -> Result<NetInfo> {
    let info = lookup_network(cx, network)?;
    if !info.active {
        return Err(Error::Usage(format!(
            "network {network:?} is not active; start it (`virsh net-start {network}`): the hook then does the rest"
        )));
    }
    Ok(info)
}

/// `apply NETWORK`: what `started` does, for a network already running.
pub fn apply(cx: &Ctx, network: &str, dry_run: bool) -> Result<Vec<String>> {
    let cfg = load_config(cx.config)?;
    let net = network_config(&cfg, network, cx.config)?;
    let info = running_info(cx, network)?;
    apply_net(cx, net, &info, dry_run)
}

/// [`apply`] once the network's config and libvirt's view of it (active)
/// are in hand: [`reconcile`] has them for every network already.
fn apply_net(cx: &Ctx, net: &NetworkConfig, info: &NetInfo, dry_run: bool) -> Result<Vec<String>> {
    let network = net.name.as_str();
    let bridge = info.bridge.as_deref().ok_or_else(|| {
        Error::Refused(vec![plan::Problem::NoBridge {
            forward_mode: info.forward_mode.clone(),
        }])
    })?;
    let mut rt = Rtnl::open()?;
    if dry_run {
        let obs = rt.observe()?;
        let planned = plan::plan_up(net, bridge, &obs);
        ops::print_plan(net, "apply", bridge, None, &planned);
        ops::print_unnat(net, &info.hook_network(), &mut firewall::Sys);
        return planned.map(|_| vec![]).map_err(Error::Refused);
    }
    let rundir = RunDir::new(cx.run_dir);
    let _lock = rundir.lock()?;
    let mut log = Log::system_only(network, "apply");
    let res = ops::up(
        net,
        bridge,
        &info.hook_network(),
        &mut rt,
        &mut firewall::Sys,
        &rundir,
        &mut log,
    );
    rundir.record(&ops::outcome(network, "apply", &res));
    res.map(|d| d.actions)
}

/// `teardown NETWORK`: what `stopped` does; removes only what is marked.
/// Needs no libvirt: it works from the ownership marks and the run dir.
pub fn teardown(
    config: &Path,
    run_dir: &Path,
    network: &str,
    dry_run: bool,
) -> Result<Vec<String>> {
    // The config may be gone (package removal): the run dir still knows.
    let cfg = if dry_run {
        None
    } else {
        load_config(config).ok()
    };
    teardown_one(run_dir, cfg.as_ref(), network, dry_run, false)
}

/// `teardown --all`: every network that has marked links or an outcome
/// record, with its firewall exemptions, then whatever net-hook rules and
/// tables are left. Runs everything; reports the first failure.
pub fn teardown_all(run_dir: &Path, dry_run: bool) -> Result<Vec<String>> {
    let obs = Rtnl::open()?.observe()?;
    let mut names: Vec<String> = obs
        .owners()
        .into_iter()
        .chain(RunDir::new(run_dir).list().into_iter().map(|o| o.network))
        .collect();
    names.sort();
    names.dedup();
    let mut actions = Vec::new();
    let mut first_err = None;
    for n in &names {
        match teardown_one(run_dir, None, n, dry_run, true) {
            Ok(a) => actions.extend(a.into_iter().map(|a| format!("{n}: {a}"))),
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    if !dry_run {
        let (done, errs) = firewall::remove_all(&mut firewall::Sys);
        actions.extend(done);
        if let Some(e) = errs.into_iter().next() {
            first_err.get_or_insert(e);
        }
    }
    match first_err {
        None => Ok(actions),
        Some(e) => Err(e),
    }
}

/// Tears `network` down; `cfg` (the config, if it could be read) tells
/// whether to look at the firewall, unless `force_firewall` already says so.
fn teardown_one(
    run_dir: &Path,
    cfg: Option<&Config>,
    network: &str,
    dry_run: bool,
    force_firewall: bool,
) -> Result<Vec<String>> {
    let mut rt = Rtnl::open()?;
    let rundir = RunDir::new(run_dir);
    if dry_run {
        let steps = plan::plan_down(network, &rt.observe()?, &ops::added_vids(&rundir, network));
        print_steps(network, "teardown", &steps);
        return Ok(vec![]);
    }
    let _lock = rundir.lock()?;
    let mut log = Log::system_only(network, "teardown");
    let fw = force_firewall
        || cfg
            .and_then(|c| c.networks.get(network))
            .is_some_and(|n| n.unnat.is_some());
    let res = ops::down(network, &mut rt, &mut firewall::Sys, fw, &rundir, &mut log);
    rundir.record(&ops::outcome(network, "teardown", &res));
    res.map(|d| d.actions)
}

fn print_steps(network: &str, what: &str, steps: &[plan::Step]) {
    println!("network {network:?}, {what}: dry run, nothing changed");
    if steps.is_empty() {
        println!("  nothing to do");
    }
    for (i, s) in steps.iter().enumerate() {
        println!("  {:>2}. {s}", i + 1);
    }
}

/// `reconcile`: apply every active configured network; tear down what is
/// marked for networks that are not active or no longer configured. Runs
/// everything and returns one line per network, errors included.
pub fn reconcile(cx: &Ctx, dry_run: bool) -> Result<(Vec<String>, usize)> {
    let cfg = load_config(cx.config)?;
    let nets = cx.libvirt.networks()?;
    let mut lines = Vec::new();
    let mut failures = 0;
    let mut keep = Vec::new();
    for net in cfg.networks.values() {
        let Some(info) = nets.iter().find(|i| i.name == net.name) else {
            lines.push(format!("{}: not defined in libvirt; skipped", net.name));
            continue;
        };
        if !info.active {
            continue;
        }
        keep.push(net.name.clone());
        match apply_net(cx, net, info, dry_run) {
            Ok(_) if dry_run => lines.push(format!("{}: planned above (dry run)", net.name)),
            Ok(a) if a.is_empty() => lines.push(format!("{}: as configured", net.name)),
            Ok(a) => lines.push(format!("{}: {}", net.name, a.join("; "))),
            Err(e) => {
                failures += 1;
                lines.push(format!("{}: {e}", net.name));
            }
        }
    }
    // Leftovers: marked links whose network is not active and configured.
    let obs = Rtnl::open()?.observe()?;
    let orphans: Vec<String> = obs
        .owners()
        .into_iter()
        .filter(|n| !keep.contains(n))
        .collect();
    for n in orphans {
        match teardown_one(cx.run_dir, Some(&cfg), &n, dry_run, false) {
            Ok(_) if dry_run => lines.push(format!(
                "{n}: not active; leftovers planned above (dry run)"
            )),
            Ok(a) => lines.push(format!("{n}: not active; {}", a.join("; "))),
            Err(e) => {
                failures += 1;
                lines.push(format!("{n}: {e}"));
            }
        }
    }
    Ok((lines, failures))
}
