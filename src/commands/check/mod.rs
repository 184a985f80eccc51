//! `net-hook check NETWORK`: the runbook's audit (G1-G6) plus the hook's own
//! preconditions, as PASS / WARN / FAIL lines. Each check is a pure function
//! of what was read, so the decisions are unit-tested on recorded inputs.

use std::fs;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{Ctx, NetInfo};
use crate::config::NetworkConfig;
use crate::error::Result;
use crate::exec::{Host, System};
use crate::install::{self, ENTRY_NAME};
use crate::model::{LinkKind, Observed};
use crate::ops;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Warn,
    Fail,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// G1-G6 from the runbook, or HOOK / CONFIG.
    pub id: &'static str,
    pub status: Status,
    pub reason: String,
}

pub(crate) fn c(id: &'static str, status: Status, reason: impl Into<String>) -> Check {
    Check {
        id,
        status,
        reason: reason.into(),
    }
}

#[derive(Serialize)]
pub struct Report {
    pub network: String,
    /// The worst status of all checks.
    pub result: Status,
    pub checks: Vec<Check>,
}

/// G1: tagged frames reach a VLAN device on the bridge.
pub fn g1(bridge: &str, vlan_filtering: Option<&str>) -> Check {
    match vlan_filtering.map(str::trim) {
        Some("0") => c(
            "G1",
            Status::Pass,
            format!("{bridge}: vlan_filtering=0, tagged frames reach the VLAN devices"),
        ),
        Some("1") => c(
            "G1",
            Status::Warn,
            format!(
                "{bridge}: vlan_filtering=1; net-hook adds each VID to the bridge's own VLAN list"
            ),
        ),
        Some(v) => c(
            "G1",
            Status::Fail,
            format!("{bridge}: unexpected vlan_filtering value {v:?}"),
        ),
        None => c(
            "G1",
            Status::Fail,
            format!(
                "{bridge} has no bridge/vlan_filtering in sysfs: not a Linux bridge (or not there)"
            ),
        ),
    }
}

/// G2: the host routes between the planes.
pub fn g2(ipv4: Option<&str>, ipv6: Option<&str>, need_v6: bool) -> Vec<Check> {
    let mut out = vec![match ipv4.map(str::trim) {
        Some("1") => c("G2", Status::Pass, "net.ipv4.ip_forward=1"),
        Some(v) => c(
            "G2",
            Status::Fail,
            format!(
                "net.ipv4.ip_forward={v}: the gateway will not route; libvirt sets it for nat/route networks, or `sysctl -w net.ipv4.ip_forward=1`"
            ),
        ),
        None => c(
            "G2",
            Status::Fail,
            "cannot read /proc/sys/net/ipv4/ip_forward",
        ),
    }];
    if need_v6 {
        out.push(match ipv6.map(str::trim) {
            Some("1") => c("G2", Status::Pass, "net.ipv6.conf.all.forwarding=1"),
            v => c("G2", Status::Warn, format!("net.ipv6.conf.all.forwarding={}: IPv6 addresses are configured but IPv6 is not routed", v.unwrap_or("?"))),
        });
    }
    out
}

/// G3: the bridge exists, is a bridge, is up, and who owns it.
pub fn g3(info: &NetInfo, obs: &Observed) -> Check {
    let Some(bridge) = info.net.bridge.as_deref() else {
        return c(
            "G3",
            Status::Fail,
            format!(
                "network {:?} has no bridge (forward mode {}); VLANs need one",
                info.net.name,
                info.net.forward_mode.as_deref().unwrap_or("none")
            ),
        );
    };
    let owner = if info.net.forward_mode.as_deref() == Some("bridge") {
        "a host bridge libvirt uses (forward mode bridge)"
    } else {
        "created by libvirt"
    };
    match obs.link_by_name(bridge) {
        None if info.active => c(
            "G3",
            Status::Fail,
            format!(
                "{bridge} does not exist although network {:?} is active",
                info.net.name
            ),
        ),
        None => c(
            "G3",
            Status::Warn,
            format!(
                "{bridge} does not exist yet (network {:?} is not active)",
                info.net.name
            ),
        ),
        Some(l) if l.kind != LinkKind::Bridge => c(
            "G3",
            Status::Fail,
            format!("{bridge} is {}, not a Linux bridge", l.describe()),
        ),
        Some(l) if !l.up => c("G3", Status::Fail, format!("{bridge} is a bridge but down")),
        Some(_) => c(
            "G3",
            Status::Pass,
            format!("{bridge} is a Linux bridge, up, {owner}"),
        ),
    }
}

