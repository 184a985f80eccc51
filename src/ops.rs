//! Bring-up and teardown of one network's VLANs, shared by the hook
//! (`started` / `stopped`) and the companion commands (`apply`, `teardown`,
//! `reconcile`). Callers hold the run-dir lock.

use crate::apply;
use crate::config::{self, NetworkConfig};
use crate::error::{Error, Result};
use crate::firewall::{self, Runner};
use crate::hookdata::HookNetwork;
use crate::log::Log;
use crate::model::Observed;
use crate::netlink::Net;
use crate::plan::{self, Problem, Step};
use crate::state::{BridgeVid, Outcome, RunDir, now};

/// What a successful run did.
pub struct Done {
    /// "ok" or "unchanged".
    pub result: &'static str,
    pub actions: Vec<String>,
    pub vids_added: Vec<BridgeVid>,
    /// The backend now holding the un-NAT exemption, if any.
    pub unnat_backend: Option<String>,
}

impl Done {
    pub fn nothing() -> Done {
        Done {
            result: "ok",
            actions: vec![],
            vids_added: vec![],
            unnat_backend: None,
        }
    }
}

/// Creates or reconciles `net`'s VLANs on `bridge` (the network's, as in
/// `hn`), then its un-NAT exemption; all or nothing.
pub fn up(
    net: &NetworkConfig,
    bridge: &str,
    hn: &HookNetwork,
    rt: &mut dyn Net,
    fw: &mut dyn Runner,
    rundir: &RunDir,
    log: &mut Log,
) -> Result<Done> {
    // Decide everything before changing anything.
    let exemptions = match &net.unnat {
        None => None,
        Some(u) => match firewall::exemptions(u, hn) {
            Ok(e) => Some((e, u.backend)),
            Err(why) => {
                log.warn(&format!("unnat: {why}"));
                None
            }
        },
    };
    let obs = rt.observe()?;
    let steps = plan::plan_up(net, bridge, &obs).map_err(Error::Refused)?;
    let mut actions = Vec::new();
    apply::apply(rt, &steps, |s| {
        log.info(&s.to_string());
        actions.push(s.to_string());
    })?;
    // Everything below that fails undoes the VLAN steps too.
    let applied: Vec<&Step> = steps.iter().collect();
    // firewalld would put the VLANs in its default zone. Asking it costs a
    // Python start-up: only when there is a VLAN to place.
    if !net.vlans.is_empty() && firewall::firewalld_running(fw) {
        for vlan in &net.vlans {
            let name = vlan.ifname(bridge);
            if let Err(cause) = firewall::firewalld_zone(net.zone(), &name, true, fw) {
                return Err(apply::undo(rt, &applied, cause));
            }
        }
    }
    let mut unnat_backend = None;
    if let Some((exs, choice)) = exemptions {
        match firewall::ensure(&net.name, &exs, choice, fw) {
            Ok(a) => {
                for line in &a.actions {
                    log.info(&format!("{line}; backend {} because {}", a.backend, a.why));
                }
                actions.extend(a.actions);
                unnat_backend = Some(a.backend.to_string());
            }
            Err(cause) => return Err(apply::undo(rt, &applied, cause)),
        }
    }
    if actions.is_empty() {
        log.info("nothing to do: everything is as configured");
    }
    let mut vids_added = recorded_vids(rundir.read(&net.name));
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
        result: if actions.is_empty() {
            "unchanged"
        } else {
            "ok"
        },
        actions,
        vids_added,
        unnat_backend,
    })
}

/// Deletes everything marked for `network` and its exemptions on every
/// backend, if the last bring-up installed one or `firewall` (the config
/// asks for one) says to look; runs every step, reports the first failure.
pub fn down(
    network: &str,
    rt: &mut dyn Net,
    fw: &mut dyn Runner,
    firewall: bool,
    rundir: &RunDir,
    log: &mut Log,
) -> Result<Done> {
    let last = rundir.read(network);
    let firewall = firewall || last.as_ref().is_some_and(|o| o.unnat_backend.is_some());
    let obs = rt.observe()?;
    let steps = plan::plan_down(network, &obs, &vid_pairs(recorded_vids(last)));
    let mut actions = Vec::new();
    let mut errors = apply::teardown(rt, &steps, |s| {
        log.info(&s.to_string());
        actions.push(s.to_string());
    });
    if firewall {
        let (done, errs) = firewall::remove(network, fw);
        for a in &done {
            log.info(a);
        }
        actions.extend(done);
        errors.extend(errs);
    }
    let result = if actions.is_empty() {
        "unchanged"
    } else {
        "ok"
    };
    match errors.into_iter().next() {
        None => Ok(Done {
            result,
            actions,
            vids_added: vec![],
            unnat_backend: None,
        }),
        Some(first) => Err(first),
    }
}

/// The VIDs the last bring-up added to filtering bridges.
pub fn added_vids(rundir: &RunDir, network: &str) -> Vec<(String, u16)> {
    vid_pairs(recorded_vids(rundir.read(network)))
}

fn vid_pairs(vids: Vec<BridgeVid>) -> Vec<(String, u16)> {
    vids.into_iter().map(|b| (b.bridge, b.vid)).collect()
}

/// The VIDs in a network's last outcome record, if a bring-up wrote it.
fn recorded_vids(last: Option<Outcome>) -> Vec<BridgeVid> {
    last.filter(|o| o.op == "started" || o.op == "apply")
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
            o.unnat_backend = done.unnat_backend.clone();
        }
        Err(e) => {
            o.result = match e {
                Error::Refused(_)
                | Error::Config(config::Error::Invalid(_) | config::Error::Insecure { .. })
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
    let note = obs.assume_bridge(bridge).then(|| {
        format!(
            "bridge {bridge} does not exist on this host; planned as if libvirt had just created it"
        )
    });
    (obs, note)
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

/// Prints what a dry run would do about the un-NAT exemption.
pub fn print_unnat(net: &NetworkConfig, hn: &HookNetwork, fw: &mut dyn Runner) {
    let Some(u) = &net.unnat else { return };
    match firewall::exemptions(u, hn) {
        Err(why) => println!("  unnat: nothing to do: {why}"),
        Ok(exs) => {
            let (backend, why) = firewall::detect_host(u.backend, fw);
            for e in exs {
                println!("  unnat: exempt {e} from masquerade with {backend} ({why})");
            }
        }
    }
}
