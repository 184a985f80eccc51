//! Bring-up and teardown of one network, shared by the hook (`started` /
//! `stopped`) and the commands (`apply`, `teardown`, `reconcile`): observe
//! once, plan, apply through the executor. Callers hold the run-dir lock.

use crate::config::NetworkConfig;
use crate::error::{Error, Result, run_result};
use crate::exec::{self, Host, Scope};
use crate::firewall::{Backend, Read};
use crate::hookdata::HookNetwork;
use crate::log::{Event, Level, Log};
use crate::model::Observed;
use crate::plan::{self, Plan, Problem, Step};
use crate::state::{BridgeVid, Outcome, RunDir, RunOp, RunResult, now};

/// What a successful run did.
#[derive(Debug, Default)]
pub struct Done {
    pub result: RunResult,
    pub actions: Vec<Step>,
    pub vids_added: Vec<BridgeVid>,
    /// The backend now holding the un-NAT exemption, if any.
    pub unnat_backend: Option<Backend>,
}

impl Done {
    /// A run that carried out `actions`: unchanged when there were none.
    pub fn of(actions: Vec<Step>) -> Done {
        Done {
            result: if actions.is_empty() {
                RunResult::Unchanged
            } else {
                RunResult::Ok
            },
            actions,
            ..Done::default()
        }
    }
}

/// What a bring-up of `net` on `bridge` reads of the host: the firewall
/// only for an exemption, zones only for VLANs (asking firewalld costs a
/// Python start-up).
pub fn up_scope(net: &NetworkConfig, bridge: &str) -> Scope {
    Scope {
        firewall: net.unnat.as_ref().map(|u| Read::Chosen(u.backend)),
        zones: net.vlans.iter().map(|v| v.ifname(bridge)).collect(),
        ..Scope::default()
    }
}

/// What a teardown reads: both backends when an exemption may exist.
pub fn down_scope(firewall: bool) -> Scope {
    Scope {
        firewall: firewall.then_some(Read::Both),
        zones: vec![],
        ..Scope::default()
    }
}

/// The plan of a bring-up, from what `obs` shows.
pub fn plan_up(
    net: &NetworkConfig,
    bridge: &str,
    hn: &HookNetwork,
    obs: &Observed,
) -> Result<Plan> {
    plan::plan_up(net, bridge, hn, obs).map_err(Error::Refused)
}

/// Creates or reconciles `net`'s VLANs on `bridge`, their zones and its
/// un-NAT exemption; all or nothing.
pub fn up(
    net: &NetworkConfig,
    bridge: &str,
    hn: &HookNetwork,
    host: &mut dyn Host,
    rundir: &RunDir,
    log: &mut Log,
) -> Result<Done> {
    let obs = host.observe(&up_scope(net, bridge))?;
    let plan = plan_up(net, bridge, hn, &obs)?;
    for w in &plan.warnings {
        log.warn(w);
    }
    for n in &plan.notes {
        log.info(n);
    }
    let created: Vec<&str> = plan.steps.iter().filter_map(Step::created_link).collect();
    let mut actions = Vec::new();
    exec::apply(host, &plan.steps, |s| {
        match s {
            Step::CreateVlan { .. } => log.event(Event::Created, Level::Info, &s.to_string()),
            // Marking a VLAN this run did not create is adopting it.
            Step::SetAlias { name, .. } if !created.contains(&name.as_str()) => {
                log.event(Event::Adopted, Level::Info, &format!("adopt {name}: {s}"))
            }
            _ => log.info(&s.to_string()),
        }
        actions.push(s.clone());
    })?;
    if actions.is_empty() {
        log.event(
            Event::Unchanged,
            Level::Info,
            "nothing to do: everything is as configured",
        );
    }
    let mut vids_added = recorded_vids(rundir.read(&net.name));
    for s in &actions {
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
        vids_added,
        unnat_backend: plan.backend,
        ..Done::of(actions)
    })
}

/// Whether a teardown of `network` must look at the firewall: the config
/// asks for an exemption (`configured`), or the last bring-up installed one.
pub fn down_reads_firewall(configured: bool, last: Option<&Outcome>) -> bool {
    configured || last.is_some_and(|o| o.unnat_backend.is_some())
}

