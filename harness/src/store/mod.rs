//! The store: one directory per run, `store/<test>/<timestamp>/`, holding the history,
//! results, report and logs; `store/latest` points at the newest run. The [`recorder`]
//! appends a run's history to its directory as the run goes.

use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use checkers::text::for_terminal;
use checkers::{read_history, Date, History, Results};
use reports::RunMeta;

pub mod index;
pub mod recorder;

/// The history, one op per line (docs/history.md).
pub const HISTORY: &str = "history.jsonl";
/// The checkers' results, as JSON.
pub const RESULTS: &str = "results.json";
/// How the run was made (design, faults, seed, parameters), as JSON.
pub const META: &str = "meta.json";
/// The HTML report.
pub const REPORT: &str = "report.html";
/// The harness's own log of the run.
pub const RUN_LOG: &str = "run.log";
/// The store's index page, at its root.
pub const INDEX: &str = "index.html";
/// The link to the newest run, at the store's root.
pub const LATEST: &str = "latest";
/// A matrix's cells and verdicts.
pub const MATRIX: &str = "matrix.json";

/// A run's directory in the store.
#[derive(Debug, Clone)]
pub struct RunDir {
    /// `store/<test>/<timestamp>`.
    pub path: PathBuf,
    /// The store root.
    pub root: PathBuf,
    /// `<test>`: design and faults, e.g. `lock-only-db-latency`.
    pub test: String,
    /// `<timestamp>`: UTC start time, sortable.
    pub stamp: String,
}

impl RunDir {
    /// Creates a fresh run directory under `root` for `test`. Two runs started in the same
    /// millisecond (a parallel matrix) get distinct directories: creation is exclusive.
    /// The directory is 0700 (its logs and errors may name the servers and the service),
    /// 0755 when `share` (`--share`); the files written into it follow its mode
    /// ([`write_file`], [`create_file`]).
    pub fn create(root: &Path, test: &str, share: bool) -> io::Result<RunDir> {
        use std::os::unix::fs::DirBuilderExt;
        let mode = if share { 0o755 } else { 0o700 };
        let test = sanitize(test);
        let base = utc_stamp(SystemTime::now());
        for attempt in 0..1000 {
            let stamp = if attempt == 0 {
                base.clone()
            } else {
                format!("{base}-{attempt}")
            };
            let path = root.join(&test).join(&stamp);
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(mode)
                .create(path.parent().expect("joined path has a parent"))?;
            match std::fs::DirBuilder::new().mode(mode).create(&path) {
                Ok(()) => {
                    return Ok(RunDir {
                        path,
                        root: root.to_path_buf(),
                        test,
                        stamp,
                    })
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
        Err(io::Error::other(format!(
            "cannot find a free run directory under {}",
            root.display()
        )))
    }

    /// A file inside the run directory.
    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Points `store/latest` at this run. The link is relative, so the store can be moved
    /// or uploaded as a CI artifact, and replaced atomically (rename over the old link).
    /// On failure (e.g. `latest` is a directory after an artifact download dereferenced
    /// the link) nothing is left behind and the error names the path.
    pub fn mark_latest(&self) -> Result<(), StoreError> {
        let target = Path::new(&self.test).join(&self.stamp);
        let tmp = self.root.join(format!(".latest-{}", std::process::id()));
        let latest = self.root.join(LATEST);
        let _ = std::fs::remove_file(&tmp);
        #[cfg(unix)]
        std::os::unix::fs::symlink(&target, &tmp).map_err(|e| StoreError::at(&tmp, e))?;
        std::fs::rename(&tmp, &latest).map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            StoreError::at(&latest, e)
        })
    }
}

/// A store operation that failed, naming the path it failed on.
#[derive(Debug, thiserror::Error)]
#[error("{}: {source}", path.display())]
pub struct StoreError {
    /// The file or directory.
    pub path: PathBuf,
    /// The OS error.
    #[source]
    pub source: io::Error,
}

impl StoreError {
    /// `source`, on `path`.
    pub fn at(path: &Path, source: io::Error) -> StoreError {
        StoreError {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// The mode of a file written into `dir`: 0600, plus read for group and others where
/// the directory grants it (a `--share`d run directory is 0755, so its files are 0644).
fn file_mode(dir: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    let dir_mode = std::fs::metadata(dir).map_or(0, |m| m.permissions().mode());
    0o600 | (dir_mode & 0o044)
}

/// Writes `bytes` to `path` whole or not at all, never through a link: into a new file
/// of an unpredictable name in the same directory (created exclusively, so a planted
/// link or file there fails the write instead of redirecting it), then renamed over
/// `path` (a rename replaces a link at `path`, it does not follow it). A reader sees
/// the old file or the new one, never a truncated one (a full disk leaves the old).
pub fn write_file(path: impl AsRef<Path>, bytes: impl AsRef<[u8]>) -> Result<(), StoreError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let (path, bytes) = (path.as_ref(), bytes.as_ref());
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .map_or_else(|| "file".into(), |n| n.to_string_lossy().into_owned());
    let tmp = dir.join(format!(".{name}.{:016x}.tmp", rand::random::<u64>()));
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(libc::O_NOFOLLOW)
        .mode(file_mode(dir))
        .open(&tmp)
        .and_then(|mut f| {
            f.write_all(bytes)?;
            f.sync_all()
        });
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(StoreError::at(path, e));
    }
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        StoreError::at(path, e)
    })
}

