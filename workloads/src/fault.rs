//! The fault table: every fault overbook can inject, one typed row each.
//!
//! The CLI's help and error messages, the nemesis, the designs' expectations and the
//! matrix all read this table, so a fault is named in one place.
//!
//! A fault is two files: its variant, row and [`each_fault!`] line here (what it is
//! called, what it acts on, what it needs, which designs it catches), and its module in
//! the harness (`harness/src/nemesis/faults/<name>.rs`: how it is applied, healed,
//! struck and logged, and the protocol aim it sets on a proxy). The table lives in
//! `workloads` (below the harness) because the designs declare, in their own files,
//! which faults must catch them and which they survive; the harness's registry is
//! generated from [`each_fault!`], so it needs no line of its own.

use std::fmt;
use std::str::FromStr;

use crate::error::WorkloadError;
use crate::lock_service::LockService;

/// A fault the nemesis can inject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Fault {
    /// No fault: the control run.
    None,
    /// Every Postgres round trip takes longer (proxy latency).
    DbLatency,
    /// Every Redis round trip takes longer.
    RedisLatency,
    /// Postgres is SIGSTOPped.
    PauseDb,
    /// Redis is SIGSTOPped.
    PauseRedis,
    /// Postgres is killed, and restarted at the window's end.
    KillDb,
    /// Redis is killed (losing every lease unless it runs with AOF), then restarted.
    KillRedis,
    /// The clients cannot reach Postgres (proxy blackhole).
    PartitionDb,
    /// The clients cannot reach Redis.
    PartitionRedis,
    /// Clients stop between taking the lease and writing (a GC pause).
    ClientPause,
    /// One replica of the service under test is SIGSTOPped, its whole process group.
    PauseService,
    /// One replica of the service under test is killed, then started again.
    KillService,
    /// Only statements that write (and COMMIT) are held on their way to Postgres: the
    /// seed's story, aimed (a read, BEGIN and Redis go at full speed).
    SlowWrites,
    /// A COMMIT reaches Postgres and commits; its answer is swallowed and the client's
    /// connection cut, so the client cannot know.
    LostCommitAck,
    /// The reply granting a lease (`SET ... NX`) is held until the lease has expired.
    SlowLockGrant,
    /// Lease renewals never reach Redis, so the lease lapses while its holder works.
    LostRenewal,
    /// While a lease holder writes, one Redis node's expiry clock jumps forward by several
    /// leases: its keys expire early (the jump's effect, produced by a script).
    ClockJumpRedis,
    /// Sentinel: while a holder of a lease granted on the primary writes (replication cut
    /// before the grant), the primary is killed; the promoted replica never had the lease.
    FailoverRedis,
    /// The notification sink answers the service's notifications late (each recorded
    /// when it arrives): a slow mail provider; a sender that retries must not tell the
    /// guest twice.
    SlowNotify,
}

/// What a fault acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Target {
    /// Nothing: the control run.
    Nothing,
    /// The bookings database.
    Postgres,
    /// The lock service.
    Redis,
    /// The simulated users (the system under test's own process).
    Clients,
    /// The processes of a service under test that overbook started (`--service`).
    Service,
}

/// What injecting a fault needs from the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Needs {
    /// Nothing at all.
    Nothing,
    /// Only the fault proxy in front of the node: works on every backend.
    Proxy,
    /// Control of the server's process (pause, kill): the local and docker backends.
    ProcessControl,
    /// A pause point inside the system under test (the built-in designs have one).
    ClientHook,
    /// A service under test whose processes overbook started (`run --service`).
    Service,
}

/// One row of the fault table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FaultRow {
    /// The fault.
    pub fault: Fault,
    /// Its kebab-case name, on the command line and in the history (`start-<name>`).
    pub name: &'static str,
    /// One line: what it does and what production failure it models.
    pub doc: &'static str,
    /// What it acts on.
    pub acts_on: Target,
    /// What it needs.
    pub needs: Needs,
    /// Which designs it catches besides those that name it ([`Catches`]).
    pub catches: Catches,
    /// Whether it can only strike a design that takes a lease: it acts on the lock
    /// service or on a lease holder's pause point, and finds nothing to act on in a
    /// design that sends nothing to Redis.
    pub lease_only: bool,
}