/// G4: libvirt's view: active, persistent, autostart, forward mode.
pub fn g4(info: &NetInfo, has_unnat: bool) -> Vec<Check> {
    let n = &info.net.name;
    let mut out = vec![
        if info.active {
            c("G4", Status::Pass, format!("network {n:?} is active"))
        } else {
            c(
                "G4",
                Status::Warn,
                format!("network {n:?} is not active: `virsh net-start {n}`"),
            )
        },
        if info.persistent {
            c("G4", Status::Pass, "persistent (defined)")
        } else {
            c(
                "G4",
                Status::Fail,
                "transient: it vanishes when stopped; define it (`virsh net-define`) so it survives",
            )
        },
        if info.autostart {
            c("G4", Status::Pass, "autostart is on")
        } else {
            c(
                "G4",
                Status::Fail,
                format!(
                    "autostart is off: the bridge and the gateway are missing after a reboot; `virsh net-autostart {n}`"
                ),
            )
        },
    ];
    let mode = info.net.forward_mode.as_deref();
    out.push(match mode {
        Some("nat") if has_unnat => c("G4", Status::Pass, "forward mode nat, with net-hook's un-NAT exemption in place for the VLANs' subnets"),
        Some("nat") => c("G4", Status::Warn, "forward mode nat: traffic from the network to the VLANs' subnets is masqueraded to the gateway address (works statefully; the far side sees the gateway, not the client)"),
        Some(m) => c("G4", Status::Pass, format!("forward mode {m}")),
        None => c("G4", Status::Pass, "isolated network (no forward)"),
    });
    out
}

/// The places other network managers keep their config, relative to the root.
const MANAGER_DIRS: &[(&str, &str)] = &[
    ("etc/netplan", "netplan"),
    ("etc/systemd/network", "systemd-networkd"),
    ("etc/NetworkManager/system-connections", "NetworkManager"),
    ("etc/network/interfaces.d", "ifupdown"),
    ("etc/systemd/system", "a systemd unit"),
];

/// Reads every file that could make another manager touch our interfaces.
pub fn manager_files(root: &Path) -> Vec<(PathBuf, &'static str, String)> {
    let mut out = Vec::new();
    let interfaces = root.join("etc/network/interfaces");
    if let Ok(t) = fs::read_to_string(&interfaces) {
        out.push((PathBuf::from("/etc/network/interfaces"), "ifupdown", t));
    }
    for (dir, who) in MANAGER_DIRS {
        let Ok(rd) = fs::read_dir(root.join(dir)) else {
            continue;
        };
        let mut entries: Vec<_> = rd.flatten().map(|e| e.path()).collect();
        entries.sort();
        for p in entries {
            let unit_ok = *who != "a systemd unit" || p.extension().is_some_and(|e| e == "service");
            if p.is_file()
                && unit_ok
                && let Ok(t) = fs::read_to_string(&p)
            {
                let shown = Path::new("/").join(p.strip_prefix(root).unwrap_or(&p));
                out.push((shown, *who, t));
            }
        }
    }
    out
}

