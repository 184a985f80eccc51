//! The un-NAT exemption: traffic from a NAT network to configured prefixes
//! (its VLAN planes) is routed without libvirt's masquerade.
//!
//! - iptables: a RETURN at the head of the built-in nat POSTROUTING chain,
//!   ahead of libvirt's jump to LIBVIRT_PRT, so libvirt's reloads (which
//!   re-fill its own chains) cannot displace it.
//! - nftables: an identity `snat ... prefix to ... saddr map { S : S }` in
//!   net-hook's own table at priority srcnat - 1. A plain `accept` would not
//!   do: the kernel runs every nat chain until one binds a NAT mapping.
//!
//! Rules are marked with the comment `net-hook:<network>` (iptables) or live
//! in a chain named for the network (nftables), so only owned rules are
//! touched. Commands run by absolute path with argv, never through a shell.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use ipnet::IpNet;

use crate::config::{BackendChoice, Unnat};
use crate::error::{Error, Result};
use crate::hookdata::HookNetwork;
use crate::model::owner_mark;

pub const NFT_TABLE: &str = "net_hook";
const NETWORK_CONF: &str = "/etc/libvirt/network.conf";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exemption {
    pub src: IpNet,
    pub dst: IpNet,
}

impl fmt::Display for Exemption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} -> {}", self.src, self.dst)
    }
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

/// Runs a firewall command. A fake records argv in unit tests.
pub trait Runner {
    /// Returns (exit status, stdout, stderr).
    fn run(&mut self, argv: &[String], stdin: Option<&str>) -> Result<(i32, String, String)>;
    /// Whether the program exists.
    fn has(&self, program: &str) -> bool;
}

/// The real runner: absolute paths, a clean environment (no reliance on
/// libvirt's PATH), stable C-locale output.
pub struct Sys;

fn find_bin(name: &str) -> Option<PathBuf> {
    ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]
        .iter()
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
}

impl Runner for Sys {
    fn run(&mut self, argv: &[String], stdin: Option<&str>) -> Result<(i32, String, String)> {
        let prog = find_bin(&argv[0]).ok_or_else(|| {
            Error::io(
                format!("running {}", argv[0]),
                std::io::Error::from(std::io::ErrorKind::NotFound),
            )
        })?;
        let mut child = Command::new(&prog)
            .args(&argv[1..])
            .env_clear()
            .env("LC_ALL", "C")
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| Error::io(format!("running {}", prog.display()), e))?;
        if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
            pipe.write_all(text.as_bytes())
                .map_err(|e| Error::io(format!("writing to {}", prog.display()), e))?;
        }
        let out = child
            .wait_with_output()
            .map_err(|e| Error::io(format!("running {}", prog.display()), e))?;
        Ok((
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ))
    }

    fn has(&self, program: &str) -> bool {
        find_bin(program).is_some()
    }
}

fn argv(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|s| s.to_string()).collect()
}