/// Which designs a fault catches, beyond what each design declares
/// ([`crate::Design::caught_by`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Catches {
    /// Exactly the designs that name it.
    AsDeclared,
    /// Those, and every unsafe design holding a lease without a fence, on these lock
    /// services: the fault takes the lease from its holder while it works.
    EveryUnfencedLeaseOn(&'static [LockService]),
    /// The designs that name it, except on this lock service, where it cannot take an
    /// unfenced lease from its holder (the held grant is one Redlock node's: the client
    /// holds a majority without it).
    AsDeclaredExceptOn(LockService),
}

const EVERY_SERVICE: &[LockService] = &[
    LockService::Single,
    LockService::Sentinel,
    LockService::Redlock,
];

impl FaultRow {
    /// This row, catching other designs than those that name it.
    const fn catching(mut self, catches: Catches) -> FaultRow {
        self.catches = catches;
        self
    }

    /// This row, for a fault that acts on the lock service or a lease holder but also
    /// on the database, so it strikes designs without a lease too.
    const fn not_lease_only(mut self) -> FaultRow {
        self.lease_only = false;
        self
    }
}

const fn row(
    fault: Fault,
    name: &'static str,
    acts_on: Target,
    needs: Needs,
    doc: &'static str,
) -> FaultRow {
    FaultRow {
        fault,
        name,
        doc,
        acts_on,
        needs,
        catches: Catches::AsDeclared,
        lease_only: matches!(acts_on, Target::Redis | Target::Clients),
    }
}

/// The table, `none` first. Row order is the order of `--help`, the matrix and reports.
#[rustfmt::skip]
const TABLE: [FaultRow; 19] = [
    row(Fault::None, "none", Target::Nothing, Needs::Nothing,
        "no fault: the control run"),
    row(Fault::DbLatency, "db-latency", Target::Postgres, Needs::Proxy,
        "every Postgres round trip is delayed by --db-latency: a database slow under load"),
    row(Fault::RedisLatency, "redis-latency", Target::Redis, Needs::Proxy,
        "every Redis round trip is delayed by --redis-latency"),
    row(Fault::PauseDb, "pause-db", Target::Postgres, Needs::ProcessControl,
        "Postgres is stopped (SIGSTOP): it holds connections and locks but answers nothing"),
    row(Fault::PauseRedis, "pause-redis", Target::Redis, Needs::ProcessControl,
        "Redis is stopped (SIGSTOP)"),
    row(Fault::KillDb, "kill-db", Target::Postgres, Needs::ProcessControl,
        "Postgres is killed (SIGKILL) and restarted at the window's end"),
    row(Fault::KillRedis, "kill-redis", Target::Redis, Needs::ProcessControl,
        "Redis is killed and restarted: without AOF it forgets every lease"),
    row(Fault::PartitionDb, "partition-db", Target::Postgres, Needs::Proxy,
        "the clients cannot reach Postgres (the proxy holds every byte)"),
    row(Fault::PartitionRedis, "partition-redis", Target::Redis, Needs::Proxy,
        "the clients cannot reach Redis"),
    row(Fault::ClientPause, "client-pause", Target::Clients, Needs::ClientHook,
        "clients stop for --client-pause between taking the lease and writing: a GC pause"),
    row(Fault::PauseService, "pause-service", Target::Service, Needs::Service,
        "one replica of --service is stopped (SIGSTOP to its process group): a GC pause, a VM migration"),
    row(Fault::KillService, "kill-service", Target::Service, Needs::Service,
        "one replica of --service is killed (SIGKILL), started again and waited for: a crash"),
    row(Fault::SlowWrites, "slow-writes", Target::Postgres, Needs::Proxy,
        "only writes (INSERT, UPDATE, DELETE, MERGE, COMMIT, or --slow-sql) are held for \
         --db-latency; reads, BEGIN and Redis go at full speed: a write slower than the lease"),
    row(Fault::LostCommitAck, "lost-commit-ack", Target::Postgres, Needs::Proxy,
        "a COMMIT commits but its answer is swallowed and the connection cut: \
         the client cannot know whether its booking exists"),
    row(Fault::SlowLockGrant, "slow-lock-grant", Target::Redis, Needs::Proxy,
        "the reply granting a lease (SET NX) is held until the lease has expired: \
         the holder works on a lease already gone")
        .catching(Catches::AsDeclaredExceptOn(LockService::Redlock)),
    // It also holds the writes the lost renewals should have covered.
    row(Fault::LostRenewal, "lost-renewal", Target::Redis, Needs::Proxy,
        "lease renewals (PEXPIRE, SET XX, a renewal script) never reach Redis: \
         the lease lapses while its holder works")
        .not_lease_only(),
    row(Fault::ClockJumpRedis, "clock-jump-redis", Target::Redis, Needs::Proxy,
        "while a lease holder's INSERT is held (half a lease), the --fault-node's clock \
         jumps forward by several leases: every key's TTL is cut by the jump in one script")
        .catching(Catches::EveryUnfencedLeaseOn(EVERY_SERVICE)),
    row(Fault::FailoverRedis, "failover-redis", Target::Redis, Needs::ProcessControl,
        "sentinel: replication is cut; while a holder of a lease granted on the primary \
         INSERT is held (half a lease), the primary is killed; Sentinel promotes the \
         replica, which never had the lease")
        .catching(Catches::EveryUnfencedLeaseOn(&[LockService::Sentinel])),
    row(Fault::SlowNotify, "slow-notify", Target::Service, Needs::Service,
        "the notification sink answers each of --service's notifications 3 s late (it is \
         recorded on arrival): a slow mail provider; a sender that gives up and retries \
         must not tell the guest twice"),
];

