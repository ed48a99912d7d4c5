//! The lease-hold model: what one client's lock trace says about the lease it held, in
//! one place for every reader. `lock-exclusion` asks how long the client believed it held
//! the lock ([`LeaseHold::held_until`]); `lease-margin` how much of the lease its critical
//! section used ([`LeaseHold::section_end`], [`LeaseHold::expiry`]); the report's
//! captions how a second holder's acquire relates to the first's lease
//! ([`LeaseHold::handover`]) and how each holder's commit and release relate to its own
//! ([`LeaseHold::commit_against_lease`], [`LeaseHold::release_against_lease`]). The
//! report words these facts and derives none of them.
//!
//! All instants are nanoseconds on the run clock, as in the trace.

use crate::history::Trace;

/// One client's hold of a lease, from its trace and its op's completion time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseHold {
    /// When it acquired the lease.
    pub acquired: u64,
    /// When the lease ran out on the server: the last grant plus the TTL
    /// ([`Trace::lease_expiry`]); `None` without a TTL.
    pub expiry: Option<u64>,
    /// When the client released the lease, or believed it gave it up.
    pub released: Option<u64>,
    /// When its transaction committed.
    pub commit: Option<u64>,
    /// When the confirmation was sent to the user.
    pub confirmed: Option<u64>,
    /// When its op completed.
    pub completed: u64,
}

/// Where a critical section under a lease ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SectionEnd {
    /// At `db_commit`: the write the lock protected landed.
    Commit,
    /// At `confirmed`, for traces without a commit.
    Confirmed,
}

/// How a client taking the lock relates to the previous holder's lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handover {
    /// The previous holder had released it, `gap` ns before.
    AfterRelease {
        /// ns between the release and the acquire.
        gap: u64,
    },
    /// The previous holder's lease had expired, `gap` ns before; `write_running` if its
    /// write was not over yet (the seed race).
    AfterExpiry {
        /// ns between the expiry and the acquire.
        gap: u64,
        /// Whether the previous holder's write was still running at the acquire.
        write_running: bool,
    },
    /// The previous holder still held it; it let go `let_go_in` ns later, if it ever did.
    WhileHeld {
        /// ns from the acquire until the previous holder released or its lease expired.
        let_go_in: Option<u64>,
    },
}

/// How a holder's commit relates to its own lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitAgainstLease {
    /// The lease expired before the commit.
    ExpiredBefore {
        /// When the lease expired.
        expiry: u64,
        /// When it committed.
        commit: u64,
    },
    /// It committed within its lease.
    Within {
        /// When it committed.
        commit: u64,
    },
    /// It committed; its lease's end is unknown (no TTL).
    Committed {
        /// When it committed.
        commit: u64,
    },
    /// No commit, and the lease expired while the client still held it.
    ExpiredHeld {
        /// When the lease expired.
        expiry: u64,
    },
}

/// How a holder's letting go of the lock relates to its lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReleaseAgainstLease {
    /// It believed it held the lock until `released`, `past` ns after the lease expired.
    PastExpiry {
        /// When it let go.
        released: u64,
        /// ns between the expiry and the release.
        past: u64,
    },
    /// It released the lock at `released` (within its lease, or its lease unknown).
    Released {
        /// When it let go.
        released: u64,
    },
}

impl LeaseHold {
    /// The hold a trace records, for an op that completed at `completed`; `None` when
    /// the trace took no lock.
    pub fn of(trace: &Trace, completed: u64) -> Option<LeaseHold> {
        Some(LeaseHold {
            acquired: trace.lock_acquired?,
            expiry: trace.lease_expiry(),
            released: trace.lock_released,
            commit: trace.db_commit,
            confirmed: trace.confirmed,
            completed,
        })
    }

    /// Until when the client believed it held the lock: its release, else its lease's
    /// expiry, else its op's completion; never before it acquired.
    pub fn held_until(&self) -> u64 {
        self.released
            .or(self.expiry)
            .unwrap_or(self.completed)
            .max(self.acquired)
    }

    /// When its own write was over: its commit, else its op's completion.
    pub fn write_end(&self) -> u64 {
        self.commit.unwrap_or(self.completed)
    }

    /// Where its critical section ended: at the commit, else at the confirmation.
    pub fn section_end(&self) -> Option<(u64, SectionEnd)> {
        match (self.commit, self.confirmed) {
            (Some(c), _) => Some((c, SectionEnd::Commit)),
            (None, Some(c)) => Some((c, SectionEnd::Confirmed)),
            (None, None) => None,
        }
    }

