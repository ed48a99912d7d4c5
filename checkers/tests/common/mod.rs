//! Tiny builders for hand-made histories (Jepsen checker_test style): each call appends
//! one event, one millisecond after the previous, and returns its index.

#![allow(dead_code)]

use checkers::{BookingRow, Bound, History, Op, OpType, OpValue, Process, Room, Trace, F};

/// A stay bound from its ISO date or RFC 3339 form; tests only use valid literals.
pub fn d(s: &str) -> Bound {
    Bound::parse(s).expect("test date")
}

/// Appends events with increasing time (1 ms apart unless `at` moves the clock).
#[derive(Default)]
pub struct H {
    pub ops: Vec<Op>,
    pub now: u64,
}

impl H {
    pub fn new() -> H {
        H::default()
    }

    /// Moves the clock to `ms` milliseconds (never backwards).
    pub fn at(&mut self, ms: u64) -> &mut H {
        self.now = self.now.max(ms * 1_000_000);
        self
    }

    pub fn push(&mut self, process: Process, kind: OpType, f: F, value: OpValue) -> u64 {
        self.now += 1_000_000;
        let index = self.ops.len() as u64;
        self.ops.push(Op {
            index,
            time: self.now,
            process,
            kind,
            f,
            value,
            error: None,
        });
        index
    }

    pub fn invoke_book(
        &mut self,
        p: u64,
        room: impl Into<Room>,
        from: &str,
        to: &str,
        req: &str,
    ) -> u64 {
        self.push(
            Process::Client(p),
            OpType::Invoke,
            F::Book,
            book_value(room, from, to, req),
        )
    }

    /// Completes `p`'s book; `ok` gets booking id `id`.
    pub fn end_book(&mut self, p: u64, kind: OpType, id: u64) -> u64 {
        let mut v = OpValue::default();
        if kind == OpType::Ok {
            v.booking = Some(id);
        }
        self.push(Process::Client(p), kind, F::Book, v)
    }

    pub fn end_book_traced(&mut self, p: u64, kind: OpType, id: u64, trace: Trace) -> u64 {
        let v = OpValue {
            booking: (kind == OpType::Ok).then_some(id),
            trace: Some(trace),
            ..OpValue::default()
        };
        self.push(Process::Client(p), kind, F::Book, v)
    }

    /// Invoke and complete at once; returns the completion index.
    #[allow(clippy::too_many_arguments)]
    pub fn book(
        &mut self,
        p: u64,
        room: impl Into<Room>,
        from: &str,
        to: &str,
        req: &str,
        kind: OpType,
        id: u64,
    ) -> u64 {
        self.invoke_book(p, room, from, to, req);
        self.end_book(p, kind, id)
    }

    pub fn invoke_cancel(&mut self, p: u64, booking: u64) -> u64 {
        let v = OpValue {
            booking: Some(booking),
            ..OpValue::default()
        };
        self.push(Process::Client(p), OpType::Invoke, F::Cancel, v)
    }

    pub fn end(&mut self, p: u64, kind: OpType, f: F) -> u64 {
        self.push(Process::Client(p), kind, f, OpValue::default())
    }

    /// A final read by process `p` returning `rows`; returns the completion index.
    pub fn read(&mut self, p: u64, rows: Vec<BookingRow>) -> u64 {
        self.push(
            Process::Client(p),
            OpType::Invoke,
            F::Read,
            OpValue::default(),
        );
        let v = OpValue {
            bookings: Some(rows),
            ..OpValue::default()
        };
        self.push(Process::Client(p), OpType::Ok, F::Read, v)
    }

    /// Appends a run header (as `overbook run` writes first): capacities, unit.
    pub fn header(&mut self, header: checkers::RunHeader) -> u64 {
        let op = header.to_op();
        self.push(op.process, op.kind, op.f, op.value)
    }

    pub fn nemesis(&mut self, f: &str) -> u64 {
        let i = self.push(
            Process::Nemesis,
            OpType::Invoke,
            F::from(f),
            OpValue::default(),
        );
        self.push(
            Process::Nemesis,
            OpType::Info,
            F::from(f),
            OpValue::default(),
        );
        i
    }

    pub fn history(&self) -> History {
        History::from_ops(self.ops.clone()).expect("test history is well formed")
    }
}

pub fn book_value(room: impl Into<Room>, from: &str, to: &str, req: &str) -> OpValue {
    OpValue {
        room: Some(room.into()),
        from: Some(d(from)),
        to: Some(d(to)),
        request: Some(req.to_string()),
        ..OpValue::default()
    }
}

pub fn row(room: impl Into<Room>, from: &str, to: &str, req: &str) -> BookingRow {
    BookingRow {
        room: room.into(),
        from: d(from),
        to: d(to),
        request: req.to_string(),
        booking: None,
    }
}