/// The plan of a teardown, from what `obs` shows.
pub fn plan_down(network: &str, obs: &Observed, rundir: &RunDir) -> Plan {
    plan::plan_down(
        network,
        obs,
        &vid_pairs(recorded_vids(rundir.read(network))),
    )
}

/// Deletes everything marked for `network` and its exemptions on every
/// backend; runs every step and reports every failure.
pub fn down(
    network: &str,
    host: &mut dyn Host,
    firewall: bool,
    rundir: &RunDir,
    log: &mut Log,
) -> Result<Done> {
    let firewall = down_reads_firewall(firewall, rundir.read(network).as_ref());
    let obs = host.observe(&down_scope(firewall))?;
    let plan = plan_down(network, &obs, rundir);
    let mut actions = Vec::new();
    exec::teardown(host, &plan.steps, |s| {
        match s {
            Step::DeleteLink { .. } => log.event(Event::Removed, Level::Info, &s.to_string()),
            _ => log.info(&s.to_string()),
        }
        actions.push(s.clone());
    })?;
    if actions.is_empty() {
        log.event(
            Event::Unchanged,
            Level::Info,
            "nothing to do: nothing of this network's is left",
        );
    }
    Ok(Done::of(actions))
}

fn vid_pairs(vids: Vec<BridgeVid>) -> Vec<(String, u16)> {
    vids.into_iter().map(|b| (b.bridge, b.vid)).collect()
}

/// The VIDs in a network's last outcome record, if a bring-up wrote it.
fn recorded_vids(last: Option<Outcome>) -> Vec<BridgeVid> {
    last.filter(|o| o.op.is_bring_up())
        .map(|o| o.bridge_vids_added)
        .unwrap_or_default()
}

/// The outcome record of a run.
pub fn outcome(network: &str, op: RunOp, res: &Result<Done>) -> Outcome {
    let mut o = Outcome {
        network: network.to_string(),
        op,
        time: now(),
        ..Outcome::default()
    };
    match res {
        Ok(done) => {
            o.result = done.result;
            o.message = match (done.result, done.actions.len()) {
                (RunResult::Unchanged, _) => "nothing to do".to_string(),
                (_, 0) => "ok".to_string(),
                (_, n) => format!("{n} change(s)"),
            };
            o.actions = done.actions.clone();
            o.bridge_vids_added = done.vids_added.clone();
            o.unnat_backend = done.unnat_backend;
        }
        Err(e) => {
            o.result = run_result(e);
            match e {
                Error::Refused(problems) => {
                    o.problems = problems.iter().map(ToString::to_string).collect();
                    o.holders = problems
                        .iter()
                        .filter_map(|p| match p {
                            Problem::Conflict { holder, .. } => Some(holder.clone()),
                            _ => None,
                        })
                        .collect();
                }
                Error::Exec(exec::Error::Apply { step, .. }) => {
                    o.failed_step = Some((**step).clone());
                }
                _ => {}
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

/// Prints a dry run's plan (or its problems) to stdout: the changes, not
/// the desired state.
pub fn print_plan(
    network: &str,
    what: &str,
    header: &str,
    note: Option<String>,
    planned: &std::result::Result<Plan, Vec<Problem>>,
) {
    println!("network {network:?}, {what} ({header}): dry run, nothing changed");
    if let Some(n) = note {
        println!("  note: {n}");
    }
    match planned {
        Ok(plan) => {
            for w in &plan.warnings {
                println!("  warning: {w}");
            }
            for n in &plan.notes {
                println!("  note: {n}");
            }
            if plan.steps.is_empty() {
                println!("  nothing to do");
            }
            for (i, s) in plan.steps.iter().enumerate() {
                println!("  {:>2}. {s}", i + 1);
            }
        }
        Err(problems) => print_problems(network, what, problems),
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

/// "strict" or "fail-soft", for dry-run headers.
pub fn mode(net: &NetworkConfig) -> &'static str {
    if net.strict { "strict" } else { "fail-soft" }
}