fn fw_err(what: String, stderr: &str) -> Error {
    Error::io(
        what,
        std::io::Error::other(if stderr.is_empty() {
            "failed".to_string()
        } else {
            stderr.replace('\n', " ")
        }),
    )
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
pub fn detect(
    choice: BackendChoice,
    network_conf: Option<&str>,
    libvirt_iptables: bool,
    libvirt_nft: bool,
) -> (Backend, String) {
    if let Some(b) = network_conf.and_then(conf_backend) {
        return (b, format!("firewall_backend = \"{b}\" in {NETWORK_CONF}"));
    }
    match (libvirt_iptables, libvirt_nft) {
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

/// Reads what [`detect`] needs from the host.
pub fn detect_host(choice: BackendChoice, r: &mut dyn Runner) -> (Backend, String) {
    let conf = std::fs::read_to_string(NETWORK_CONF).ok();
    if conf.as_deref().and_then(conf_backend).is_some() {
        // network.conf decides: no need to spawn the probes.
        return detect(choice, conf.as_deref(), false, false);
    }
    let ipt = r.has("iptables")
        && r.run(
            &argv(&["iptables", "-w", "-t", "nat", "-S", "LIBVIRT_PRT"]),
            None,
        )
        .is_ok_and(|(c, _, _)| c == 0);
    let nft = r.has("nft")
        && r.run(
            &argv(&["nft", "list", "table", "ip", "libvirt_network"]),
            None,
        )
        .is_ok_and(|(c, _, _)| c == 0);
    detect(choice, conf.as_deref(), ipt, nft)
}

fn iptables_for(net: &IpNet) -> &'static str {
    if net.addr().is_ipv4() {
        "iptables"
    } else {
        "ip6tables"
    }
}

fn ipt_spec(ex: &Exemption, mark: &str) -> Vec<String> {
    argv(&[
        "-s",
        &ex.src.to_string(),
        "-d",
        &ex.dst.to_string(),
        "-m",
        "comment",
        "--comment",
        mark,
        "-j",
        "RETURN",
    ])
}

/// Splits an `iptables -S` line into words, honouring double quotes.
fn split_words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let (mut quoted, mut any) = (false, false);
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                quoted = !quoted;
                any = true;
            }
            '\\' if quoted => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            c if c.is_whitespace() && !quoted => {
                if any || !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
                any = false;
            }
            c => cur.push(c),
        }
    }
    if any || !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// net-hook's rules for `mark` in an `iptables -S POSTROUTING` listing, as
/// the words after `-A POSTROUTING`.
pub fn owned_ipt_rules(listing: &str, mark: &str) -> Vec<Vec<String>> {
    ipt_rules_where(listing, |c| c == mark)
}

/// The rules in an `iptables -S POSTROUTING` listing whose comment passes
/// `owned`, as the words after `-A POSTROUTING`.
fn ipt_rules_where(listing: &str, owned: impl Fn(&str) -> bool) -> Vec<Vec<String>> {
    listing
        .lines()
        .map(split_words)
        .filter(|w| w.len() > 2 && w[0] == "-A" && w[1] == "POSTROUTING")
        .filter(|w| w.windows(2).any(|p| p[0] == "--comment" && owned(&p[1])))
        .map(|w| w[2..].to_vec())
        .collect()
}

/// nft chain name for a network: readable, and unique through a hash.
pub fn nft_chain(network: &str) -> String {
    let readable: String = network
        .chars()
        .take(40)
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    // FNV-1a: stable across versions, unlike std's hasher.
    let hash = network.bytes().fold(0x811c9dc5u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x01000193)
    });
    format!("unnat_{readable}_{hash:08x}")
}

fn nft_family(ex: &Exemption) -> &'static str {
    if ex.src.addr().is_ipv4() { "ip" } else { "ip6" }
}

/// One `nft -f` transaction that makes the network's chains hold exactly
/// `exs`; `stale` names families whose chain exists but is no longer wanted.
pub fn nft_apply_script(network: &str, exs: &[Exemption], stale: &[&str]) -> String {
    let chain = nft_chain(network);
    let comment: String = owner_mark(network)
        .replace('"', "'")
        .chars()
        .take(120)
        .collect();
    let mut s = String::new();
    for fam in ["ip", "ip6"] {
        let mine = of_family(exs, fam);
        if mine.is_empty() {
            if stale.contains(&fam) {
                s.push_str(&format!("delete chain {fam} {NFT_TABLE} {chain}\n"));
            }
            continue;
        }
        s.push_str(&format!("add table {fam} {NFT_TABLE}\n"));
        s.push_str(&format!("add chain {fam} {NFT_TABLE} {chain} {{ type nat hook postrouting priority srcnat - 1; }}\n"));
        s.push_str(&format!("flush chain {fam} {NFT_TABLE} {chain}\n"));
        for e in mine {
            s.push_str(&format!(
                "add rule {fam} {NFT_TABLE} {chain} {fam} saddr {src} {fam} daddr {dst} snat {fam} prefix to {fam} saddr map {{ {src} : {src} }} comment \"{comment}\"\n",
                src = e.src,
                dst = e.dst
            ));
        }
    }
    s
}

