//! The un-NAT exemption and firewalld zones: what the firewall looks like
//! (read once per run), which backend libvirt uses, and the drivers that
//! plan and carry out firewall steps.
//!
//! - iptables ([`iptables`]): a RETURN at the head of the built-in nat
//!   POSTROUTING chain, ahead of libvirt's jump to LIBVIRT_PRT, so libvirt's
//!   reloads (which re-fill its own chains) cannot displace it.
//! - nftables ([`nftables`]): an identity `snat ... prefix to ... saddr map
//!   { S : S }` in net-hook's own table at priority srcnat - 1. A plain
//!   `accept` would not do: the kernel runs every nat chain until one binds a
//!   NAT mapping.
//! - firewalld ([`firewalld`]): the zone each VLAN is in.
//!
//! Rules are marked with the comment `net-hook:<network>` (iptables) or live
//! in a chain named for the network (nftables), so only owned rules are
//! touched. Commands run by absolute path with argv, never through a shell.

pub mod firewalld;
pub mod iptables;
pub mod nftables;
mod runner;
#[cfg(test)]
mod tests;

use std::fmt;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::config::{BackendChoice, Unnat};
use crate::hookdata::HookNetwork;
use crate::plan::Step;

pub use runner::{Runner, Sys};

pub const NFT_TABLE: &str = "net_hook";
pub const NETWORK_CONF: &str = "/etc/libvirt/network.conf";

/// A failed firewall command, or one that could not be run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{program} is not installed; install it, or remove `unnat` from this network's config")]
    Missing { program: String },
    #[error("{program}: {what}: {source}")]
    Spawn {
        program: String,
        what: String,
        source: std::io::Error,
    },
    #[error("{program}: {what}: {}", if .stderr.is_empty() { format!("exit status {}", .code) } else { .stderr.clone() })]
    Failed {
        program: String,
        what: String,
        code: i32,
        stderr: String,
    },
    #[error("{program}: {what}: cannot parse its output: {why}")]
    Output {
        program: String,
        what: String,
        why: String,
    },
}

/// An nftables family, and the iptables program of the same family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    Ip,
    Ip6,
}

impl Family {
    pub const BOTH: [Family; 2] = [Family::Ip, Family::Ip6];

    pub fn of(net: &IpNet) -> Family {
        if net.addr().is_ipv4() {
            Family::Ip
        } else {
            Family::Ip6
        }
    }

    pub fn iptables(self) -> &'static str {
        match self {
            Family::Ip => "iptables",
            Family::Ip6 => "ip6tables",
        }
    }

    pub fn nft(self) -> &'static str {
        match self {
            Family::Ip => "ip",
            Family::Ip6 => "ip6",
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.nft())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    Iptables,
    Nftables,
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::Iptables => "iptables",
            Backend::Nftables => "nftables",
        })
    }
}

/// One exempted (source, destination) pair; both of one family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Exemption {
    pub src: IpNet,
    pub dst: IpNet,
}

impl Exemption {
    pub fn family(&self) -> Family {
        Family::of(&self.src)
    }
}

impl fmt::Display for Exemption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} -> {}", self.src, self.dst)
    }
}

/// The exemptions of one family.
pub fn of_family(exs: &[Exemption], fam: Family) -> Vec<Exemption> {
    exs.iter().filter(|e| e.family() == fam).copied().collect()
}

