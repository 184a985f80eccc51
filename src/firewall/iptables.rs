//! The iptables backend: one RETURN per exemption at the head of the
//! built-in nat POSTROUTING chain, marked with the comment
//! `net-hook:<network>`. Positions are planned, so a rollback puts a removed
//! rule back exactly where it was.

use super::{Driver, Error, Exemption, Family, FirewallView, Owner, Runner, argv, run_ok};
use crate::model::{OWNER_PREFIX, owner_mark};
use crate::plan::Step;

pub struct Iptables;

/// Reads `prog`'s nat POSTROUTING as `-S` words after `-A POSTROUTING`.
/// `None` when the program is missing, or for ip6tables when the host has
/// no IPv6 nat table (nothing of ours can be there).
pub fn observe(fam: Family, r: &mut dyn Runner) -> Result<Option<Vec<Vec<String>>>, Error> {
    let prog = fam.iptables();
    if !r.has(prog) {
        return Ok(None);
    }
    let cmd = argv(&[prog, "-w", "-t", "nat", "-S", "POSTROUTING"]);
    match r.run(&cmd, None)? {
        (0, out, _) => Ok(Some(parse_listing(&out))),
        (_, _, _) if fam == Family::Ip6 => Ok(None),
        (code, _, stderr) => Err(Error::Failed {
            program: prog.into(),
            what: "listing nat POSTROUTING".into(),
            code,
            stderr,
        }),
    }
}

/// The rules of an `iptables -S POSTROUTING` listing, as the words after
/// `-A POSTROUTING`.
pub fn parse_listing(listing: &str) -> Vec<Vec<String>> {
    listing
        .lines()
        .map(split_words)
        .filter(|w| w.len() > 2 && w[0] == "-A" && w[1] == "POSTROUTING")
        .map(|w| w[2..].to_vec())
        .collect()
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

fn comment(rule: &[String]) -> Option<&str> {
    rule.windows(2)
        .find(|p| p[0] == "--comment")
        .map(|p| p[1].as_str())
}

/// The spec net-hook inserts for `ex`.
pub fn spec(ex: &Exemption, mark: &str) -> Vec<String> {
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

/// iptables prints `10.12.4.0/22` as given; compare the words that matter.
fn same_rule(a: &[String], b: &[String]) -> bool {
    let key = |w: &[String]| {
        let at = |flag: &str| w.windows(2).find(|p| p[0] == flag).map(|p| p[1].clone());
        (at("-s"), at("-d"), at("-j"), comment(w).map(str::to_string))
    };
    key(a) == key(b)
}

fn owned_by(rule: &[String], owner: Owner) -> bool {
    match (comment(rule), owner) {
        (Some(c), Owner::Network(n)) => c == owner_mark(n),
        (Some(c), Owner::All) => c.starts_with(OWNER_PREFIX),
        (None, _) => false,
    }
}

/// Deletes `rule` from the simulated `chain` as `-D` would (the first equal
/// rule) and returns the step, with the 1-based position it had.
fn delete(fam: Family, chain: &mut Vec<Vec<String>>, rule: &[String]) -> Option<Step> {
    let i = chain.iter().position(|r| r == rule)?;
    chain.remove(i);
    Some(Step::IptDelete {
        family: fam,
        pos: (i + 1) as u32,
        spec: rule.to_vec(),
    })
}

impl Driver for Iptables {
    fn plan(
        &self,
        network: &str,
        want: &[Exemption],
        view: &FirewallView,
    ) -> Result<Vec<Step>, String> {
        let mark = owner_mark(network);
        let mut steps = Vec::new();
        for fam in Family::BOTH {
            let mine = super::of_family(want, fam);
            let Some(rules) = view.iptables_of(fam) else {
                if mine.is_empty() {
                    continue;
                }
                return Err(format!(
                    "{} cannot list its nat table (is it installed, and does the kernel have {} NAT?)",
                    fam.iptables(),
                    if fam == Family::Ip { "IPv4" } else { "IPv6" }
                ));
            };
            let specs: Vec<Vec<String>> = mine.iter().map(|e| spec(e, &mark)).collect();
            let mut chain = rules.clone();
            // Stale first: the config no longer asks for them.
            let stale: Vec<Vec<String>> = rules
                .iter()
                .filter(|r| owned_by(r, Owner::Network(network)))
                .filter(|r| !specs.iter().any(|s| same_rule(s, r)))
                .cloned()
                .collect();
            for rule in &stale {
                steps.extend(delete(fam, &mut chain, rule));
            }
            for s in specs {
                if !chain.iter().any(|r| same_rule(&s, r)) {
                    chain.insert(0, s.clone());
                    steps.push(Step::IptInsert {
                        family: fam,
                        pos: 1,
                        spec: s,
                    });
                }
            }
        }
        Ok(steps)
    }

    fn plan_remove(&self, owner: Owner, view: &FirewallView) -> Vec<Step> {
        let mut steps = Vec::new();
        for fam in Family::BOTH {
            let Some(rules) = view.iptables_of(fam) else {
                continue;
            };
            let mut chain = rules.clone();
            for rule in rules.iter().filter(|r| owned_by(r, owner)) {
                steps.extend(delete(fam, &mut chain, rule));
            }
        }
        steps
    }

    fn run(&self, step: &Step, r: &mut dyn Runner) -> Result<(), Error> {
        let (fam, mut cmd, spec) = match step {
            Step::IptInsert { family, pos, spec } => (
                *family,
                argv(&[
                    family.iptables(),
                    "-w",
                    "-t",
                    "nat",
                    "-I",
                    "POSTROUTING",
                    &pos.to_string(),
                ]),
                spec,
            ),
            Step::IptDelete { family, spec, .. } => (
                *family,
                argv(&[family.iptables(), "-w", "-t", "nat", "-D", "POSTROUTING"]),
                spec,
            ),
            other => {
                return Err(Error::Output {
                    program: "iptables".into(),
                    what: other.to_string(),
                    why: "not an iptables step".into(),
                });
            }
        };
        if !r.has(fam.iptables()) {
            return Err(Error::Missing {
                program: fam.iptables().into(),
            });
        }
        cmd.extend(spec.iter().cloned());
        run_ok(r, &cmd, None, step.to_string()).map(|_| ())
    }
}