/// Whether an `nft list chain` listing holds exactly `exs` (of one family).
pub fn nft_chain_matches(listing: &str, exs: &[&Exemption]) -> bool {
    let rules: Vec<&str> = listing.lines().filter(|l| l.contains("snat")).collect();
    rules.len() == exs.len()
        && exs.iter().all(|e| {
            let fam = nft_family(e);
            rules
                .iter()
                .any(|r| r.contains(&format!("{fam} saddr {} {fam} daddr {}", e.src, e.dst)))
        })
}

/// What [`ensure`] did.
#[derive(Debug)]
pub struct Applied {
    pub backend: Backend,
    pub why: String,
    /// Empty when everything was already in place.
    pub actions: Vec<String>,
}

/// Makes the network's exemptions exactly `exs`; idempotent. On failure,
/// what this call added is removed again.
pub fn ensure(
    network: &str,
    exs: &[Exemption],
    choice: BackendChoice,
    r: &mut dyn Runner,
) -> Result<Applied> {
    let (backend, why) = detect_host(choice, r);
    let actions = match backend {
        Backend::Iptables => ensure_iptables(network, exs, r)?,
        Backend::Nftables => ensure_nft(network, exs, r)?,
    };
    Ok(Applied {
        backend,
        why,
        actions,
    })
}

fn ensure_iptables(network: &str, exs: &[Exemption], r: &mut dyn Runner) -> Result<Vec<String>> {
    let mark = owner_mark(network);
    let mut added: Vec<(&str, Vec<String>)> = Vec::new();
    let mut actions = Vec::new();
    let mut result = Ok(());
    for ex in exs {
        let prog = iptables_for(&ex.src);
        let spec = ipt_spec(ex, &mark);
        match r.run(&ipt_check(ex, &mark), None)? {
            (0, _, _) => continue,
            (1, _, _) => {}
            (_, _, e) => {
                result = Err(fw_err(format!("{prog}: checking the exemption {ex}"), &e));
                break;
            }
        }
        let mut insert = argv(&[prog, "-w", "-t", "nat", "-I", "POSTROUTING", "1"]);
        insert.extend(spec.iter().cloned());
        match r.run(&insert, None)? {
            (0, _, _) => {
                actions.push(format!(
                    "exempt {ex} from masquerade ({prog} nat POSTROUTING, rule 1)"
                ));
                added.push((prog, spec));
            }
            (_, _, e) => {
                result = Err(fw_err(format!("{prog}: inserting the exemption {ex}"), &e));
                break;
            }
        }
    }
    if let Err(e) = result {
        for (prog, spec) in added {
            let _ = delete_ipt(prog, &spec, r);
        }
        return Err(e);
    }
    // Rules of this network that the config no longer asks for.
    let wanted: Vec<Vec<String>> = exs.iter().map(|e| ipt_spec(e, &mark)).collect();
    for prog in ["iptables", "ip6tables"] {
        // Best effort: a host without ip6tables' nat table has none to clean.
        for rule in list_owned_ipt(prog, &mark, r).unwrap_or_default() {
            if !wanted.iter().any(|w| same_ipt_rule(w, &rule)) {
                delete_ipt(prog, &rule, r)?;
                actions.push(format!(
                    "remove a stale exemption ({prog}: {})",
                    rule.join(" ")
                ));
            }
        }
    }
    Ok(actions)
}

/// iptables prints `10.12.4.0/22` as given; compare the words that matter.
fn same_ipt_rule(a: &[String], b: &[String]) -> bool {
    let key = |w: &[String]| {
        let at = |flag: &str| w.windows(2).find(|p| p[0] == flag).map(|p| p[1].clone());
        (at("-s"), at("-d"), at("-j"))
    };
    key(a) == key(b)
}

fn list_owned_ipt(prog: &str, mark: &str, r: &mut dyn Runner) -> Result<Vec<Vec<String>>> {
    list_ipt_where(prog, |c| c == mark, r)
}