/// Creates `path` for writing as it grows (a history, a log): exclusively and without
/// following a link (`O_NOFOLLOW`), with `append` reopening an existing file (a restarted
/// service's log) still refusing a link. Its mode follows the directory's ([`RunDir::create`]).
pub fn create_file(path: &Path, append: bool) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut o = std::fs::OpenOptions::new();
    if append {
        o.append(true).create(true);
    } else {
        o.write(true).create_new(true);
    }
    o.custom_flags(libc::O_NOFOLLOW)
        .mode(file_mode(dir))
        .open(path)
}

/// Reports a failure of the store's bookkeeping (`latest`, `index.html`) as a warning:
/// the run's own files are written and its verdict stands.
pub fn warn(e: &StoreError) {
    tracing::warn!("store: {e}");
    eprintln!("overbook: warning: store bookkeeping failed, the run's files are kept: {e}");
}

/// Whether `a` and `b` name the same file, compared canonically: through links, `..`
/// and hard links (same device and inode); `b` need not exist yet. Used to refuse
/// writing an output over an input.
pub fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    if let (Ok(ma), Ok(mb)) = (std::fs::metadata(a), std::fs::metadata(b)) {
        return ma.dev() == mb.dev() && ma.ino() == mb.ino();
    }
    let canonical = |p: &Path| -> Option<PathBuf> {
        if let Ok(c) = std::fs::canonicalize(p) {
            return Some(c);
        }
        let parent = match p.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        Some(std::fs::canonicalize(parent).ok()?.join(p.file_name()?))
    };
    matches!((canonical(a), canonical(b)), (Some(x), Some(y)) if x == y)
}

/// Keeps a test name safe as one path component.
/// Reads a history file (`-` for stdin), naming the file in any error.
pub fn load_history(path: &Path) -> anyhow::Result<History> {
    let name = path.display().to_string();
    let read = |r: &mut dyn BufRead| read_history(r);
    let res = if name == "-" {
        read(&mut io::stdin().lock())
    } else {
        let file = File::open(path).with_context(|| format!("cannot open history {name}"))?;
        read(&mut BufReader::with_capacity(1 << 20, file))
    };
    // A read error quotes the offending value: made safe for a terminal here.
    res.map_err(|e| anyhow::anyhow!("{}", for_terminal(&e.to_string())))
        .with_context(|| format!("unusable history {}", for_terminal(&name)))
}