/// Calls the macro `$then` with every fault as `Variant => module,` (table order), the
/// module being the fault's behaviour in the harness (`harness/src/nemesis/faults/`):
/// the harness's registry is generated from this list, so a fault added here without
/// its module (or a module without its fault) does not compile.
#[macro_export]
macro_rules! each_fault {
    ($then:ident) => {
        $then! {
            None => none,
            DbLatency => db_latency,
            RedisLatency => redis_latency,
            PauseDb => pause_db,
            PauseRedis => pause_redis,
            KillDb => kill_db,
            KillRedis => kill_redis,
            PartitionDb => partition_db,
            PartitionRedis => partition_redis,
            ClientPause => client_pause,
            PauseService => pause_service,
            KillService => kill_service,
            SlowWrites => slow_writes,
            LostCommitAck => lost_commit_ack,
            SlowLockGrant => slow_lock_grant,
            LostRenewal => lost_renewal,
            ClockJumpRedis => clock_jump_redis,
            FailoverRedis => failover_redis,
            SlowNotify => slow_notify,
        }
    };
}

/// What a fault needs of the run where the user chose nothing: most faults scale with
/// the lease and need nothing ([`Fit::ANY`]); a fault whose strike takes a fixed time,
/// or strikes one holder per window, declares here what lets it strike.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fit {
    /// How long the fault takes, once it strikes a holder at work, before a second client
    /// can take the holder's lease: the holder's work (half its lease, see
    /// `FaultParams::work_hold`) must outlast it, or the lease expires before the fault
    /// completes and nothing overlaps. `None`: the fault's effect scales with the lease.
    pub takes: Option<std::time::Duration>,
    /// The fault strikes one holder per window: the hotel defaults to one room with a
    /// calendar that never fills, so every user wants the struck lease (on a cold room
    /// of five, nobody may ask for it before its holder is done).
    pub one_room: bool,
}

impl Fit {
    /// No needs: the run's own defaults fit.
    pub const ANY: Fit = Fit {
        takes: None,
        one_room: false,
    };
}