/// G5: another manager mentions the bridge, a VLAN or an address.
pub fn g5(files: &[(PathBuf, &'static str, String)], needles: &[String]) -> Vec<Check> {
    let mut out = Vec::new();
    for (path, who, text) in files {
        let hits: Vec<&str> = needles
            .iter()
            .filter(|n| mentions(text, n))
            .map(String::as_str)
            .collect();
        if !hits.is_empty() {
            out.push(c(
                "G5",
                Status::Warn,
                format!(
                    "two managers: {} ({who}) mentions {}; make sure only one of them creates it",
                    path.display(),
                    hits.join(", ")
                ),
            ));
        }
    }
    if out.is_empty() {
        out.push(c("G5", Status::Pass, "no netplan, networkd, NetworkManager, ifupdown or systemd unit mentions the bridge, the VLANs or their addresses"));
    }
    out
}

/// Whole-word match: `virbr1` must not match `virbr10`, nor `10.12.8.1`
/// match `10.12.8.10`.
fn mentions(text: &str, needle: &str) -> bool {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    text.match_indices(needle).any(|(i, m)| {
        let before = text[..i].chars().next_back();
        let after = text[i + m.len()..].chars().next();
        !before.is_some_and(|c| word(c) || c == '.') && !after.is_some_and(word)
    })
}

/// G6: each configured VLAN against the host: absent, owned, adoptable,
/// foreign, drifted, or in conflict (naming the holder).
pub fn g6(net: &NetworkConfig, info: &NetInfo, obs: &Observed) -> Vec<Check> {
    let Some(bridge) = info.net.bridge.as_deref() else {
        return vec![];
    };
    let (obs, _) = ops::with_bridge(obs.clone(), bridge);
    let mut out = Vec::new();
    for v in super::vlan_views(net, bridge, &obs) {
        let (id, name) = (v.vlan.id, &v.name);
        match v.plan {
            Err(problems) => {
                for p in problems {
                    out.push(c("G6", Status::Fail, format!("VLAN {id} ({name}): {p}")));
                }
            }
            Ok(steps) => out.push(match v.link {
                None if info.active => c("G6", Status::Warn, format!("VLAN {id} ({name}) is absent although the network is active: `net-hook apply {}`", info.net.name)),
                None => c("G6", Status::Pass, format!("VLAN {id} ({name}) is absent; created when the network starts")),
                Some(_) if !v.owned => c("G6", Status::Warn, format!("VLAN {id} ({name}) exists, not created by net-hook; it matches and will be adopted")),
                Some(_) if steps.is_empty() => c("G6", Status::Pass, format!("VLAN {id} ({name}) is present, owned by net-hook, as configured")),
                Some(_) => {
                    let drift: Vec<String> = steps.iter().map(ToString::to_string).collect();
                    c("G6", Status::Warn, format!("VLAN {id} ({name}) has drifted; `net-hook apply {}` would: {}", info.net.name, drift.join("; ")))
                }
            }),
        }
    }
    out
}

/// What the hook entry looks like, read from the hooks directory.
pub struct HookState {
    /// `None`: no entry. `Some(Some(t))`: a symlink to `t`; `Some(None)`: a file.
    pub entry: Option<Option<PathBuf>>,
    pub target_ok: bool,
    /// Unix time the oldest network hook appeared (lstat mtime).
    pub oldest_hook: Option<i64>,
    /// Unix start times of running libvirtd / virtnetworkd.
    pub daemons: Vec<(String, i64)>,
}

pub fn hook_checks(h: &HookState) -> Vec<Check> {
    let mut out = Vec::new();
    match &h.entry {
        None => {
            out.push(c("HOOK", Status::Fail, format!("network.d/{ENTRY_NAME} is missing: `net-hook install`")));
            return out;
        }
        Some(Some(t)) if !h.target_ok => out.push(c("HOOK", Status::Fail, format!("network.d/{ENTRY_NAME} -> {} is not an executable file", t.display()))),
        Some(Some(t)) if t.starts_with("/usr/local") => out.push(c("HOOK", Status::Fail, format!("network.d/{ENTRY_NAME} -> {}: Debian's libvirtd AppArmor profile forbids running anything under /usr/local; install to /usr/bin", t.display()))),
        Some(Some(t)) if t.starts_with("/usr/bin") || t.starts_with("/usr/sbin") => {
            out.push(c("HOOK", Status::Pass, format!("network.d/{ENTRY_NAME} -> {}, runs outside libvirtd's AppArmor profile", t.display())))
        }
        Some(Some(t)) => out.push(c("HOOK", Status::Warn, format!("network.d/{ENTRY_NAME} -> {}: outside /usr/bin, AppArmor may confine or forbid it", t.display()))),
        Some(None) if !h.target_ok => out.push(c("HOOK", Status::Fail, format!("network.d/{ENTRY_NAME} is not executable"))),
        Some(None) => out.push(c("HOOK", Status::Warn, format!("network.d/{ENTRY_NAME} is a regular file: it runs inside libvirtd's AppArmor profile (net-hook's netlink raw socket is allowed there); `net-hook install` makes it a link to /usr/bin/net-hook"))),
    }
    for (daemon, started) in &h.daemons {
        out.push(match h.oldest_hook {
            Some(t) if t <= *started => c("HOOK", Status::Pass, format!("{daemon} started after a network hook existed, so it runs hooks")),
            _ => c("HOOK", Status::Fail, format!("{daemon} started before any network hook existed and does not run them: `systemctl restart {daemon}`")),
        });
    }
    if h.daemons.is_empty() {
        out.push(c(
            "HOOK",
            Status::Pass,
            "no libvirt daemon is running; it will run the hook when it starts",
        ));
    }
    out
}

/// Reads the hooks directory and the daemons' start times.
pub fn hook_state(hooks_dir: &Path, root: &Path) -> HookState {
    use std::os::unix::fs::MetadataExt;
    let entry_path = hooks_dir.join("network.d").join(ENTRY_NAME);
    let entry = fs::symlink_metadata(&entry_path).ok().map(|m| {
        if m.file_type().is_symlink() {
            fs::read_link(&entry_path).ok()
        } else {
            None
        }
    });
    let target_ok = install::is_executable(&entry_path);
    let oldest_hook = install::network_hooks(hooks_dir)
        .iter()
        .filter_map(|p| fs::symlink_metadata(p).ok().map(|m| m.mtime()))
        .min();
    HookState {
        entry,
        target_ok,
        oldest_hook,
        daemons: daemon_start_times(root),
    }
}

fn daemon_start_times(root: &Path) -> Vec<(String, i64)> {
    let proc = root.join("proc");
    let btime: Option<i64> = fs::read_to_string(proc.join("stat")).ok().and_then(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("btime ").and_then(|v| v.trim().parse().ok()))
    });
    let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .unwrap_or(100);
    let mut out = Vec::new();
    for (comm, dir) in install::libvirt_daemons(&proc) {
        // Field 22 (starttime, in clock ticks since boot), after the ")".
        let Ok(stat) = fs::read_to_string(dir.join("stat")) else {
            continue;
        };
        let ticks: Option<i64> = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(19))
            .and_then(|v| v.parse().ok());
        if let (Some(b), Some(t)) = (btime, ticks) {
            out.push((comm, b + t / hz));
        }
    }
    out
}