/// A run directory's metadata; the defaults when it has none (a foreign history).
pub fn read_meta(dir: &Path) -> anyhow::Result<RunMeta> {
    let path = dir.join(META);
    match std::fs::read(&path) {
        Ok(bytes) => {
            serde_json::from_slice(&bytes).with_context(|| format!("unusable {}", path.display()))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(RunMeta::default()),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// Renders and writes the HTML report of a history and its results.
pub fn write_report(
    path: &Path,
    history: &History,
    results: &Results,
    meta: &RunMeta,
) -> anyhow::Result<()> {
    write_file(path, reports::render_run(history, results, meta).as_bytes())
        .with_context(|| format!("cannot write report {}", path.display()))
}

fn sanitize(test: &str) -> String {
    test.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '+' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// `20261123T111623.123Z`: UTC, millisecond resolution, sorts as it reads.
pub fn utc_stamp(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (y, m, day) = Date((secs / 86_400) as i32).ymd();
    let rem = secs % 86_400;
    format!(
        "{y:04}{m:02}{day:02}T{:02}{:02}{:02}.{:03}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        d.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn stamps_sort_as_time_and_read_as_utc() {
        let t = UNIX_EPOCH + Duration::from_millis(1_795_000_000_123);
        assert_eq!(utc_stamp(t), "20261118T110640.123Z");
    }

    #[test]
    fn concurrent_runs_get_distinct_dirs_and_latest_follows_the_newest() {
        let root = std::env::temp_dir().join(format!("overbook-store-{}", std::process::id()));
        let a = RunDir::create(&root, "lock-only-db latency", false).unwrap();
        let b = RunDir::create(&root, "lock-only-db latency", false).unwrap();
        assert_ne!(a.path, b.path);
        assert_eq!(a.test, "lock-only-db_latency");
        a.mark_latest().unwrap();
        b.mark_latest().unwrap();
        assert_eq!(
            std::fs::canonicalize(root.join("latest")).unwrap(),
            std::fs::canonicalize(&b.path).unwrap()
        );
        std::fs::remove_dir_all(&root).unwrap();
    }

    /// Issue 23.5: `overbook report DIR` followed a symlinked `report.html` and overwrote
    /// its target; a full disk left a truncated file in place of the old one.
    #[test]
    fn writes_replace_a_link_instead_of_following_it() {
        use std::os::unix::fs::PermissionsExt;
        let root = std::env::temp_dir().join(format!("overbook-nofollow-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let dir = RunDir::create(&root, "t", false).unwrap();
        let victim = root.join("victim");
        std::fs::write(&victim, "precious").unwrap();
        let report = dir.file(REPORT);
        std::os::unix::fs::symlink(&victim, &report).unwrap();
        write_file(&report, b"<html>").unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        assert_eq!(std::fs::read_to_string(&report).unwrap(), "<html>");
        assert!(!std::fs::symlink_metadata(&report).unwrap().is_symlink());
        // Private by default: the directory 0700, its files 0600.
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir.path), 0o700);
        assert_eq!(mode(&report), 0o600);
        // A growing file refuses a planted link too.
        let log = dir.file(RUN_LOG);
        std::os::unix::fs::symlink(&victim, &log).unwrap();
        assert!(create_file(&log, false).is_err());
        assert!(create_file(&log, true).is_err());
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        // No temporary file is left behind.
        let left: Vec<_> = std::fs::read_dir(&dir.path)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(left.is_empty());
        // --share: 0755 and 0644.
        let shared = RunDir::create(&root.join("shared"), "t", true).unwrap();
        let f = shared.file(RESULTS);
        write_file(&f, b"{}").unwrap();
        assert_eq!(mode(&shared.path), 0o755);
        assert_eq!(mode(&f), 0o644);
        std::fs::remove_dir_all(&root).unwrap();
    }
}
