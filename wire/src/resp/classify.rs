//! What a command does to a lease: acquire, renew, release, from the command itself or
//! from the scripts seen (EVALSHA resolved by SHA1).

use super::*;

/// What a command does to a lease, the unit aimed faults select on.
///
/// Its Debug form shows the key as (escaped) text, as the proxy's log of firings should.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum LockOp {
    /// Takes the lease if free: `SET key val NX [PX|EX ...]` (options in any order and
    /// case), `SETNX`, or a script that sets with NX.
    Acquire {
        /// The lease's key.
        key: Vec<u8>,
    },
    /// Extends a lease: `PEXPIRE`, `EXPIRE`, `PEXPIREAT`, `EXPIREAT`, `GETEX` with a new
    /// expiry, `SET key val XX ...`, or a script that (p)expires and does not delete.
    Renew {
        /// The lease's key.
        key: Vec<u8>,
    },
    /// Gives a lease back: `DEL`, `UNLINK` (their first key), or a script that deletes.
    Release {
        /// The lease's key.
        key: Vec<u8>,
    },
    /// Anything else, including scripts whose text the classifier never saw.
    Other,
}

impl fmt::Debug for LockOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (what, key) = match self {
            LockOp::Acquire { key } => ("Acquire", key),
            LockOp::Renew { key } => ("Renew", key),
            LockOp::Release { key } => ("Release", key),
            LockOp::Other => return f.write_str("Other"),
        };
        write!(f, "{what} {{ key: \"{}\" }}", key.escape_ascii())
    }
}

impl LockOp {
    /// The key it acts on, unless it is [`LockOp::Other`].
    pub fn key(&self) -> Option<&[u8]> {
        match self {
            LockOp::Acquire { key } | LockOp::Renew { key } | LockOp::Release { key } => Some(key),
            LockOp::Other => None,
        }
    }
}

/// What a script's text does, decided once when the script is seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ScriptEffect {
    Acquire,
    Renew,
    Release,
    Other,
}

/// Reads a Lua script for the Redis calls it makes, by word, in any case: `del`/`unlink`
/// release (even if the script also expires: compare-and-delete wins), `pexpire`/`expire`
/// (and their `at` forms) renew, `set` with `nx` (or `setnx`) acquires, `set` with `xx`
/// renews. Release outranks renew, renew outranks acquire.
pub(super) fn script_effect(script: &[u8]) -> ScriptEffect {
    let (mut release, mut renew, mut set, mut nx, mut xx, mut setnx) =
        (false, false, false, false, false, false);
    for word in script.split(|b| !(b.is_ascii_alphanumeric() || *b == b'_')) {
        let is = |w: &str| word.eq_ignore_ascii_case(w.as_bytes());
        release |= is("del") || is("unlink");
        renew |= is("pexpire") || is("expire") || is("pexpireat") || is("expireat");
        set |= is("set");
        nx |= is("nx");
        xx |= is("xx");
        setnx |= is("setnx");
    }
    if release {
        ScriptEffect::Release
    } else if renew || (set && xx) {
        ScriptEffect::Renew
    } else if (set && nx) || setnx {
        ScriptEffect::Acquire
    } else {
        ScriptEffect::Other
    }
}

/// The SHA1 Redis names a script by (what EVALSHA sends, in hex).
pub fn script_sha1(script: &[u8]) -> [u8; 20] {
    sha1_smol::Sha1::from(script).digest().bytes()
}

/// Reads a 40-digit hex SHA1 in either case.
pub(super) fn parse_sha1(hex: &[u8]) -> Option<[u8; 20]> {
    if hex.len() != 40 {
        return None;
    }
    let mut out = [0u8; 20];
    for (k, pair) in hex.chunks(2).enumerate() {
        let digit = |c: u8| (c as char).to_digit(16);
        out[k] = (digit(pair[0])? * 16 + digit(pair[1])?) as u8;
    }
    Some(out)
}

/// Which option words of SET were given.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct SetOptions {
    pub(super) nx: bool,
    xx: bool,
    pub(super) get: bool,
}

/// Reads `SET key value [NX|XX] [GET] [EX s|PX ms|EXAT t|PXAT t|KEEPTTL]` in any order;
/// `None` if an option is unknown or misses its argument (Redis would refuse it).
pub(super) fn set_options(command: &Command<'_>) -> Option<SetOptions> {
    let mut options = SetOptions::default();
    let mut k = 2;
    while k < command.arg_count() {
        let is = |w: &str| command.arg_is(k, w);
        if is("NX") {
            options.nx = true;
        } else if is("XX") {
            options.xx = true;
        } else if is("GET") {
            options.get = true;
        } else if is("KEEPTTL") {
        } else if is("EX") || is("PX") || is("EXAT") || is("PXAT") {
            k += 1;
            command.arg(k)?;
        } else {
            return None;
        }
        k += 1;
    }
    (command.arg_count() >= 2 && !(options.nx && options.xx)).then_some(options)
}

