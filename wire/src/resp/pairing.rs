//! Which command a reply answers, and whether it took effect: the pairing of the two
//! directions of one connection (pipelining, MULTI/EXEC, CLIENT REPLY, pushes).

use super::*;

/// Whether a command did what it asked, judged from its reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// It took effect: the lease was granted, renewed, released.
    Applied,
    /// It did not: the lease was held by another, had expired, or the command failed.
    NotApplied,
    /// The reply does not say (a script's error after it may have written, an
    /// unexpected reply, or a command that is no lease operation).
    Unknown,
}

/// One command's lease operation and whether it took effect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// What the command did to a lease.
    pub op: LockOp,
    /// Whether it took effect.
    pub effect: Effect,
}

impl Outcome {
    /// Whether this granted a lease (a lease-grant reply is what `hold grant` holds).
    pub fn is_grant(&self) -> bool {
        matches!(self.op, LockOp::Acquire { .. }) && self.effect == Effect::Applied
    }
}

/// What a reply turned out to answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// It answers one command.
    One(Outcome),
    /// `+QUEUED`: the command was queued in a MULTI; its outcome comes in EXEC's reply.
    Queued(LockOp),
    /// EXEC's reply: the outcome of each queued command, in order (all not applied when
    /// the transaction was aborted or a WATCHed key changed).
    Exec(Vec<Outcome>),
    /// A RESP3 push: it answers nothing.
    Push,
    /// No command was waiting for it: the pairing lost track (pub/sub on RESP2,
    /// MONITOR, or commands it was not told about).
    Unpaired,
}

impl Answer {
    /// The outcomes this reply carries (one, an EXEC's several, or none).
    pub fn outcomes(&self) -> &[Outcome] {
        match self {
            Answer::One(outcome) => std::slice::from_ref(outcome),
            Answer::Exec(outcomes) => outcomes,
            _ => &[],
        }
    }

    /// Whether this reply grants a lease (also inside an EXEC).
    pub fn grants(&self) -> bool {
        self.outcomes().iter().any(Outcome::is_grant)
    }
}

/// How to judge a command's reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Form {
    /// SET NX or XX: `+OK` if it set, nil if not.
    SetIf,
    /// SET NX GET: nil if it set (the key was absent), the old value if not.
    SetNxGet,
    /// SET XX GET: the old value if it set, nil if not.
    SetXxGet,
    /// SETNX, (P)EXPIRE(AT), DEL, UNLINK: a count, 0 if nothing happened.
    Counted,
    /// GETEX: the value if the key existed (and got its expiry), nil if not.
    GetEx,
    /// A script: by convention 0 or nil for "not done", anything else for done.
    Script,
    /// Not a lease operation.
    Other,
}

pub(super) fn form(command: &Command<'_>, op: &LockOp) -> Form {
    if *op == LockOp::Other {
        return Form::Other;
    }
    match command.name.as_bytes() {
        b"SET" => match set_options(command) {
            Some(o) if o.get && o.nx => Form::SetNxGet,
            Some(o) if o.get => Form::SetXxGet,
            _ => Form::SetIf,
        },
        b"GETEX" => Form::GetEx,
        b"EVAL" | b"EVAL_RO" | b"EVALSHA" | b"EVALSHA_RO" => Form::Script,
        _ => Form::Counted,
    }
}

pub(super) fn effect(form: Form, value: &Value) -> Effect {
    use Effect::*;
    match (form, value) {
        (Form::Other, _) => Unknown,
        // A script is not rolled back when it fails half-way; NOSCRIPT means it never ran.
        (Form::Script, Value::Error(e)) if !e.starts_with("NOSCRIPT") => Unknown,
        (_, Value::Error(_)) => NotApplied,
        (Form::SetIf, Value::Ok) | (Form::SetNxGet, Value::Nil) => Applied,
        (Form::SetIf | Form::SetNxGet, _) if matches!(value, Value::Nil | Value::Bulk { .. }) => {
            NotApplied
        }
        (Form::SetXxGet | Form::GetEx, Value::Bulk { .. }) => Applied,
        (Form::SetXxGet | Form::GetEx, Value::Nil) => NotApplied,
        (Form::Counted | Form::Script, Value::Integer(n)) => {
            if *n > 0 {
                Applied
            } else {
                NotApplied
            }
        }
        (Form::Script, Value::Nil) => NotApplied,
        (Form::Script, Value::Ok | Value::Bulk { .. }) => Applied,
        _ => Unknown,
    }
}

/// What a command expects besides its lease operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Control {
    None,
    /// MULTI, DISCARD and RESET end or start a transaction.
    TransactionBoundary,
    Exec,
    /// HELLO with a protocol version (0 if none given).
    Hello(u8),
    Reset,
    /// (P|S)(UN)SUBSCRIBE: on RESP3 answered only by pushes; on RESP2 by arrays, one per
    /// channel, that cannot be told from replies. Which one is known only once every reply
    /// before it (a pipelined HELLO 3's among them) was read.
    Subscribe,
}

#[derive(Debug, Clone)]
pub(super) struct Pending {
    op: LockOp,
    form: Form,
    control: Control,
}

/// CLIENT REPLY's state: whether the server answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Replies {
    On,
    Off,
    SkipNext,
}

