//! net-hook's runtime directory (`/run/net-hook/`): the lock that serialises
//! hook runs, and the last outcome per network for `net-hook status`.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use crate::firewall::Backend;
use crate::plan::Step;

/// The run directory could not be used.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error(
        "locking {path}: another net-hook run held it for {secs} s; check for a stuck net-hook process"
    )]
    LockTimeout { path: String, secs: u64 },
}

impl Error {
    fn io(what: impl Into<String>, source: std::io::Error) -> Error {
        Error::Io {
            what: what.into(),
            source,
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;

pub const DEFAULT_RUN_DIR: &str = "/run/net-hook";

/// How long a hook waits for another run (another network autostarting).
/// Runs take milliseconds; this only bounds a stuck holder.
const LOCK_WAIT: Duration = Duration::from_secs(20);

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct BridgeVid {
    pub bridge: String,
    pub vid: u16,
}

/// What a run was: a hook op or a command.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum RunOp {
    Start,
    #[default]
    Started,
    Stopped,
    Apply,
    Teardown,
}

impl RunOp {
    pub fn name(self) -> &'static str {
        match self {
            RunOp::Start => "start",
            RunOp::Started => "started",
            RunOp::Stopped => "stopped",
            RunOp::Apply => "apply",
            RunOp::Teardown => "teardown",
        }
    }

    /// Whether the run brings a network up (and so records bridge VIDs).
    pub fn is_bring_up(self) -> bool {
        matches!(self, RunOp::Started | RunOp::Apply)
    }
}

impl std::fmt::Display for RunOp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum RunResult {
    #[default]
    Ok,
    Unchanged,
    /// Nothing was changed: a problem stopped the plan.
    Refused,
    /// A step failed (and a bring-up was rolled back).
    Failed,
}

impl std::fmt::Display for RunResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RunResult::Ok => "ok",
            RunResult::Unchanged => "unchanged",
            RunResult::Refused => "refused",
            RunResult::Failed => "failed",
        })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct Outcome {
    pub network: String,
    pub op: RunOp,
    /// Unix time, seconds.
    pub time: u64,
    pub result: RunResult,
    pub message: String,
    /// The steps the run carried out, in order (what a rollback undid is
    /// not among them).
    #[serde(default, deserialize_with = "lenient_steps")]
    pub actions: Vec<Step>,
    #[serde(default)]
    pub problems: Vec<String>,
    /// Interfaces holding addresses we wanted (the ordering trap).
    #[serde(default)]
    pub holders: Vec<String>,
    /// VIDs this network added to filtering bridges, to take back on stop.
    #[serde(default)]
    pub bridge_vids_added: Vec<BridgeVid>,
    /// The firewall backend holding this network's un-NAT exemption.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unnat_backend: Option<Backend>,
    /// The step that failed, for a failed run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_step: Option<Step>,
}

/// Records written before steps were recorded as data hold prose: skip
/// what is not a step rather than lose the whole record.
fn lenient_steps<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<Vec<Step>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Maybe {
        Step(Step),
        #[allow(dead_code)]
        Other(serde::de::IgnoredAny),
    }
    Ok(Vec::<Maybe>::deserialize(d)?
        .into_iter()
        .filter_map(|m| match m {
            Maybe::Step(s) => Some(s),
            Maybe::Other(_) => None,
        })
        .collect())
}

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

pub struct RunDir {
    pub path: PathBuf,
}

impl RunDir {
    pub fn new(path: &Path) -> RunDir {
        RunDir {
            path: path.to_path_buf(),
        }
    }