/// How long a Sentinel failover takes to hand a lease to a second client: the sentinels
/// call the primary down after `down-after-milliseconds` (1 s, `nodes::topology`), agree
/// and promote the replica (about 1 s), and a client that cannot reach the dead primary
/// asks the sentinels again within 2 s (docs/locks.md).
pub const FAILOVER_TAKES: std::time::Duration = std::time::Duration::from_secs(4);

/// Every fault in table order, for designs that break under all of them.
const EVERY: [Fault; TABLE.len()] = faults_of(&TABLE);

const fn faults_of<const N: usize>(table: &[FaultRow; N]) -> [Fault; N] {
    let mut out = [Fault::None; N];
    let mut i = 0;
    while i < N {
        out[i] = table[i].fault;
        i += 1;
    }
    out
}

impl Fault {
    /// Every fault, `none` first, as a slice (a design caught by every fault returns it).
    pub const EVERY: &'static [Fault] = &EVERY;

    /// The fault's row in the table.
    pub fn row(self) -> &'static FaultRow {
        TABLE
            .iter()
            .find(|r| r.fault == self)
            .expect("every fault has a row in the table")
    }

    /// Every row, `none` first.
    pub fn table() -> &'static [FaultRow] {
        &TABLE
    }

    /// Every fault, `none` first.
    pub fn all() -> &'static [Fault] {
        Fault::EVERY
    }

    /// The kebab-case name used on the command line and in the history.
    pub fn name(self) -> &'static str {
        self.row().name
    }

    /// What the fault acts on.
    pub fn acts_on(self) -> Target {
        self.row().acts_on
    }

    /// Which designs the fault catches besides those that name it.
    pub fn catches(self) -> Catches {
        self.row().catches
    }

    /// Whether the fault can only strike a design that takes a lease.
    pub fn lease_only(self) -> bool {
        self.row().lease_only
    }

    /// What the fault needs of the run's defaults to strike (see [`Fit`]).
    pub fn fit(self) -> Fit {
        match self {
            Fault::FailoverRedis => Fit {
                takes: Some(FAILOVER_TAKES),
                one_room: true,
            },
            Fault::ClockJumpRedis => Fit {
                takes: None,
                one_room: true,
            },
            _ => Fit::ANY,
        }
    }

    /// Whether the fault signals a server process (so needs a backend that owns it).
    pub fn needs_process(self) -> bool {
        self.row().needs == Needs::ProcessControl
    }

    /// What injecting the fault needs from the run.
    pub fn needs(self) -> Needs {
        self.row().needs
    }

    /// Whether the fault acts on a service overbook started (so needs `--service`).
    pub fn needs_service(self) -> bool {
        self.row().needs == Needs::Service
    }

    /// Every fault name, comma separated, for error messages and help.
    pub fn names() -> String {
        TABLE.iter().map(|r| r.name).collect::<Vec<_>>().join(", ")
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Fault {
    type Err = WorkloadError;

    fn from_str(s: &str) -> Result<Fault, WorkloadError> {
        TABLE
            .iter()
            .find(|r| r.name == s)
            .map(|r| r.fault)
            .ok_or_else(|| WorkloadError::UnknownFault {
                name: s.to_string(),
                valid: Fault::names(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_every_fault_has_one_row() {
        for r in Fault::table() {
            assert_eq!(r.name.parse::<Fault>().unwrap(), r.fault);
            assert_eq!(r.fault.to_string(), r.name);
            assert_eq!(
                Fault::table().iter().filter(|o| o.fault == r.fault).count(),
                1
            );
        }
        let e = "pause-everything".parse::<Fault>().unwrap_err().to_string();
        assert!(
            e.contains("pause-everything") && e.contains("kill-redis"),
            "{e}"
        );
    }

    #[test]
    fn process_faults_are_the_pauses_and_kills() {
        let process: Vec<&str> = Fault::all()
            .iter()
            .filter(|f| f.needs_process())
            .map(|f| f.name())
            .collect();
        assert_eq!(
            process,
            [
                "pause-db",
                "pause-redis",
                "kill-db",
                "kill-redis",
                "failover-redis"
            ]
        );
    }
}