fn read(root: &Path, rel: &str) -> Option<String> {
    fs::read_to_string(root.join(rel)).ok()
}

/// Runs every check for `network`.
pub fn run(cx: &Ctx, network: &str) -> Result<Report> {
    let info = super::lookup_network(cx, network)?;
    let mut checks = Vec::new();
    let net = match super::load_config(cx.config)
        .and_then(|c| super::network_config(&c, cx.config, network, Some(&info)))
    {
        Ok((n, source)) => {
            checks.push(c(
                "CONFIG",
                Status::Pass,
                format!(
                    "valid, {} VLAN(s) for this network, {}",
                    n.vlans.len(),
                    source.describe(cx.config)
                ),
            ));
            Some(n)
        }
        Err(e) => {
            checks.push(c("CONFIG", Status::Fail, e.to_string()));
            None
        }
    };
    let bridge = info.net.bridge.clone().unwrap_or_default();
    let scope = match &net {
        Some(n) if info.active => ops::up_scope(n, &bridge),
        _ => Default::default(),
    };
    let obs = System::open()?.observe(&scope)?;
    // The host's own /sys, /proc and /etc (the readers take a root for tests).
    let root = Path::new("/");
    checks.push(g1(
        &bridge,
        read(
            root,
            &format!("sys/class/net/{bridge}/bridge/vlan_filtering"),
        )
        .as_deref(),
    ));
    let need_v6 = net.as_ref().is_some_and(|n| {
        n.vlans
            .iter()
            .flat_map(|v| &v.addresses)
            .any(|a| matches!(a, ipnet::IpNet::V6(_)))
    });
    checks.extend(g2(
        read(root, "proc/sys/net/ipv4/ip_forward").as_deref(),
        read(root, "proc/sys/net/ipv6/conf/all/forwarding").as_deref(),
        need_v6,
    ));
    checks.push(g3(&info, &obs));
    let exempted = match (&net, info.active) {
        (Some(n), true) => {
            matches!(super::unnat_plan(n, &info, &obs), Some(Ok(steps)) if steps.is_empty())
        }
        _ => false,
    };
    checks.extend(g4(&info, exempted));
    let mut needles = vec![bridge.clone()];
    if let Some(n) = &net {
        for v in &n.vlans {
            needles.push(v.ifname(&bridge));
            needles.extend(v.addresses.iter().map(|a| a.addr().to_string()));
        }
    }
    needles.retain(|n| !n.is_empty());
    checks.extend(g5(&manager_files(root), &needles));
    if let Some(n) = &net {
        checks.extend(g6(n, &info, &obs));
    }
    checks.extend(hook_checks(&hook_state(&cx.hooks_dir, root)));
    Ok(Report {
        network: network.to_string(),
        result: worst(&checks),
        checks,
    })
}

/// The worst status of `checks` (pass when there are none).
pub(crate) fn worst(checks: &[Check]) -> Status {
    checks
        .iter()
        .map(|c| c.status)
        .max()
        .unwrap_or(Status::Pass)
}

pub fn print(r: &Report, color: bool) {
    print_checks(&r.checks, &format!("network {:?}", r.network), color);
}

/// One line per check, then the counts for `subject` (`network "x"`,
/// `domain "y"`).
pub(crate) fn print_checks(checks: &[Check], subject: &str, color: bool) {
    for ch in checks {
        let (word, code) = match ch.status {
            Status::Pass => ("PASS", "32"),
            Status::Warn => ("WARN", "33"),
            Status::Fail => ("FAIL", "31"),
        };
        println!(
            "{}  {:<6}  {}",
            super::paint(word, code, color),
            ch.id,
            ch.reason
        );
    }
    let n = |s| checks.iter().filter(|c| c.status == s).count();
    println!(
        "{subject}: {} passed, {} warnings, {} failed",
        n(Status::Pass),
        n(Status::Warn),
        n(Status::Fail)
    );
}

#[cfg(test)]
mod tests;
