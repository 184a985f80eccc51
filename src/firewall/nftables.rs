//! The nftables backend: net-hook's own `table ip net_hook` (and `ip6`),
//! one nat chain per network at priority srcnat - 1 holding identity
//! `snat ip prefix to ip saddr map { SRC : SRC }` rules. The state is read
//! from `nft -j list ruleset` (JSON) and parsed; each step is one `nft -f`
//! transaction. libvirt's tables are never touched.

use ipnet::IpNet;
use serde_json::Value;

use super::{
    Driver, Error, Exemption, Family, FirewallView, NFT_TABLE, Owner, Runner, argv, run_ok,
};
use crate::model::owner_mark;
use crate::plan::Step;

pub struct Nftables;

/// One rule as net-hook judges it: its address matches, whether it binds a
/// NAT mapping, and its comment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub family: String,
    pub table: String,
    pub chain: String,
    pub saddr: Option<IpNet>,
    pub daddr: Option<IpNet>,
    pub snat: bool,
    pub comment: Option<String>,
}

/// The parts of `nft -j list ruleset` net-hook needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ruleset {
    /// (family, table name)
    pub tables: Vec<(String, String)>,
    /// (family, table, chain)
    pub chains: Vec<(String, String, String)>,
    pub rules: Vec<Rule>,
}

impl Ruleset {
    pub fn has_table(&self, fam: Family, name: &str) -> bool {
        self.tables.iter().any(|(f, t)| f == fam.nft() && t == name)
    }

    /// net-hook's chains in `fam`.
    pub fn own_chains(&self, fam: Family) -> impl Iterator<Item = &str> {
        self.chains
            .iter()
            .filter(move |(f, t, _)| f == fam.nft() && t == NFT_TABLE)
            .map(|(_, _, c)| c.as_str())
    }

    /// The exemptions in net-hook's chain `chain` of `fam`; `None` when the
    /// chain does not exist.
    pub fn chain_exemptions(&self, fam: Family, chain: &str) -> Option<Vec<Exemption>> {
        self.own_chains(fam).find(|c| *c == chain)?;
        Some(
            self.rules
                .iter()
                .filter(|r| r.family == fam.nft() && r.table == NFT_TABLE && r.chain == chain)
                .filter_map(|r| match (r.saddr, r.daddr, r.snat) {
                    (Some(src), Some(dst), true) => Some(Exemption { src, dst }),
                    _ => None,
                })
                .collect(),
        )
    }

    /// Whether the chain holds anything that is not one of our exemptions.
    fn chain_is_clean(&self, fam: Family, chain: &str) -> bool {
        self.rules
            .iter()
            .filter(|r| r.family == fam.nft() && r.table == NFT_TABLE && r.chain == chain)
            .all(|r| r.saddr.is_some() && r.daddr.is_some() && r.snat)
    }
}

/// Parses `nft -j list ruleset`.
pub fn parse(json: &str) -> Result<Ruleset, String> {
    let v: Value = serde_json::from_str(json).map_err(|e| e.to_string())?;
    let items = v
        .get("nftables")
        .and_then(Value::as_array)
        .ok_or("no \"nftables\" array")?;
    let s = |o: &Value, k: &str| o.get(k).and_then(Value::as_str).map(str::to_string);
    let mut out = Ruleset::default();
    for item in items {
        if let Some(t) = item.get("table") {
            if let (Some(f), Some(n)) = (s(t, "family"), s(t, "name")) {
                out.tables.push((f, n));
            }
        } else if let Some(c) = item.get("chain") {
            if let (Some(f), Some(t), Some(n)) = (s(c, "family"), s(c, "table"), s(c, "name")) {
                out.chains.push((f, t, n));
            }
        } else if let Some(r) = item.get("rule") {
            let (Some(family), Some(table), Some(chain)) =
                (s(r, "family"), s(r, "table"), s(r, "chain"))
            else {
                continue;
            };
            let mut rule = Rule {
                family,
                table,
                chain,
                saddr: None,
                daddr: None,
                snat: false,
                comment: s(r, "comment"),
            };
            for e in r
                .get("expr")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if e.get("snat").is_some() {
                    rule.snat = true;
                }
                let Some(m) = e.get("match") else { continue };
                if m.get("op").and_then(Value::as_str) != Some("==") {
                    continue;
                }
                let field = m
                    .get("left")
                    .and_then(|l| l.get("payload"))
                    .and_then(|p| p.get("field"))
                    .and_then(Value::as_str);
                let addr = m.get("right").and_then(prefix);
                match field {
                    Some("saddr") => rule.saddr = addr,
                    Some("daddr") => rule.daddr = addr,
                    _ => {}
                }
            }
            out.rules.push(rule);
        }
    }
    Ok(out)
}

/// `"10.1.2.3"` or `{"prefix": {"addr": "10.1.0.0", "len": 16}}`.
fn prefix(v: &Value) -> Option<IpNet> {
    if let Some(a) = v.as_str() {
        return a.parse::<std::net::IpAddr>().ok().map(IpNet::from);
    }
    let p = v.get("prefix")?;
    let addr: std::net::IpAddr = p.get("addr")?.as_str()?.parse().ok()?;
    let len = u8::try_from(p.get("len")?.as_u64()?).ok()?;
    IpNet::new(addr, len).ok()
}