/// What `command` does to a lease. Scripts are read from EVAL's text; an EVALSHA is
/// [`LockOp::Other`] here: use [`Scripts::classify`] to resolve it.
pub fn classify(command: &Command<'_>) -> LockOp {
    classify_with(command, None)
}

pub(super) fn classify_with(command: &Command<'_>, scripts: Option<&Scripts>) -> LockOp {
    let name = &command.name;
    let first_key = || command.arg(0).map(<[u8]>::to_vec);
    let op = |make: fn(Vec<u8>) -> LockOp| first_key().map_or(LockOp::Other, make);
    let acquire = |key| LockOp::Acquire { key };
    let renew = |key| LockOp::Renew { key };
    let release = |key| LockOp::Release { key };
    match name.as_bytes() {
        b"SET" => match set_options(command) {
            Some(o) if o.nx => op(acquire),
            Some(o) if o.xx => op(renew),
            _ => LockOp::Other,
        },
        b"SETNX" if command.arg_count() == 2 => op(acquire),
        b"PEXPIRE" | b"EXPIRE" | b"PEXPIREAT" | b"EXPIREAT" if command.arg_count() >= 2 => {
            op(renew)
        }
        b"GETEX"
            if (1..command.arg_count()).any(|k| {
                ["EX", "PX", "EXAT", "PXAT"]
                    .iter()
                    .any(|w| command.arg_is(k, w))
            }) =>
        {
            op(renew)
        }
        b"DEL" | b"UNLINK" => op(release),
        b"EVAL" | b"EVAL_RO" | b"EVALSHA" | b"EVALSHA_RO" => {
            let effect = if name.is("EVAL") || name.is("EVAL_RO") {
                command.arg(0).map(script_effect)
            } else {
                let sha = command.arg(0).and_then(parse_sha1);
                sha.and_then(|sha| scripts?.effects.get(&sha).copied())
            };
            let numkeys = command
                .arg(1)
                .and_then(|n| std::str::from_utf8(n).ok()?.parse::<u64>().ok());
            let key = match numkeys {
                Some(n) if n >= 1 => command.arg(2).map(<[u8]>::to_vec),
                _ => None,
            };
            match (effect, key) {
                (Some(ScriptEffect::Acquire), Some(key)) => LockOp::Acquire { key },
                (Some(ScriptEffect::Renew), Some(key)) => LockOp::Renew { key },
                (Some(ScriptEffect::Release), Some(key)) => LockOp::Release { key },
                _ => LockOp::Other,
            }
        }
        _ => LockOp::Other,
    }
}

/// The scripts seen so far, by SHA1, with what each does, so an EVALSHA can be
/// classified.
///
/// Filled from every EVAL and SCRIPT LOAD that passes. Redis's script cache is shared by
/// all its connections, and clients (redis-rs among them) send EVALSHA first and load a
/// script only on NOSCRIPT, so one `Scripts` should serve every connection to a server
/// (behind a mutex, held only while classifying a command). [`Scripts::learn`] teaches it
/// scripts in advance.
#[derive(Debug, Clone, Default)]
pub struct Scripts {
    effects: HashMap<[u8; 20], ScriptEffect>,
}

impl Scripts {
    /// An empty cache.
    pub fn new() -> Scripts {
        Scripts::default()
    }

    /// Records a script; returns its SHA1.
    pub fn learn(&mut self, script: &[u8]) -> [u8; 20] {
        let sha = script_sha1(script);
        self.effects.insert(sha, script_effect(script));
        sha
    }

    /// How many scripts it knows.
    pub fn len(&self) -> usize {
        self.effects.len()
    }

    /// Whether it knows no script.
    pub fn is_empty(&self) -> bool {
        self.effects.is_empty()
    }

    /// Like [`classify`], and also learns the script of an EVAL or SCRIPT LOAD and
    /// resolves an EVALSHA of a script it learned.
    pub fn classify(&mut self, command: &Command<'_>) -> LockOp {
        let name = &command.name;
        if name.is("EVAL") || name.is("EVAL_RO") {
            if let Some(script) = command.arg(0) {
                self.learn(script);
            }
        } else if name.is("SCRIPT") && command.arg_is(0, "LOAD") {
            if let Some(script) = command.arg(1) {
                self.learn(script);
            }
        }
        classify_with(command, Some(self))
    }
}