/// The pairs to exempt for a network, or why there are none.
pub fn exemptions(u: &Unnat, hn: &HookNetwork) -> std::result::Result<Vec<Exemption>, String> {
    if hn.forward_mode.as_deref() != Some("nat") {
        return Err(format!(
            "forward mode {}: libvirt masquerades nothing, so there is nothing to exempt",
            hn.forward_mode.as_deref().unwrap_or("none (isolated)")
        ));
    }
    let sources: Vec<IpNet> = match &u.sources {
        Some(s) => s.clone(),
        // libvirt masquerades IPv6 only with <nat ipv6='yes'>.
        None => hn
            .subnets
            .iter()
            .filter(|s| s.addr().is_ipv4() || hn.nat_ipv6)
            .copied()
            .collect(),
    };
    let mut out = Vec::new();
    for src in &sources {
        for dst in u
            .destinations
            .iter()
            .filter(|d| d.addr().is_ipv4() == src.addr().is_ipv4())
        {
            if crate::model::overlaps(src, dst) {
                return Err(format!(
                    "source {src} overlaps destination {dst}; fix `unnat` in the config"
                ));
            }
            out.push(Exemption {
                src: *src,
                dst: *dst,
            });
        }
    }
    if out.is_empty() {
        return Err(format!(
            "no source subnet of the destinations' family (network subnets: {}); set `unnat.sources`",
            if sources.is_empty() {
                "none".to_string()
            } else {
                sources
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        ));
    }
    Ok(out)
}

/// What decides the backend, as read from the host (or a test).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DetectInputs {
    /// The text of libvirt's network.conf, if there is one.
    pub network_conf: Option<String>,
    /// libvirt's jump to LIBVIRT_PRT is in iptables' nat POSTROUTING.
    pub libvirt_iptables: bool,
    /// libvirt's `table ip libvirt_network` is in nftables.
    pub libvirt_nftables: bool,
}

/// `firewall_backend = "..."` from libvirt's network.conf, if set.
pub fn conf_backend(text: &str) -> Option<Backend> {
    text.lines().find_map(|l| {
        let l = l.trim();
        let v = l
            .strip_prefix("firewall_backend")?
            .trim_start()
            .strip_prefix('=')?
            .trim()
            .trim_matches('"');
        match v {
            "iptables" => Some(Backend::Iptables),
            "nftables" => Some(Backend::Nftables),
            _ => None,
        }
    })
}

/// Picks the backend as libvirt does: its network.conf, else the rules it
/// actually installed, else net-hook's config (auto: iptables, libvirt 9.0's
/// only backend). Returns the choice and why.
pub fn detect(choice: BackendChoice, inputs: &DetectInputs) -> (Backend, String) {
    if let Some(b) = inputs.network_conf.as_deref().and_then(conf_backend) {
        return (b, format!("firewall_backend = \"{b}\" in {NETWORK_CONF}"));
    }
    match (inputs.libvirt_iptables, inputs.libvirt_nftables) {
        (true, false) => {
            return (
                Backend::Iptables,
                "libvirt's LIBVIRT_PRT chain is in iptables' nat table".into(),
            );
        }
        (false, true) => {
            return (
                Backend::Nftables,
                "libvirt's table ip libvirt_network is in nftables".into(),
            );
        }
        _ => {}
    }
    match choice {
        BackendChoice::Iptables => (Backend::Iptables, "backend = \"iptables\" in net-hook's config".into()),
        BackendChoice::Nftables => (Backend::Nftables, "backend = \"nftables\" in net-hook's config".into()),
        BackendChoice::Auto => (Backend::Iptables, "nothing to follow (no firewall_backend, no libvirt rules found): iptables, libvirt 9.0's backend".into()),
    }
}

/// What the firewall shows of net-hook, and of libvirt as far as the
/// backend choice needs it. `None` parts were not read (not needed) or
/// cannot be (the program is missing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirewallView {
    /// What the backend choice rests on; [`FirewallView::backend`] decides.
    pub inputs: DetectInputs,
    /// nat POSTROUTING of iptables and ip6tables, `-S` words after
    /// `-A POSTROUTING`, in order.
    pub iptables: Option<Vec<Vec<String>>>,
    pub ip6tables: Option<Vec<Vec<String>>>,
    pub nft: Option<nftables::Ruleset>,
}

impl FirewallView {
    /// The backend libvirt uses, given net-hook's `choice`, and why.
    pub fn backend(&self, choice: BackendChoice) -> (Backend, String) {
        detect(choice, &self.inputs)
    }

    pub fn iptables_of(&self, fam: Family) -> Option<&Vec<Vec<String>>> {
        match fam {
            Family::Ip => self.iptables.as_ref(),
            Family::Ip6 => self.ip6tables.as_ref(),
        }
    }
}