/// `None` when nft is not installed.
pub fn observe(r: &mut dyn Runner) -> Result<Option<Ruleset>, Error> {
    if !r.has("nft") {
        return Ok(None);
    }
    let what = "listing the ruleset";
    let out = run_ok(r, &argv(&["nft", "-j", "list", "ruleset"]), None, what)?;
    parse(&out).map(Some).map_err(|why| Error::Output {
        program: "nft".into(),
        what: what.into(),
        why,
    })
}

/// nft chain name for a network: readable, and unique through a hash.
pub fn chain_name(network: &str) -> String {
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

/// The `nft -f` script of one step.
pub fn script(step: &Step) -> Option<String> {
    Some(match step {
        Step::NftAddTable { family } => format!("add table {family} {NFT_TABLE}\n"),
        Step::NftDeleteTable { family } => format!("delete table {family} {NFT_TABLE}\n"),
        Step::NftSetChain {
            family,
            chain,
            network,
            rules,
            ..
        } => {
            let comment: String = owner_mark(network)
                .replace('"', "'")
                .chars()
                .take(120)
                .collect();
            let mut s = format!(
                "add table {family} {NFT_TABLE}\n\
                 add chain {family} {NFT_TABLE} {chain} {{ type nat hook postrouting priority srcnat - 1; }}\n\
                 flush chain {family} {NFT_TABLE} {chain}\n"
            );
            for e in rules {
                s.push_str(&format!(
                    "add rule {family} {NFT_TABLE} {chain} {family} saddr {src} {family} daddr {dst} snat {family} prefix to {family} saddr map {{ {src} : {src} }} comment \"{comment}\"\n",
                    src = e.src,
                    dst = e.dst
                ));
            }
            s
        }
        Step::NftDeleteChain { family, chain, .. } => {
            format!("delete chain {family} {NFT_TABLE} {chain}\n")
        }
        _ => return None,
    })
}

impl Driver for Nftables {
    fn plan(
        &self,
        network: &str,
        want: &[Exemption],
        view: &FirewallView,
    ) -> Result<Vec<Step>, String> {
        let Some(nft) = &view.nft else {
            return Err("nft is not installed".into());
        };
        let chain = chain_name(network);
        let mut steps = Vec::new();
        for fam in Family::BOTH {
            let mut mine = super::of_family(want, fam);
            let have = nft.chain_exemptions(fam, &chain);
            match have {
                None if mine.is_empty() => {}
                Some(old) if mine.is_empty() => steps.push(Step::NftDeleteChain {
                    family: fam,
                    chain: chain.clone(),
                    network: network.into(),
                    old,
                }),
                None => {
                    if !nft.has_table(fam, NFT_TABLE) {
                        steps.push(Step::NftAddTable { family: fam });
                    }
                    steps.push(Step::NftSetChain {
                        family: fam,
                        chain: chain.clone(),
                        network: network.into(),
                        rules: mine,
                        old: None,
                    });
                }
                Some(mut old) => {
                    let clean = nft.chain_is_clean(fam, &chain);
                    mine.sort();
                    let mut sorted = old.clone();
                    sorted.sort();
                    if clean && sorted == mine {
                        continue;
                    }
                    old.dedup();
                    steps.push(Step::NftSetChain {
                        family: fam,
                        chain: chain.clone(),
                        network: network.into(),
                        rules: super::of_family(want, fam),
                        old: Some(old),
                    });
                }
            }
        }
        Ok(steps)
    }

    fn plan_remove(&self, owner: Owner, view: &FirewallView) -> Vec<Step> {
        let Some(nft) = &view.nft else {
            return vec![];
        };
        let mut steps = Vec::new();
        for fam in Family::BOTH {
            let chains: Vec<&str> = nft.own_chains(fam).collect();
            let mut left = chains.len();
            for c in chains {
                let network = match owner {
                    Owner::Network(n) if c == chain_name(n) => n.to_string(),
                    Owner::Network(_) => continue,
                    Owner::All => nft
                        .rules
                        .iter()
                        .find(|r| r.family == fam.nft() && r.table == NFT_TABLE && r.chain == c)
                        .and_then(|r| r.comment.as_deref())
                        .and_then(|m| m.strip_prefix(crate::model::OWNER_PREFIX))
                        .unwrap_or_default()
                        .to_string(),
                };
                steps.push(Step::NftDeleteChain {
                    family: fam,
                    chain: c.to_string(),
                    network,
                    old: nft.chain_exemptions(fam, c).unwrap_or_default(),
                });
                left -= 1;
            }
            // The table goes with its last chain.
            if left == 0 && nft.has_table(fam, NFT_TABLE) {
                steps.push(Step::NftDeleteTable { family: fam });
            }
        }
        steps
    }

    fn run(&self, step: &Step, r: &mut dyn Runner) -> Result<(), Error> {
        let Some(text) = script(step) else {
            return Err(Error::Output {
                program: "nft".into(),
                what: step.to_string(),
                why: "not an nftables step".into(),
            });
        };
        if !r.has("nft") {
            return Err(Error::Missing {
                program: "nft".into(),
            });
        }
        run_ok(r, &argv(&["nft", "-f", "-"]), Some(&text), step.to_string()).map(|_| ())
    }
}