/// Pairs replies with the commands they answer, on one connection.
///
/// Redis answers in order, so this is a queue: [`Pairing::expect`] each command as it goes
/// to the server (before its reply can come back), [`Pairing::reply`] each reply. Several
/// commands may be outstanding (pipelining).
///
/// MULTI/EXEC: a queued command is answered `+QUEUED` ([`Answer::Queued`]), and EXEC's
/// array carries the real results, which [`Answer::Exec`] pairs with the commands that were
/// queued (a command refused while queuing is not part of it). To hold a lease granted in
/// a transaction, hold the EXEC reply.
///
/// Also followed: RESP3 pushes are skipped, `CLIENT REPLY OFF/SKIP/ON` silences commands,
/// HELLO switches the protocol, RESET resets. On RESP2, SUBSCRIBE confirmations and
/// messages cannot be told from replies, and MONITOR streams: after either the pairing
/// gives up and answers [`Answer::Unpaired`].
#[derive(Debug, Clone)]
pub struct Pairing {
    waiting: VecDeque<Pending>,
    queued: Vec<Pending>,
    replies: Replies,
    resp3: bool,
    gave_up: bool,
}

impl Default for Pairing {
    fn default() -> Self {
        Pairing::new()
    }
}

impl Pairing {
    /// A pairing for a connection that is just opening.
    pub fn new() -> Pairing {
        Pairing {
            waiting: VecDeque::new(),
            queued: Vec::new(),
            replies: Replies::On,
            resp3: false,
            gave_up: false,
        }
    }

    /// Notes a command sent to the server and its lease operation (from [`classify`] or
    /// [`Scripts::classify`]).
    pub fn expect(&mut self, command: &Command<'_>, op: LockOp) {
        if self.gave_up {
            return;
        }
        let name = &command.name;
        if name.is("CLIENT") && command.arg_is(0, "REPLY") {
            // OFF and SKIP are not answered themselves.
            if command.arg_is(1, "OFF") {
                self.replies = Replies::Off;
                return;
            }
            if command.arg_is(1, "SKIP") {
                self.replies = Replies::SkipNext;
                return;
            }
            if command.arg_is(1, "ON") {
                self.replies = Replies::On;
            }
        }
        match self.replies {
            Replies::Off => return,
            Replies::SkipNext => {
                self.replies = Replies::On;
                return;
            }
            Replies::On => {}
        }
        let subscribe = [
            "SUBSCRIBE",
            "PSUBSCRIBE",
            "SSUBSCRIBE",
            "UNSUBSCRIBE",
            "PUNSUBSCRIBE",
            "SUNSUBSCRIBE",
        ];
        if name.is("MONITOR") {
            self.gave_up = true;
            return;
        }
        let control = if subscribe.iter().any(|s| name.is(s)) {
            Control::Subscribe
        } else if name.is("MULTI") || name.is("DISCARD") {
            Control::TransactionBoundary
        } else if name.is("EXEC") {
            Control::Exec
        } else if name.is("RESET") {
            Control::Reset
        } else if name.is("HELLO") {
            let version = command.arg(0).and_then(|v| match v {
                b"2" => Some(2),
                b"3" => Some(3),
                _ => None,
            });
            Control::Hello(version.unwrap_or(0))
        } else {
            Control::None
        };
        let form = form(command, &op);
        self.waiting.push_back(Pending { op, form, control });
    }

    /// Says what `reply` answers.
    pub fn reply(&mut self, reply: &Reply<'_>) -> Answer {
        if reply.push {
            return Answer::Push;
        }
        if self.gave_up {
            return Answer::Unpaired;
        }
        let pending = loop {
            let Some(pending) = self.waiting.pop_front() else {
                return Answer::Unpaired;
            };
            if pending.control != Control::Subscribe {
                break pending;
            }
            if !self.resp3 {
                self.gave_up = true;
                return Answer::Unpaired;
            }
            // RESP3: its confirmations were pushes; this reply answers a later command.
        };
        let value = reply.value;
        if *value == Value::Queued {
            let op = pending.op.clone();
            self.queued.push(pending);
            return Answer::Queued(op);
        }
        let ok = !matches!(value, Value::Error(_));
        match pending.control {
            Control::Exec => {
                let queued = std::mem::take(&mut self.queued);
                let ran = matches!(value, Value::Array { .. });
                let outcomes = queued
                    .into_iter()
                    .enumerate()
                    .map(|(k, p)| {
                        let effect = match reply.elements.get(k) {
                            Some(element) if ran => effect(p.form, element),
                            _ if ran => Effect::Unknown,
                            _ => Effect::NotApplied,
                        };
                        Outcome { op: p.op, effect }
                    })
                    .collect();
                return Answer::Exec(outcomes);
            }
            Control::TransactionBoundary => self.queued.clear(),
            Control::Hello(version) if ok && version != 0 => self.resp3 = version == 3,
            Control::Reset if ok => {
                self.queued.clear();
                self.resp3 = false;
            }
            _ => {}
        }
        Answer::One(Outcome {
            effect: effect(pending.form, value),
            op: pending.op,
        })
    }

    /// How many commands wait for their reply (on RESP3 a SUBSCRIBE, answered only by
    /// pushes, counts until the reply after it is read).
    pub fn outstanding(&self) -> usize {
        self.waiting.len()
    }
}
