//! Doing: one executor for every kind of step (netlink, iptables, nftables,
//! firewalld) with one undo journal. A bring-up is all or nothing: when a
//! step fails, every step before it is undone, newest first. A teardown
//! runs every step and gathers every failure.

use std::path::PathBuf;

use crate::firewall::{self, Runner, firewalld};
use crate::model::Observed;
use crate::netlink::{self, Rtnl};
use crate::plan::{Driver, Step};

/// Why one step (or reading the host) failed.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error(transparent)]
    Netlink(#[from] netlink::Error),
    #[error(transparent)]
    Firewall(#[from] firewall::Error),
    #[error(transparent)]
    Sysctl(#[from] crate::sysctl::Error),
}

impl HostError {
    /// Whether the step may have been carried out although it failed (its
    /// answer was lost): a rollback must undo it too.
    pub fn outcome_unknown(&self) -> bool {
        matches!(self, HostError::Netlink(e) if e.lost)
    }
}

/// A step that failed, and why.
#[derive(Debug)]
pub struct Failure {
    pub step: Step,
    pub cause: HostError,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A bring-up failed at step `index` (0-based) of `total`; the steps
    /// before it were undone, except `undo_failed`.
    #[error("{}", apply_text(*.index, *.total, .cause, .undo_failed))]
    Apply {
        index: usize,
        total: usize,
        step: Box<Step>,
        cause: Box<HostError>,
        /// The undo steps that failed: fix these by hand.
        undo_failed: Vec<String>,
    },
    /// A teardown ran every step; these failed.
    #[error("{}", teardown_text(.0))]
    Teardown(Vec<Failure>),
}

fn apply_text(index: usize, total: usize, cause: &HostError, undo_failed: &[String]) -> String {
    let rollback = if !undo_failed.is_empty() {
        format!(
            "; rollback incomplete, fix by hand: {}",
            undo_failed.join("; ")
        )
    } else if cause.outcome_unknown() {
        format!("; rolled back the {index} change(s) before it and the step itself")
    } else if index == 0 {
        "; nothing had been changed".to_string()
    } else {
        format!("; rolled back the {index} change(s) before it")
    };
    format!("step {} of {total} failed: {cause}{rollback}", index + 1)
}

fn teardown_text(failures: &[Failure]) -> String {
    let parts: Vec<String> = failures.iter().map(|f| f.cause.to_string()).collect();
    format!(
        "{} step(s) could not be done: {}",
        failures.len(),
        parts.join("; ")
    )
}

/// What a run reads of the host besides links and addresses.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    pub firewall: Option<firewall::Read>,
    /// Interfaces whose firewalld zone matters (when firewalld runs).
    pub zones: Vec<String>,
    /// Host routes and neighbour entries (routed interfaces).
    pub routes: bool,
    /// sysctl keys to read (paths under /proc/sys).
    pub sysctls: Vec<String>,
}

/// The host as the executor sees it. [`System`] is the real one; unit
/// tests use a model of it.
pub trait Host {
    fn observe(&mut self, scope: &Scope) -> Result<Observed, HostError>;
    fn run(&mut self, step: &Step) -> Result<(), HostError>;
}

/// The real host: netlink for links, firewall programs through a runner.
pub struct System {
    netlink: Rtnl,
    runner: Box<dyn Runner>,
    network_conf: PathBuf,
}

impl System {
    pub fn open() -> Result<System, HostError> {
        Ok(System {
            netlink: Rtnl::open()?,
            runner: Box::new(firewall::Sys),
            network_conf: PathBuf::from(firewall::NETWORK_CONF),
        })
    }
}

impl Host for System {
    fn observe(&mut self, scope: &Scope) -> Result<Observed, HostError> {
        let mut obs = self.netlink.observe()?;
        if scope.routes {
            self.netlink.observe_routes(&mut obs)?;
        }
        for key in &scope.sysctls {
            if let Some(v) = crate::sysctl::read(key) {
                obs.sysctls.insert(key.clone(), v);
            }
        }
        if let Some(read) = scope.firewall {
            let conf = std::fs::read_to_string(&self.network_conf).ok();
            obs.firewall = Some(firewall::observe(read, conf, self.runner.as_mut())?);
        }
        obs.zones = firewalld::observe(&scope.zones, self.runner.as_mut())?;
        Ok(obs)
    }

    fn run(&mut self, step: &Step) -> Result<(), HostError> {
        match step.driver() {
            Driver::Netlink => Ok(self.netlink.run(step)?),
            Driver::Sysctl => match step {
                Step::SetSysctl { key, value, .. } => Ok(crate::sysctl::write(key, value)?),
                _ => Ok(()),
            },
            _ => Ok(firewall::run(step, self.runner.as_mut())?),
        }
    }
}

/// Runs `steps` in order. On the first failure, undoes what this call did,
/// newest first, and returns the failure with anything the rollback could
/// not undo. `done` receives each step as it succeeds (for logging).
pub fn apply(
    host: &mut dyn Host,
    steps: &[Step],
    mut done: impl FnMut(&Step),
) -> Result<(), Error> {
    let mut journal: Vec<&Step> = Vec::new();
    for (index, step) in steps.iter().enumerate() {
        match host.run(step) {
            Ok(()) => {
                done(step);
                journal.push(step);
            }
            Err(cause) => {
                if cause.outcome_unknown() {
                    // Every undo tolerates "already so", so undoing a step
                    // that did not happen is harmless.
                    journal.push(step);
                }
                return Err(Error::Apply {
                    index,
                    total: steps.len(),
                    step: Box::new(step.clone()),
                    cause: Box::new(cause),
                    undo_failed: rollback(host, &journal),
                });
            }
        }
    }
    Ok(())
}

/// Undoes `journal` in reverse. Changes to a link this run created are
/// skipped: deleting the link undoes them all at once.
fn rollback(host: &mut dyn Host, journal: &[&Step]) -> Vec<String> {
    let created: Vec<&str> = journal.iter().filter_map(|s| s.created_link()).collect();
    let mut failed = Vec::new();
    for step in journal.iter().rev() {
        if step.on_link().is_some_and(|l| created.contains(&l)) {
            continue;
        }
        match step.undo() {
            Some(undo) => {
                if let Err(e) = host.run(&undo) {
                    failed.push(format!("{undo}: {e}"));
                }
            }
            None => failed.push(format!("{step}: cannot be undone")),
        }
    }
    failed
}

/// Runs every step even when some fail, and returns every failure: a
/// teardown removes as much as it can.
pub fn teardown(
    host: &mut dyn Host,
    steps: &[Step],
    mut done: impl FnMut(&Step),
) -> Result<(), Error> {
    let mut failures = Vec::new();
    for step in steps {
        match host.run(step) {
            Ok(()) => done(step),
            Err(cause) => failures.push(Failure {
                step: step.clone(),
                cause,
            }),
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(Error::Teardown(failures))
    }
}

#[cfg(test)]
pub(crate) mod model;
#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;
