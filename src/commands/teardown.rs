//! `net-hook teardown NETWORK|--all`: what the hook does on `stopped`.
//! Removes only what carries net-hook's mark; needs no libvirt.

use std::path::Path;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::exec::{self, Host, System};
use crate::log::Log;
use crate::ops;
use crate::plan::{self, Step};
use crate::state::{RunDir, RunOp};

pub fn run(config: &Path, run_dir: &Path, network: &str, dry_run: bool) -> Result<Vec<String>> {
    // The config may be gone (package removal): the run dir still knows.
    let cfg = super::load_config(config).ok();
    let steps = one(run_dir, cfg.as_ref(), network, dry_run, false)?;
    Ok(steps.iter().map(ToString::to_string).collect())
}

/// `teardown --all`: every network that has marked links or an outcome
/// record, then whatever net-hook rules and tables are left. Runs
/// everything; reports every step that failed.
pub fn run_all(run_dir: &Path, dry_run: bool) -> Result<Vec<String>> {
    let mut host = System::open()?;
    // The owners are in the links' marks: no firewall read needed here.
    let obs = host.observe(&Default::default())?;
    let mut names: Vec<String> = obs
        .owners()
        .into_iter()
        .chain(RunDir::new(run_dir).list().into_iter().map(|o| o.network))
        .collect();
    names.sort();
    names.dedup();
    let mut lines = Vec::new();
    let mut errors = Vec::new();
    for n in &names {
        match one(run_dir, None, n, dry_run, true) {
            Ok(steps) => lines.extend(steps.iter().map(|s| format!("{n}: {s}"))),
            Err(e) => errors.push(e),
        }
    }
    // Rules and tables of networks that left no link or record behind;
    // routed interfaces' gateways, pre-created taps and recorded routes.
    let mut scope = ops::down_scope(true);
    scope.routes = true;
    let obs = host.observe(&scope)?;
    let mut steps = super::routed::plan_remove_all(&obs, run_dir);
    steps.extend(plan::plan_remove_all_firewall(&obs));
    if dry_run {
        print_dry("--all", &steps);
    } else if let Err(e) = exec::teardown(&mut host, &steps, |s| lines.push(s.to_string())) {
        errors.push(e.into());
    }
    match errors.len() {
        0 => Ok(lines),
        1 => Err(errors.remove(0)),
        _ => Err(Error::Several(errors)),
    }
}

/// Tears `network` down; `cfg` (the config, if it could be read) tells
/// whether to look at the firewall, unless `force_firewall` already says so.
pub(crate) fn one(
    run_dir: &Path,
    cfg: Option<&Config>,
    network: &str,
    dry_run: bool,
    force_firewall: bool,
) -> Result<Vec<Step>> {
    let mut host = System::open()?;
    let rundir = RunDir::new(run_dir);
    let configured = force_firewall
        || cfg
            .and_then(|c| c.networks.get(network))
            .is_some_and(|n| n.unnat.is_some());
    if dry_run {
        let fw = ops::down_reads_firewall(configured, rundir.read(network).as_ref());
        let obs = host.observe(&ops::down_scope(fw))?;
        print_dry(network, &ops::plan_down(network, &obs, &rundir).steps);
        return Ok(vec![]);
    }
    let _lock = rundir.lock()?;
    let mut log = Log::system_only(network, "teardown");
    let res = ops::down(network, &mut host, configured, &rundir, &mut log);
    rundir.record(&ops::outcome(network, RunOp::Teardown, &res));
    res.map(|d| d.actions)
}

fn print_dry(network: &str, steps: &[Step]) {
    println!("network {network:?}, teardown: dry run, nothing changed");
    if steps.is_empty() {
        println!("  nothing to do");
    }
    for (i, s) in steps.iter().enumerate() {
        println!("  {:>2}. {s}", i + 1);
    }
}
