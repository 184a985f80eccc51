//! net-hook's runtime directory (`/run/net-hook/`): the lock that serialises
//! hook runs, and the last outcome per network for `net-hook status`.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

pub const DEFAULT_RUN_DIR: &str = "/run/net-hook";

/// How long a hook waits for another run (another network autostarting).
/// Runs take milliseconds; this only bounds a stuck holder.
const LOCK_WAIT: Duration = Duration::from_secs(20);

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct BridgeVid {
    pub bridge: String,
    pub vid: u16,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct Outcome {
    pub network: String,
    /// The hook op: start, started, stopped.
    pub op: String,
    /// Unix time, seconds.
    pub time: u64,
    /// "ok", "unchanged", "refused" (nothing changed) or "failed".
    pub result: String,
    pub message: String,
    #[serde(default)]
    pub actions: Vec<String>,
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
    pub unnat_backend: Option<String>,
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
                Err((_, e)) => {
                    let why = if e == nix::errno::Errno::EWOULDBLOCK {
                        format!(
                            "another net-hook run held it for {} s; check for a stuck net-hook process",
                            LOCK_WAIT.as_secs()
                        )
                    } else {
                        e.desc().to_string()
                    };
                    return Err(Error::io(
                        format!("locking {}", p.display()),
                        std::io::Error::other(why),
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
            op: "started".into(),
            time: 5,
            result: "refused".into(),
            message: "m".into(),
            holders: vec!["virbr2".into()],
            bridge_vids_added: vec![BridgeVid {
                bridge: "virbr1".into(),
                vid: 104,
            }],
            ..Outcome::default()
        };
        rd.write(&o).unwrap();
        assert_eq!(rd.read("provider vip"), Some(o));
        let held = rd.lock().unwrap();
        let f = File::open(dir.path().join("lock")).unwrap();
        assert!(Flock::lock(f, FlockArg::LockExclusiveNonblock).is_err());
        drop(held);
        let f = File::open(dir.path().join("lock")).unwrap();
        assert!(Flock::lock(f, FlockArg::LockExclusiveNonblock).is_ok());
    }
}
