//! Bring-up and teardown of one network's VLANs, shared by the hook
//! (`started` / `stopped`) and the companion commands (`apply`, `teardown`,
//! `reconcile`). Callers hold the run-dir lock.

use crate::apply;
use crate::config::NetworkConfig;
use crate::error::{Error, Result};
use crate::log::Log;
use crate::model::{Link, Observed};
use crate::netlink::Net;
use crate::plan::{self, Problem, Step};
use crate::state::{BridgeVid, Outcome, RunDir, now};

/// What a successful run did.
pub struct Done {
    /// "ok" or "unchanged".
    pub result: &'static str,
    pub actions: Vec<String>,
    pub vids_added: Vec<BridgeVid>,
}

impl Done {
    pub fn nothing() -> Done {
        Done {
            result: "ok",
            actions: vec![],
            vids_added: vec![],
        }
    }
}

/// Creates or reconciles `net`'s VLANs on `bridge`; all or nothing.
pub fn up(
    net: &NetworkConfig,
    bridge: &str,
    rt: &mut dyn Net,
    rundir: &RunDir,
    log: &mut Log,
) -> Result<Done> {
    let obs = rt.observe()?;
    let steps = plan::plan_up(net, bridge, &obs).map_err(Error::Refused)?;
    if steps.is_empty() {
        log.info("nothing to do: every VLAN is as configured");
    }
    let mut actions = Vec::new();
    apply::apply(rt, &steps, |s| {
        log.info(&s.to_string());
        actions.push(s.to_string());
    })?;
    let mut vids_added = previous_vids(rundir, &net.name);
    for s in &steps {
        if let Step::BridgeVidAdd { bridge, vid } = s {
            vids_added.push(BridgeVid {
                bridge: bridge.clone(),
                vid: *vid,
            });
        }
    }
    vids_added.sort();
    vids_added.dedup();
    Ok(Done {
        result: if steps.is_empty() { "unchanged" } else { "ok" },
        actions,
        vids_added,
    })
}

/// Deletes everything marked for `network`; runs every step, reports the
/// first failure.
pub fn down(network: &str, rt: &mut dyn Net, rundir: &RunDir, log: &mut Log) -> Result<Done> {
    let obs = rt.observe()?;
    let steps = plan::plan_down(network, &obs, &added_vids(rundir, network));
    let mut actions = Vec::new();
    let errors = apply::teardown(rt, &steps, |s| {
        log.info(&s.to_string());
        actions.push(s.to_string());
    });
    match errors.into_iter().next() {
        None => Ok(Done {
            result: if steps.is_empty() { "unchanged" } else { "ok" },
            actions,
            vids_added: vec![],
        }),
        Some(first) => Err(first),
    }
}

/// The VIDs the last bring-up added to filtering bridges.
pub fn added_vids(rundir: &RunDir, network: &str) -> Vec<(String, u16)> {
    previous_vids(rundir, network)
        .into_iter()
        .map(|b| (b.bridge, b.vid))
        .collect()
}

fn previous_vids(rundir: &RunDir, network: &str) -> Vec<BridgeVid> {
    rundir
        .read(network)
        .filter(|o| o.op == "started" || o.op == "apply")
        .map(|o| o.bridge_vids_added)
        .unwrap_or_default()
}

/// The outcome record of a run.
pub fn outcome(network: &str, op: &str, res: &Result<Done>) -> Outcome {
    let mut o = Outcome {
        network: network.to_string(),
        op: op.to_string(),
        time: now(),
        ..Outcome::default()
    };
    match res {
        Ok(done) => {
            o.result = done.result.to_string();
            o.message = match (done.result, done.actions.len()) {
                ("unchanged", _) => "nothing to do".to_string(),
                (_, 0) => "ok".to_string(),
                (_, n) => format!("{n} change(s)"),
            };
            o.actions = done.actions.clone();
            o.bridge_vids_added = done.vids_added.clone();
        }
        Err(e) => {
            o.result = match e {
                Error::Refused(_)
                | Error::Config(_)
                | Error::ConfigInsecure { .. }
                | Error::Input(_) => "refused",
                _ => "failed",
            }
            .to_string();
            if let Error::Refused(problems) = e {
                o.problems = problems.iter().map(ToString::to_string).collect();
                o.holders = problems
                    .iter()
                    .filter_map(|p| match p {
                        Problem::Conflict { holder, .. } => Some(holder.clone()),
                        _ => None,
                    })
                    .collect();
            }
            o.message = e.to_string();
        }
    }
    o
}

/// For a dry run on a host where the bridge does not exist (yet): plan as if
/// libvirt had just created it.
pub fn with_bridge(mut obs: Observed, bridge: &str) -> (Observed, Option<String>) {
    if obs.link_by_name(bridge).is_some() {
        return (obs, None);
    }
    let index = obs.links.iter().map(|l| l.index).max().unwrap_or(0) + 1;
    obs.links.push(Link {
        index,
        name: bridge.to_string(),
        kind: Some("bridge".into()),
        mtu: 1500,
        up: true,
        ..Link::default()
    });
    (
        obs,
        Some(format!(
            "bridge {bridge} does not exist on this host; planned as if libvirt had just created it"
        )),
    )
}

/// Prints a dry run's plan (or its problems) to stdout.
pub fn print_plan(
    net: &NetworkConfig,
    what: &str,
    bridge: &str,
    note: Option<String>,
    planned: &std::result::Result<Vec<Step>, Vec<Problem>>,
) {
    let mode = if net.strict { "strict" } else { "fail-soft" };
    println!(
        "network {:?}, {what} (bridge {bridge}, {mode}): dry run, nothing changed",
        net.name
    );
    if let Some(n) = note {
        println!("  note: {n}");
    }
    match planned {
        Ok(steps) if steps.is_empty() => println!("  nothing to do"),
        Ok(steps) => {
            for (i, s) in steps.iter().enumerate() {
                println!("  {:>2}. {s}", i + 1);
            }
        }
        Err(problems) => print_problems(&net.name, what, problems),
    }
}

pub fn print_problems(network: &str, what: &str, problems: &[Problem]) {
    if problems.is_empty() {
        println!("network {network:?}, {what}: no problems");
    }
    for p in problems {
        println!("  problem: {p}");
    }
}