    fn ensure(&self, dir: &Path) -> Result<()> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(dir)
            .map_err(|e| Error::io(format!("creating {}", dir.display()), e))
    }

    /// Takes the global lock, waiting up to [`LOCK_WAIT`].
    pub fn lock(&self) -> Result<Flock<File>> {
        self.ensure(&self.path)?;
        let p = self.path.join("lock");
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&p)
            .map_err(|e| Error::io(format!("opening {}", p.display()), e))?;
        let start = Instant::now();
        loop {
            match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
                Ok(l) => return Ok(l),
                Err((f, nix::errno::Errno::EWOULDBLOCK)) if start.elapsed() < LOCK_WAIT => {
                    file = f;
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err((_, nix::errno::Errno::EWOULDBLOCK)) => {
                    return Err(Error::LockTimeout {
                        path: p.display().to_string(),
                        secs: LOCK_WAIT.as_secs(),
                    });
                }
                Err((_, e)) => {
                    return Err(Error::io(
                        format!("locking {}", p.display()),
                        std::io::Error::from(e),
                    ));
                }
            }
        }
    }

    fn record_path(&self, network: &str) -> PathBuf {
        self.path
            .join("networks")
            .join(format!("{}.toml", escape(network)))
    }

    pub fn read(&self, network: &str) -> Option<Outcome> {
        let text = fs::read_to_string(self.record_path(network)).ok()?;
        toml::from_str(&text).ok()
    }

    /// Every network's last outcome.
    pub fn list(&self) -> Vec<Outcome> {
        let Ok(rd) = fs::read_dir(self.path.join("networks")) else {
            return vec![];
        };
        let mut out: Vec<Outcome> = rd
            .flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == "toml"))
            .filter_map(|e| toml::from_str(&fs::read_to_string(e.path()).ok()?).ok())
            .collect();
        out.sort_by(|a, b| a.network.cmp(&b.network));
        out
    }

    /// Replaces the network's record atomically (write + rename).
    pub fn write(&self, o: &Outcome) -> Result<()> {
        let path = self.record_path(&o.network);
        let dir = path.parent().unwrap_or(&self.path);
        self.ensure(dir)?;
        let text = toml::to_string(o)
            .map_err(|e| Error::io("encoding the outcome record", std::io::Error::other(e)))?;
        let tmp = dir.join(format!(".{}.{}", escape(&o.network), std::process::id()));
        let res = File::create(&tmp)
            .and_then(|mut f| f.write_all(text.as_bytes()))
            .and_then(|_| fs::rename(&tmp, &path));
        if res.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        res.map_err(|e| Error::io(format!("writing {}", path.display()), e))
    }

    /// [`write`](Self::write), reporting a failure on stderr: a run's
    /// outcome is worth keeping, but not worth failing the run over.
    pub fn record(&self, o: &Outcome) {
        if let Err(e) = self.write(o) {
            eprintln!("net-hook: {}: could not record the outcome: {e}", o.network);
        }
    }
}

/// A file name for any network name: percent-encodes all but [A-Za-z0-9_-]
/// (and '.' after the first byte, so no hidden or `..` names).
pub fn escape(name: &str) -> String {
    let mut s = String::with_capacity(name.len());
    for (i, b) in name.bytes().enumerate() {
        if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || (b == b'.' && i > 0) {
            s.push(b as char);
        } else {
            s.push_str(&format!("%{b:02X}"));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_is_safe_and_injective_enough() {
        assert_eq!(escape("1_provider"), "1_provider");
        assert_eq!(escape("provider vip"), "provider%20vip");
        assert_eq!(escape(".."), "%2E.");
        assert_eq!(escape("a/b"), "a%2Fb");
        assert_ne!(escape("a b"), escape("a%20b"));
    }

    #[test]
    fn records_round_trip_and_lock_is_exclusive() {
        let dir = tempfile::tempdir().unwrap();
        let rd = RunDir::new(dir.path());
        assert_eq!(rd.read("n"), None);
        let o = Outcome {
            network: "provider vip".into(),
            op: RunOp::Started,
            time: 5,
            result: RunResult::Refused,
            actions: vec![Step::AddAddr {
                name: "virbr1.104".into(),
                addr: "10.12.8.1/22".parse().unwrap(),
            }],
            message: "m".into(),
            holders: vec!["virbr2".into()],
            bridge_vids_added: vec![BridgeVid {
                bridge: "virbr1".into(),
                vid: 104,
            }],
            ..Outcome::default()
        };
        rd.write(&o).unwrap();
        assert_eq!(rd.read("provider vip"), Some(o.clone()));
        // Scalars stay top-level lines (scenarios grep them), steps are tables.
        let text = toml::to_string(&Outcome {
            unnat_backend: Some(Backend::Nftables),
            ..o
        })
        .unwrap();
        assert!(text.contains("\nunnat_backend = \"nftables\"\n"), "{text}");
        assert!(text.contains("[[actions]]\nstep = \"add_addr\""), "{text}");
        // A record from before steps were data keeps everything else.
        let old = "network = \"n\"\nop = \"started\"\ntime = 1\nresult = \"ok\"\nmessage = \"m\"\nactions = [\"create virbr1.104\"]\n[[bridge_vids_added]]\nbridge = \"virbr1\"\nvid = 104\n";
        fs::create_dir_all(dir.path().join("networks")).unwrap();
        fs::write(dir.path().join("networks/n.toml"), old).unwrap();
        let o = rd.read("n").unwrap();
        assert!(o.actions.is_empty());
        assert_eq!(o.bridge_vids_added.len(), 1);
        let held = rd.lock().unwrap();
        let f = File::open(dir.path().join("lock")).unwrap();
        assert!(Flock::lock(f, FlockArg::LockExclusiveNonblock).is_err());
        drop(held);
        let f = File::open(dir.path().join("lock")).unwrap();
        assert!(Flock::lock(f, FlockArg::LockExclusiveNonblock).is_ok());
    }
}
