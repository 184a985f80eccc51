//! The subcommands, one file each. `hook` is libvirt's protocol run by
//! hand; `check`, `status`, `apply` and `reconcile` ask libvirt, through
//! [`Libvirt`], implemented with the `virt` crate in the `net-hook-virt`
//! binary only, so the hook binary never loads libvirt.

pub mod apply;
pub mod check;
pub mod config;
pub mod firewalld_reload;
pub mod hook;
pub mod install;
pub mod reconcile;
pub mod routed;
pub mod status;
pub mod teardown;
pub mod uninstall;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use crate::config::{self as cfg, Config, NetworkConfig, metadata};
use crate::error::Result;
use crate::hookdata::{self, HookNetwork};
use crate::model::Observed;
use crate::plan::{self, Step};

/// Why a command could not run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "cannot connect to {uri}: {msg}; is libvirtd (or virtnetworkd) running, and are you root?"
    )]
    Connect { uri: String, msg: String },
    #[error("libvirt ({uri}): {what}: {msg}")]
    Libvirt {
        uri: String,
        what: String,
        msg: String,
    },
    #[error(
        "network {network:?} is not in {path} nor in its libvirt <metadata>; add a [networks.{key}] table (or see `net-hook config export`)"
    )]
    NotConfigured {
        network: String,
        path: String,
        key: String,
    },
    #[error("libvirt has no network {0:?} (see `virsh net-list --all`)")]
    NotDefined(String),
    #[error(
        "network {0:?} is not active; start it (`virsh net-start {0}`): the hook then does the rest"
    )]
    NotActive(String),
}

/// What the commands need to know of a libvirt network: what the hook
/// would be told, libvirt's flags, and the config in its `<metadata>`.
#[derive(Debug, Clone, PartialEq)]
pub struct NetInfo {
    pub net: HookNetwork,
    pub active: bool,
    pub persistent: bool,
    pub autostart: bool,
    /// net-hook's element in the network's `<metadata>`, if it has one.
    pub metadata: Option<std::result::Result<NetworkConfig, Vec<metadata::MetaError>>>,
}

impl NetInfo {
    /// Builds the info from `virsh net-dumpxml`-style XML and the API's flags.
    pub fn from_xml(xml: &str, active: bool, persistent: bool, autostart: bool) -> Result<NetInfo> {
        let net = hookdata::parse(xml)?;
        let metadata = if metadata::may_carry(xml.as_bytes()) {
            metadata::parse(xml, &net.name).transpose()
        } else {
            None
        };
        Ok(NetInfo {
            net,
            active,
            persistent,
            autostart,
            metadata,
        })
    }

    pub fn name(&self) -> &str {
        &self.net.name
    }
}

pub trait Libvirt {
    /// `Ok(None)` when no such network is defined.
    fn network(&self, name: &str) -> Result<Option<NetInfo>>;
    fn networks(&self) -> Result<Vec<NetInfo>>;
    /// `Ok(None)` when no such domain is defined. (Test doubles that know
    /// no domains need not say so.)
    fn domain(&self, _name: &str) -> Result<Option<routed::DomInfo>> {
        Ok(None)
    }
    fn domains(&self) -> Result<Vec<routed::DomInfo>> {
        Ok(vec![])
    }
}

/// Everything a libvirt command is told on the command line.
pub struct Ctx<'a> {
    pub config: &'a Path,
    pub run_dir: &'a Path,
    pub hooks_dir: PathBuf,
    pub libvirt: &'a dyn Libvirt,
}

/// One configured VLAN as status and check G6 judge it: its interface name,
/// the link of that name, whether that link carries net-hook's mark, and the
/// plan that would bring just this VLAN up (the planner's own steps).
pub(crate) struct VlanView<'a> {
    pub vlan: &'a cfg::VlanConfig,
    pub name: String,
    pub link: Option<&'a crate::model::Link>,
    pub owned: bool,
    pub plan: std::result::Result<Vec<Step>, Vec<plan::Problem>>,
}

pub(crate) fn vlan_views<'a>(
    net: &'a NetworkConfig,
    bridge: &str,
    obs: &'a Observed,
) -> Vec<VlanView<'a>> {
    let mark = crate::model::owner_mark(&net.name);
    net.vlans
        .iter()
        .map(|vlan| {
            let name = vlan.ifname(bridge);
            let link = obs.link_by_name(&name);
            let one = NetworkConfig {
                vlans: vec![vlan.clone()],
                unnat: None,
                ..net.clone()
            };
            VlanView {
                vlan,
                owned: link.is_some_and(|l| l.alias.as_deref() == Some(mark.as_str())),
                link,
                name,
                plan: plan::plan_up(&one, bridge, &HookNetwork::default(), obs).map(|p| p.steps),
            }
        })
        .collect()
}