/// [`ipt_rules_where`] over `prog`'s live nat POSTROUTING chain.
fn list_ipt_where(
    prog: &str,
    owned: impl Fn(&str) -> bool,
    r: &mut dyn Runner,
) -> Result<Vec<Vec<String>>> {
    if !r.has(prog) {
        return Ok(vec![]);
    }
    match r.run(&argv(&[prog, "-w", "-t", "nat", "-S", "POSTROUTING"]), None)? {
        (0, out, _) => Ok(ipt_rules_where(&out, owned)),
        (_, _, e) => Err(fw_err(format!("{prog}: listing nat POSTROUTING"), &e)),
    }
}

/// Deletes `rules` from `prog`'s nat POSTROUTING, every one even if some fail.
fn delete_ipt_rules(
    prog: &str,
    rules: Vec<Vec<String>>,
    r: &mut dyn Runner,
    actions: &mut Vec<String>,
    errors: &mut Vec<Error>,
) {
    for rule in rules {
        match delete_ipt(prog, &rule, r) {
            Ok(()) => actions.push(format!("remove exemption ({prog}: {})", rule.join(" "))),
            Err(e) => errors.push(e),
        }
    }
}

/// `iptables -C`: is the exemption's rule there?
fn ipt_check(ex: &Exemption, mark: &str) -> Vec<String> {
    let mut check = argv(&[
        iptables_for(&ex.src),
        "-w",
        "-t",
        "nat",
        "-C",
        "POSTROUTING",
    ]);
    check.extend(ipt_spec(ex, mark));
    check
}

fn nft_list_chain(fam: &str, chain: &str) -> Vec<String> {
    argv(&["nft", "list", "chain", fam, NFT_TABLE, chain])
}

/// The exemptions that belong in nftables family `fam` ("ip" or "ip6").
fn of_family<'a>(exs: &'a [Exemption], fam: &str) -> Vec<&'a Exemption> {
    exs.iter().filter(|e| nft_family(e) == fam).collect()
}

fn delete_ipt(prog: &str, rule: &[String], r: &mut dyn Runner) -> Result<()> {
    let mut del = argv(&[prog, "-w", "-t", "nat", "-D", "POSTROUTING"]);
    del.extend(rule.iter().cloned());
    match r.run(&del, None)? {
        (0, _, _) => Ok(()),
        (_, _, e) => Err(fw_err(format!("{prog}: deleting {}", rule.join(" ")), &e)),
    }
}

fn ensure_nft(network: &str, exs: &[Exemption], r: &mut dyn Runner) -> Result<Vec<String>> {
    let chain = nft_chain(network);
    let mut unchanged = true;
    let mut stale = Vec::new();
    for fam in ["ip", "ip6"] {
        let mine = of_family(exs, fam);
        let (code, out, _) = r.run(&nft_list_chain(fam, &chain), None)?;
        if mine.is_empty() && code == 0 {
            stale.push(fam);
        }
        unchanged &= if mine.is_empty() {
            code != 0
        } else {
            code == 0 && nft_chain_matches(&out, &mine)
        };
    }
    if unchanged {
        return Ok(vec![]);
    }
    // One transaction: all of it applies, or none.
    match r.run(
        &argv(&["nft", "-f", "-"]),
        Some(&nft_apply_script(network, exs, &stale)),
    )? {
        (0, _, _) => Ok(exs
            .iter()
            .map(|e| {
                format!(
                    "exempt {e} from masquerade (nftables {} {NFT_TABLE} {chain})",
                    nft_family(e)
                )
            })
            .collect()),
        (_, _, e) => Err(fw_err(
            format!("nft: installing the exemption for {network:?}"),
            &e,
        )),
    }
}

