//! The crate's error: one variant per module that can fail, each rendering
//! as a single line that says what failed and what to do. How an error
//! maps to an exit status and to an outcome record is decided here, by
//! kind, in one place.

use crate::log::Event;
use crate::plan::Problem;
use crate::state::RunResult;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The config file: unreadable, insecure, or invalid.
    #[error(transparent)]
    Config(#[from] crate::config::Error),

    /// Bad hook input (argv or stdin); nothing was changed.
    #[error(transparent)]
    Input(#[from] crate::hookdata::Error),

    /// The plan was refused; nothing was changed.
    #[error("{}", join_problems(.0))]
    Refused(Vec<Problem>),

    /// Reading the host failed, before anything was changed.
    #[error(transparent)]
    Host(#[from] crate::exec::HostError),

    /// Applying or tearing down failed (a bring-up was rolled back).
    #[error(transparent)]
    Exec(#[from] crate::exec::Error),

    /// The run directory: lock, records.
    #[error(transparent)]
    State(#[from] crate::state::Error),

    /// A companion command could not run (libvirt, unknown network).
    #[error(transparent)]
    Command(#[from] crate::commands::Error),

    #[error(transparent)]
    Install(#[from] crate::install::Error),

    /// Several independent runs failed (teardown --all): each one's error.
    #[error("{}", join_errors(.0))]
    Several(Vec<Error>),

    /// The command line is wrong.
    #[error("{0}")]
    Usage(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<crate::netlink::Error> for Error {
    fn from(e: crate::netlink::Error) -> Self {
        Error::Host(e.into())
    }
}

impl From<crate::firewall::Error> for Error {
    fn from(e: crate::firewall::Error) -> Self {
        Error::Host(e.into())
    }
}

fn join_errors(errors: &[Error]) -> String {
    let parts: Vec<String> = errors.iter().map(ToString::to_string).collect();
    format!("{} failures: {}", errors.len(), parts.join("; "))
}

fn join_problems(problems: &[Problem]) -> String {
    let parts: Vec<String> = problems.iter().map(ToString::to_string).collect();
    format!("changed nothing: {}", parts.join("; "))
}

/// Exit status of a command that failed: 2 when it could not run at all
/// (usage, config, libvirt, refusing to install), 1 when it ran and failed.
pub fn exit_code(e: &Error) -> u8 {
    match e {
        Error::Usage(_)
        | Error::Config(_)
        | Error::Command(_)
        | Error::Install(crate::install::Error::Refused(_)) => 2,
        Error::Install(_)
        | Error::Input(_)
        | Error::Refused(_)
        | Error::Host(_)
        | Error::Exec(_)
        | Error::State(_)
        | Error::Several(_) => 1,
    }
}

/// How a failed run is recorded: refused when nothing was attempted
/// because of what the run was told or found, failed otherwise.
pub fn run_result(e: &Error) -> RunResult {
    match e {
        Error::Refused(_)
        | Error::Config(_)
        | Error::Input(_)
        | Error::State(crate::state::Error::Insecure { .. }) => RunResult::Refused,
        _ => RunResult::Failed,
    }
}

/// The journal event a failed run reports: refused (nothing attempted),
/// rolled back (a step failed, everything before it undone), or failed.
pub fn event(e: &Error) -> Event {
    match (run_result(e), e) {
        (RunResult::Refused, _) => Event::Refused,
        (
            _,
            Error::Exec(crate::exec::Error::Apply {
                index, undo_failed, ..
            }),
        ) if *index > 0 && undo_failed.is_empty() => Event::RolledBack,
        _ => Event::Failed,
    }
}