/// The running network's un-NAT exemption as the planner judges it:
/// `None` when the config asks for none; `Err` when it cannot apply to this
/// network (the reason); else the steps that would put it in place (empty:
/// it is in place).
pub(crate) fn unnat_plan(
    net: &NetworkConfig,
    info: &NetInfo,
    obs: &Observed,
) -> Option<std::result::Result<Vec<Step>, String>> {
    net.unnat.as_ref()?;
    let only = NetworkConfig {
        vlans: vec![],
        ..net.clone()
    };
    let bridge = info.net.bridge.as_deref().unwrap_or_default();
    Some(match plan::plan_up(&only, bridge, &info.net, obs) {
        Ok(p) if p.backend.is_none() => Err(p.warnings.join("; ")),
        Ok(p) => Ok(p.steps),
        Err(problems) => Err(problems
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ")),
    })
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

/// The config file; a missing one configures nothing in the file (networks
/// may still carry their config in libvirt's `<metadata>`).
pub fn load_config(path: &Path) -> Result<Config> {
    match cfg::load(path)? {
        cfg::Loaded::Missing | cfg::Loaded::NotMentioned => Ok(Config::default()),
        cfg::Loaded::Text {
            insecure: Some(e), ..
        } => Err(e.into()),
        cfg::Loaded::Text { text, .. } => Ok(Config::parse(&text, &path.display().to_string())?),
    }
}

/// Where a network's config comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// The config file.
    File,
    /// net-hook's element in the network's libvirt `<metadata>`.
    Metadata,
}

impl Source {
    pub fn describe(self, path: &Path) -> String {
        match self {
            Source::File => format!("from {}", path.display()),
            Source::Metadata => format!("from its libvirt <metadata> ({})", metadata::NAMESPACE),
        }
    }
}

/// `network`'s config, from the file or from its `<metadata>` (as libvirt
/// has it in `info`), never both; `Ok(None)` when neither configures it.
pub(crate) fn resolve(
    cfg: &Config,
    path: &Path,
    network: &str,
    info: Option<&NetInfo>,
) -> Result<Option<(NetworkConfig, Source)>> {
    let file = cfg.networks.get(network);
    let meta = info
        .filter(|_| cfg.metadata)
        .and_then(|i| i.metadata.clone());
    match (file, meta) {
        (Some(_), Some(_)) => Err(cfg::Error::Both {
            network: network.into(),
            file: path.to_path_buf(),
        }
        .into()),
        (Some(f), None) => Ok(Some((f.clone(), Source::File))),
        (None, Some(Ok(m))) => Ok(Some((m, Source::Metadata))),
        (None, Some(Err(errs))) => Err(cfg::Error::Metadata(errs).into()),
        (None, None) => Ok(None),
    }
}

/// Every network the file or libvirt's `<metadata>` configures, sorted,
/// once each.
pub(crate) fn configured_names(cfg: &Config, infos: &[NetInfo]) -> Vec<String> {
    let mut names: Vec<String> = cfg.networks.keys().cloned().collect();
    if cfg.metadata {
        names.extend(
            infos
                .iter()
                .filter(|i| i.metadata.is_some())
                .map(|i| i.name().to_string()),
        );
    }
    names.sort();
    names.dedup();
    names
}

/// [`resolve`], where no config is an error that says how to add one.
fn network_config(
    cfg: &Config,
    path: &Path,
    network: &str,
    info: Option<&NetInfo>,
) -> Result<(NetworkConfig, Source)> {
    resolve(cfg, path, network, info)?.ok_or_else(|| {
        Error::NotConfigured {
            network: network.into(),
            path: path.display().to_string(),
            key: cfg::key_repr(network),
        }
        .into()
    })
}

/// libvirt's view of `network`; an error when libvirt has none.
fn lookup_network(cx: &Ctx, network: &str) -> Result<NetInfo> {
    cx.libvirt
        .network(network)?
        .ok_or_else(|| Error::NotDefined(network.into()).into())
}

/// libvirt's view of `network` (`info`), which must be defined and running.
fn running(info: Option<NetInfo>, network: &str) -> Result<NetInfo> {
    let info = info.ok_or_else(|| Error::NotDefined(network.into()))?;
    if !info.active {
        return Err(Error::NotActive(network.into()).into());
    }
    Ok(info)
}

pub(crate) fn print_json<T: serde::Serialize>(v: &T) {
    match serde_json::to_string_pretty(v) {
        Ok(s) => println!("{s}"),
        Err(e) => eprintln!("net-hook: encoding JSON: {e}"),
    }
}

pub(crate) fn print_steps(steps: &[Step]) {
    for s in steps {
        println!("{s}");
    }
}