/// Which exemptions a plan is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner<'a> {
    Network(&'a str),
    /// Every network's (teardown --all, package removal).
    All,
}

/// An exemption backend: reads its state, plans, and runs its own steps.
pub trait Driver {
    /// The steps that make `network`'s exemptions exactly `want` here, or
    /// why they cannot be planned (pure).
    fn plan(
        &self,
        network: &str,
        want: &[Exemption],
        view: &FirewallView,
    ) -> std::result::Result<Vec<Step>, String>;
    /// The steps that remove everything `owner` has here (pure).
    fn plan_remove(&self, owner: Owner, view: &FirewallView) -> Vec<Step>;
    fn run(&self, step: &Step, r: &mut dyn Runner) -> Result<(), Error>;
}

pub fn driver(b: Backend) -> &'static dyn Driver {
    match b {
        Backend::Iptables => &iptables::Iptables,
        Backend::Nftables => &nftables::Nftables,
    }
}

/// How much of the firewall a run reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Read {
    /// The backend libvirt uses (both, when only they can tell which).
    Chosen(BackendChoice),
    /// Both backends, whatever libvirt uses (teardowns).
    Both,
}

/// Reads the firewall: network.conf through `conf`, the rest through `r`.
pub fn observe(
    read: Read,
    network_conf: Option<String>,
    r: &mut dyn Runner,
) -> Result<FirewallView, Error> {
    let decided = network_conf.as_deref().and_then(conf_backend);
    let want = |b: Backend| read == Read::Both || decided.is_none_or(|d| d == b);
    // Read only to find out which backend libvirt uses: one that cannot be
    // listed is not it (the plan says so if it is chosen all the same).
    // Teardowns (Read::Both) must see both, so there it is an error.
    let detecting = matches!(read, Read::Chosen(_)) && decided.is_none();
    let (iptables, ip6tables) = if want(Backend::Iptables) {
        (
            soft(detecting, iptables::observe(Family::Ip, r))?,
            soft(detecting, iptables::observe(Family::Ip6, r))?,
        )
    } else {
        (None, None)
    };
    let nft = if want(Backend::Nftables) {
        soft(detecting, nftables::observe(r))?
    } else {
        None
    };
    let inputs = DetectInputs {
        libvirt_iptables: iptables
            .as_ref()
            .is_some_and(|rules| rules.iter().any(|w| w == &["-j", "LIBVIRT_PRT"])),
        libvirt_nftables: nft
            .as_ref()
            .is_some_and(|n| n.has_table(Family::Ip, "libvirt_network")),
        network_conf,
    };
    Ok(FirewallView {
        inputs,
        iptables,
        ip6tables,
        nft,
    })
}

/// With `lenient`, a view that cannot be read is no view.
fn soft<T>(lenient: bool, res: Result<Option<T>, Error>) -> Result<Option<T>, Error> {
    if lenient { Ok(res.ok().flatten()) } else { res }
}

/// Runs one firewall step with the driver it belongs to.
pub fn run(step: &Step, r: &mut dyn Runner) -> Result<(), Error> {
    use crate::plan::Driver as D;
    match step.driver() {
        D::Iptables => iptables::Iptables.run(step, r),
        D::Nftables => nftables::Nftables.run(step, r),
        D::Firewalld => firewalld::run(step, r),
        D::Netlink | D::Sysctl => Err(Error::Output {
            program: "net-hook".into(),
            what: step.to_string(),
            why: "not a firewall step".into(),
        }),
    }
}

pub(crate) fn argv(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|s| s.to_string()).collect()
}

/// Runs `argv`; a non-zero exit is an [`Error::Failed`] saying `what`.
pub(crate) fn run_ok(
    r: &mut dyn Runner,
    argv: &[String],
    stdin: Option<&str>,
    what: impl Into<String>,
) -> Result<String, Error> {
    match r.run(argv, stdin)? {
        (0, out, _) => Ok(out),
        (code, _, stderr) => Err(Error::Failed {
            program: argv[0].clone(),
            what: what.into(),
            code,
            stderr: stderr.replace('\n', " "),
        }),
    }
}