    /// How another client acquiring the lock at `at` relates to this hold.
    pub fn handover(&self, at: u64) -> Handover {
        if let Some(r) = self.released.filter(|&r| r <= at) {
            return Handover::AfterRelease { gap: at - r };
        }
        if let Some(e) = self.expiry.filter(|&e| e <= at) {
            return Handover::AfterExpiry {
                gap: at - e,
                write_running: self.write_end() > at,
            };
        }
        Handover::WhileHeld {
            let_go_in: [self.released, self.expiry]
                .into_iter()
                .flatten()
                .min()
                .map(|until| until - at),
        }
    }

    /// How its commit relates to its lease; `None` without a commit when the lease did
    /// not expire while it was held (it was released before, or has no TTL).
    pub fn commit_against_lease(&self) -> Option<CommitAgainstLease> {
        match (self.expiry, self.commit) {
            (Some(expiry), Some(commit)) if commit > expiry => {
                Some(CommitAgainstLease::ExpiredBefore { expiry, commit })
            }
            (Some(_), Some(commit)) => Some(CommitAgainstLease::Within { commit }),
            (None, Some(commit)) => Some(CommitAgainstLease::Committed { commit }),
            // No commit: the expiry only matters if the client still held the lock then.
            (Some(expiry), None) if self.released.is_none_or(|r| r > expiry) => {
                Some(CommitAgainstLease::ExpiredHeld { expiry })
            }
            _ => None,
        }
    }

    /// How its letting go relates to its lease; `None` if it never let go.
    pub fn release_against_lease(&self) -> Option<ReleaseAgainstLease> {
        let released = self.released?;
        Some(match self.expiry {
            Some(e) if released > e => ReleaseAgainstLease::PastExpiry {
                released,
                past: released - e,
            },
            _ => ReleaseAgainstLease::Released { released },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    fn hold(released: Option<u64>, commit: Option<u64>) -> LeaseHold {
        LeaseHold {
            acquired: 0,
            expiry: Some(500 * MS),
            released,
            commit,
            confirmed: None,
            completed: 900 * MS,
        }
    }

    #[test]
    fn a_hold_lasts_until_release_else_expiry_else_completion() {
        assert_eq!(hold(Some(300 * MS), None).held_until(), 300 * MS);
        assert_eq!(hold(None, None).held_until(), 500 * MS);
        let no_ttl = LeaseHold {
            expiry: None,
            ..hold(None, None)
        };
        assert_eq!(no_ttl.held_until(), 900 * MS);
        let t = Trace {
            lock_acquired: Some(10),
            lock_ttl_ms: Some(1),
            lock_released: Some(5),
            ..Trace::default()
        };
        // A release recorded before the acquire is clamped to the acquire.
        assert_eq!(LeaseHold::of(&t, 20).unwrap().held_until(), 10);
        assert!(LeaseHold::of(&Trace::default(), 20).is_none());
    }

    #[test]
    fn a_second_acquire_is_placed_against_the_first_lease() {
        // The seed race: expired at 500 ms, write committed at 700 ms, B took it at 520.
        let seed = hold(Some(800 * MS), Some(700 * MS));
        assert_eq!(
            seed.handover(520 * MS),
            Handover::AfterExpiry {
                gap: 20 * MS,
                write_running: true
            }
        );
        assert_eq!(
            seed.handover(850 * MS),
            Handover::AfterRelease { gap: 50 * MS }
        );
        assert_eq!(
            seed.handover(100 * MS),
            Handover::WhileHeld {
                let_go_in: Some(400 * MS)
            }
        );
        assert_eq!(
            seed.commit_against_lease(),
            Some(CommitAgainstLease::ExpiredBefore {
                expiry: 500 * MS,
                commit: 700 * MS
            })
        );
        assert_eq!(
            seed.release_against_lease(),
            Some(ReleaseAgainstLease::PastExpiry {
                released: 800 * MS,
                past: 300 * MS
            })
        );
        // Released before its lease ran out, no commit: nothing to say about the lease.
        let quick = hold(Some(100 * MS), None);
        assert_eq!(quick.commit_against_lease(), None);
        assert_eq!(
            quick.release_against_lease(),
            Some(ReleaseAgainstLease::Released { released: 100 * MS })
        );
    }
}