/// Removes every exemption owned by `network`, on both backends (the
/// backend may have changed since they were added); gathers all failures.
pub fn remove(network: &str, r: &mut dyn Runner) -> (Vec<String>, Vec<Error>) {
    let mark = owner_mark(network);
    let (mut actions, mut errors) = (Vec::new(), Vec::new());
    for prog in ["iptables", "ip6tables"] {
        match list_owned_ipt(prog, &mark, r) {
            Ok(rules) => delete_ipt_rules(prog, rules, r, &mut actions, &mut errors),
            Err(e) => errors.push(e),
        }
    }
    if r.has("nft") {
        let chain = nft_chain(network);
        for fam in ["ip", "ip6"] {
            if r.run(&nft_list_chain(fam, &chain), None)
                .is_ok_and(|(c, _, _)| c == 0)
            {
                match r.run(
                    &argv(&["nft", "delete", "chain", fam, NFT_TABLE, &chain]),
                    None,
                ) {
                    Ok((0, _, _)) => actions.push(format!(
                        "remove exemption (nftables {fam} {NFT_TABLE} {chain})"
                    )),
                    Ok((_, _, e)) => {
                        errors.push(fw_err(format!("nft: deleting chain {chain}"), &e))
                    }
                    Err(e) => errors.push(e),
                }
            }
            // The table goes with its last chain.
            if let Ok((0, out, _)) = r.run(&argv(&["nft", "list", "table", fam, NFT_TABLE]), None)
                && !out.contains("chain ")
            {
                let _ = r.run(&argv(&["nft", "delete", "table", fam, NFT_TABLE]), None);
            }
        }
    }
    (actions, errors)
}

/// Removes every net-hook rule and table, whatever network they are for.
pub fn remove_all(r: &mut dyn Runner) -> (Vec<String>, Vec<Error>) {
    let (mut actions, mut errors) = (Vec::new(), Vec::new());
    for prog in ["iptables", "ip6tables"] {
        // A chain that cannot be listed has nothing of ours to remove.
        if let Ok(rules) = list_ipt_where(prog, |c| c.starts_with(crate::model::OWNER_PREFIX), r) {
            delete_ipt_rules(prog, rules, r, &mut actions, &mut errors);
        }
    }
    if r.has("nft") {
        for fam in ["ip", "ip6"] {
            if r.run(&argv(&["nft", "list", "table", fam, NFT_TABLE]), None)
                .is_ok_and(|(c, _, _)| c == 0)
            {
                match r.run(&argv(&["nft", "delete", "table", fam, NFT_TABLE]), None) {
                    Ok((0, _, _)) => {
                        actions.push(format!("remove nftables table {fam} {NFT_TABLE}"))
                    }
                    Ok((_, _, e)) => {
                        errors.push(fw_err(format!("nft: deleting table {fam} {NFT_TABLE}"), &e))
                    }
                    Err(e) => errors.push(e),
                }
            }
        }
    }
    (actions, errors)
}

/// firewalld, when it runs, puts an interface it does not know in its
/// default zone, where forwarding may be rejected: put VLANs in `zone`
/// (libvirt's bridges are in `libvirt`). Runtime only; `reconcile` after a
/// firewalld reload restores it.
pub fn firewalld_running(r: &mut dyn Runner) -> bool {
    r.has("firewall-cmd")
        && r.run(&argv(&["firewall-cmd", "--state"]), None)
            .is_ok_and(|(c, _, _)| c == 0)
}

pub fn firewalld_zone(zone: &str, ifname: &str, add: bool, r: &mut dyn Runner) -> Result<()> {
    let op = if add {
        format!("--change-interface={ifname}")
    } else {
        format!("--remove-interface={ifname}")
    };
    match r.run(
        &argv(&["firewall-cmd", &format!("--zone={zone}"), &op]),
        None,
    )? {
        (0, _, _) => Ok(()),
        (_, _, e) => Err(fw_err(format!("firewalld: {op} in zone {zone}"), &e)),
    }
}

/// Whether the network's exemptions are all in place (for check/status).
pub fn present(network: &str, exs: &[Exemption], r: &mut dyn Runner) -> bool {
    let mark = owner_mark(network);
    let ipt = exs.iter().all(|ex| {
        r.has(iptables_for(&ex.src))
            && r.run(&ipt_check(ex, &mark), None)
                .is_ok_and(|(c, _, _)| c == 0)
    });
    if ipt {
        return true;
    }
    let chain = nft_chain(network);
    r.has("nft")
        && ["ip", "ip6"].iter().all(|fam| {
            let mine = of_family(exs, fam);
            mine.is_empty()
                || r.run(&nft_list_chain(fam, &chain), None)
                    .is_ok_and(|(c, out, _)| c == 0 && nft_chain_matches(&out, &mine))
        })
}

#[cfg(test)]
mod tests;
