//! What a statement does (a write, a COMMIT, a read...), from its SQL text by a small
//! lexer; and what a command tag says finished.

/// What a statement does, coarsely: what an aimed fault selects on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StatementKind {
    /// BEGIN, START TRANSACTION.
    Begin,
    /// COMMIT, END, COMMIT AND CHAIN. Not COMMIT PREPARED: that finishes a two-phase
    /// transaction prepared earlier, possibly by another session, and is not allowed inside
    /// a transaction block, so it is [`StatementKind::Other`] (as are PREPARE TRANSACTION
    /// and ROLLBACK PREPARED).
    Commit,
    /// ROLLBACK, ABORT (not ROLLBACK TO SAVEPOINT, which keeps the transaction open:
    /// that is Other).
    Rollback,
    /// Changes rows: INSERT, UPDATE, DELETE, MERGE, TRUNCATE, COPY ... FROM, a WITH whose
    /// parts change rows, EXPLAIN ANALYZE of a write.
    Write,
    /// Reads: SELECT (also SELECT ... FOR UPDATE, which locks but writes nothing), VALUES,
    /// TABLE, SHOW, FETCH, DECLARE, COPY ... TO, EXPLAIN.
    Read,
    /// Everything else: SET, DDL, SELECT ... INTO (creates a table), CALL and DO (their
    /// effect is not in the text), SQL-level PREPARE/EXECUTE, savepoints.
    Other,
}

impl StatementKind {
    /// What a CommandComplete tag says finished: `COMMIT` is [`StatementKind::Commit`],
    /// `ROLLBACK` is [`StatementKind::Rollback`] (also the answer to a COMMIT of a failed
    /// transaction), `INSERT 0 1` is [`StatementKind::Write`], and so on. `COPY n` is
    /// Other: the tag does not say which way the copy went.
    pub fn of_tag(tag: &str) -> StatementKind {
        let mut words = tag.split(' ');
        let first = words.next().unwrap_or("");
        let second = words.next();
        match first {
            "BEGIN" => StatementKind::Begin,
            "START" if second == Some("TRANSACTION") => StatementKind::Begin,
            "COMMIT" if second.is_none() => StatementKind::Commit,
            "ROLLBACK" if second.is_none() => StatementKind::Rollback,
            "INSERT" | "UPDATE" | "DELETE" | "MERGE" => StatementKind::Write,
            "TRUNCATE" => StatementKind::Write,
            "SELECT" | "FETCH" | "MOVE" | "SHOW" | "DECLARE" => StatementKind::Read,
            _ => StatementKind::Other,
        }
    }

    /// Which kind wins when one Query holds several statements: a write anywhere makes
    /// the Query a write, then COMMIT, ROLLBACK, BEGIN, a read.
    fn rank(self) -> u8 {
        match self {
            StatementKind::Write => 5,
            StatementKind::Commit => 4,
            StatementKind::Rollback => 3,
            StatementKind::Begin => 2,
            StatementKind::Read => 1,
            StatementKind::Other => 0,
        }
    }
}

/// A classified statement: what it does and, for a write, the table it writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    /// What it does.
    pub kind: StatementKind,
    /// The table an INSERT, UPDATE, DELETE, MERGE, TRUNCATE or COPY FROM names (the first
    /// one written, for a WITH). Unquoted parts are lowercased as Postgres folds them,
    /// quoted parts kept as written, a schema joined with `.`: `Public."Rooms"` is
    /// `public.Rooms`.
    pub table: Option<String>,
}

impl Statement {
    fn of(kind: StatementKind) -> Statement {
        Statement { kind, table: None }
    }

    /// Whether the statement changes rows (what `--slow-writes` aims at).
    pub fn is_write(&self) -> bool {
        self.kind == StatementKind::Write
    }
}

/// Classifies SQL that may hold several statements (a simple Query): the strongest kind
/// wins (a write, then COMMIT, ROLLBACK, BEGIN, a read, other), with the table of the first
/// statement of that kind. Empty SQL is Other.
///
/// A caller aiming with its own rule (a `--slow-sql` regex) matches the event's SQL text
/// itself, or each text [`statements`] yields.
pub fn classify(sql: &str) -> Statement {
    let mut best: Option<Statement> = None;
    for (_, statement) in statements(sql) {
        if best
            .as_ref()
            .is_none_or(|b| statement.kind.rank() > b.kind.rank())
        {
            best = Some(statement);
        }
    }
    best.unwrap_or(Statement::of(StatementKind::Other))
}

/// The statements of `sql` in order, each with its text (comments between statements and
/// the separating `;` left out) and its classification. Empty statements are skipped.
pub fn statements(sql: &str) -> Statements<'_> {
    Statements {
        lexer: Lexer::new(sql, 0, sql.len()),
    }
}

/// The iterator [`statements`] returns.
#[derive(Debug, Clone)]
pub struct Statements<'a> {
    lexer: Lexer<'a>,
}

impl<'a> Iterator for Statements<'a> {
    type Item = (&'a str, Statement);

    fn next(&mut self) -> Option<Self::Item> {
        let src = self.lexer.src;
        loop {
            let first = self.lexer.next()?;
            if first.tok == Tok::Semi {
                continue;
            }
            let start = first.start;
            let mut end = first.end;
            // CREATE FUNCTION ... BEGIN ATOMIC ...; ...; END holds semicolons: psql too
            // counts BEGIN/CASE against END inside such a body.
            let creates = first.is("create");
            let mut previous = first;
            let mut atomic = 0u32;
            for token in self.lexer.by_ref() {
                if token.tok == Tok::Semi && atomic == 0 {
                    break;
                }
                if creates {
                    let opens = token.is("atomic") && previous.is("begin");
                    if opens || (atomic > 0 && token.is("case")) {
                        atomic += 1;
                    } else if atomic > 0 && token.is("end") {
                        atomic -= 1;
                    }
                }
                end = token.end;
                previous = token;
            }
            let statement = classify_range(src, start, end, 0);
            return Some((&src[start..end], statement));
        }
    }
}

/// How deep WITH and EXPLAIN may nest before the classifier stops looking (and says
/// Other): SQL comes from the client, and recursion must not be its to choose.
pub(super) const MAX_NESTING: u32 = 32;

/// Classifies the one statement in `src[start..end]`.
pub(super) fn classify_range(src: &str, start: usize, end: usize, depth: u32) -> Statement {
    use StatementKind::*;
    if depth > MAX_NESTING {
        return Statement::of(Other);
    }
    let mut lx = Lexer::new(src, start, end);
    let Some(first) = lx.next() else {
        return Statement::of(Other);
    };
    if first.tok == Tok::Open {
        // (SELECT ...) UNION (SELECT ...), (VALUES ...).
        return Statement::of(Read);
    }
    let Tok::Word(word) = first.tok else {
        return Statement::of(Other);
    };
    let next_is = |lx: &Lexer<'_>, kw: &str| lx.clone().next().is_some_and(|t| t.is(kw));
    match word.to_ascii_lowercase().as_str() {
        "begin" => Statement::of(Begin),
        "start" if next_is(&lx, "transaction") => Statement::of(Begin),
        "commit" if next_is(&lx, "prepared") => Statement::of(Other),
        "commit" | "end" => Statement::of(Commit),
        "abort" => Statement::of(Rollback),
        "rollback" => {
            let mut t = lx.next();
            if t.is_some_and(|t| t.is("work") || t.is("transaction")) {
                t = lx.next();
            }
            if t.is_some_and(|t| t.is("to") || t.is("prepared")) {
                Statement::of(Other)
            } else {
                Statement::of(Rollback)
            }
        }
        "insert" | "merge" => write(lx.next().is_some_and(|t| t.is("into")), &mut lx),
        "delete" => write(lx.next().is_some_and(|t| t.is("from")), &mut lx),
        "update" => write(true, &mut lx),
        "truncate" => {
            if next_is(&lx, "table") {
                lx.next();
            }
            write(true, &mut lx)
        }
        "copy" => {
            if lx.clone().next().is_some_and(|t| t.tok == Tok::Open) {
                return Statement::of(Read); // COPY (query) TO
            }
            let table = table_name(&mut lx);
            let mut depth = 0u32;
            for token in lx {
                match token.tok {
                    Tok::Open => depth += 1,
                    Tok::Close => depth = depth.saturating_sub(1),
                    _ if depth == 0 && token.is("from") => {
                        return Statement { kind: Write, table };
                    }
                    _ if depth == 0 && token.is("to") => break,
                    _ => {}
                }
            }
            Statement::of(Read)
        }
        "select" => {
            // SELECT ... INTO t creates a table; FOR UPDATE only locks: still a read.
            let mut depth = 0u32;
            for token in lx {
                match token.tok {
                    Tok::Open => depth += 1,
                    Tok::Close => depth = depth.saturating_sub(1),
                    _ if depth == 0 && token.is("into") => return Statement::of(Other),
                    _ => {}
                }
            }
            Statement::of(Read)
        }
        "values" | "table" | "show" | "fetch" | "move" | "declare" => Statement::of(Read),
        "with" => classify_with(src, lx, end, depth),
        "explain" => classify_explain(src, lx, end, depth),
        _ => Statement::of(Other),
    }
}

/// A write whose table name follows (after the INTO or FROM `expected` says was there).
pub(super) fn write(expected: bool, lx: &mut Lexer<'_>) -> Statement {
    let table = if expected { table_name(lx) } else { None };
    Statement {
        kind: StatementKind::Write,
        table,
    }
}

/// Reads `[ONLY] name[.name...]`, folding unquoted parts to lowercase.
pub(super) fn table_name(lx: &mut Lexer<'_>) -> Option<String> {
    let mut token = lx.next()?;
    if token.is("only") {
        token = lx.next()?;
    }
    let mut name = String::new();
    loop {
        match token.tok {
            Tok::Word(w) => name.extend(w.chars().map(|c| c.to_ascii_lowercase())),
            Tok::Quoted(q) => name.push_str(&q.replace("\"\"", "\"")),
            _ => return None,
        }
        let mut ahead = lx.clone();
        if ahead.next().is_some_and(|t| t.tok == Tok::Dot) {
            name.push('.');
            *lx = ahead;
            token = lx.next()?;
        } else {
            return Some(name);
        }
    }
}

/// Skips to the `)` closing an `(` just read; returns that `)`'s start (or the end).
pub(super) fn skip_balanced(lx: &mut Lexer<'_>) -> usize {
    let mut depth = 1u32;
    for token in lx.by_ref() {
        match token.tok {
            Tok::Open => depth += 1,
            Tok::Close => {
                depth -= 1;
                if depth == 0 {
                    return token.start;
                }
            }
            _ => {}
        }
    }
    lx.end
}

/// `WITH [RECURSIVE] name [(cols)] AS [[NOT] MATERIALIZED] (body) [SEARCH/CYCLE ...], ...
/// main`: a write if any body or the main statement writes.
pub(super) fn classify_with(src: &str, mut lx: Lexer<'_>, end: usize, depth: u32) -> Statement {
    use StatementKind::*;
    let mut first_write: Option<Statement> = None;
    let mut t = lx.next();
    if t.is_some_and(|t| t.is("recursive")) {
        t = lx.next();
    }
    loop {
        if !t.is_some_and(|t| matches!(t.tok, Tok::Word(_) | Tok::Quoted(_))) {
            return Statement::of(Other);
        }
        t = lx.next();
        if t.is_some_and(|t| t.tok == Tok::Open) {
            skip_balanced(&mut lx);
            t = lx.next();
        }
        if !t.is_some_and(|t| t.is("as")) {
            return Statement::of(Other);
        }
        t = lx.next();
        if t.is_some_and(|t| t.is("not")) {
            t = lx.next();
        }
        if t.is_some_and(|t| t.is("materialized")) {
            t = lx.next();
        }
        if !t.is_some_and(|t| t.tok == Tok::Open) {
            return Statement::of(Other);
        }
        let body_start = lx.pos;
        let body_end = skip_balanced(&mut lx);
        let body = classify_range(src, body_start, body_end, depth + 1);
        if body.kind == Write && first_write.is_none() {
            first_write = Some(body);
        }
        // SEARCH ... SET col / CYCLE ... USING path may follow the body.
        t = lx.next();
        while let Some(token) = t {
            if token.tok == Tok::Comma || token.tok == Tok::Open || token.starts_statement() {
                break;
            }
            t = lx.next();
        }
        if t.is_some_and(|t| t.tok == Tok::Comma) {
            t = lx.next();
            continue;
        }
        break;
    }
    let main = match t {
        Some(token) => classify_range(src, token.start, end, depth + 1),
        None => Statement::of(Other),
    };
    first_write.unwrap_or(main)
}

/// `EXPLAIN [(options)] [ANALYZE] [VERBOSE] statement`: only ANALYZE runs the statement.
pub(super) fn classify_explain(src: &str, mut lx: Lexer<'_>, end: usize, depth: u32) -> Statement {
    let is_analyze = |t: &Token<'_>| t.is("analyze") || t.is("analyse");
    let mut analyze = false;
    let mut t = lx.next();
    if t.is_some_and(|t| t.tok == Tok::Open) {
        let mut previous: Option<Token<'_>> = None;
        for token in lx.by_ref() {
            if token.tok == Tok::Close {
                break;
            }
            if previous.is_some_and(|p| is_analyze(&p)) {
                // ANALYZE false / off / 0 turns it off again.
                analyze = !(token.is("false") || token.is("off") || token.text(src) == "0");
            } else if is_analyze(&token) {
                analyze = true;
            }
            previous = Some(token);
        }
        t = lx.next();
    }
    while let Some(token) = t.filter(|t| is_analyze(t) || t.is("verbose")) {
        analyze |= is_analyze(&token);
        t = lx.next();
    }
    match t {
        Some(token) if analyze => classify_range(src, token.start, end, depth + 1),
        _ => Statement::of(StatementKind::Read),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Tok<'a> {
    /// An unquoted identifier or keyword, as written.
    Word(&'a str),
    /// A double-quoted identifier, without its quotes (doubled quotes still doubled).
    Quoted(&'a str),
    Open,
    Close,
    Comma,
    Semi,
    Dot,
    /// A literal, parameter, operator: nothing the classifier looks into.
    Other,
}

#[derive(Debug, Clone, Copy)]
pub(super) struct Token<'a> {
    tok: Tok<'a>,
    start: usize,
    end: usize,
}

impl Token<'_> {
    /// Whether this is the keyword `kw` (lowercase), in any case.
    fn is(&self, kw: &str) -> bool {
        matches!(self.tok, Tok::Word(w) if w.eq_ignore_ascii_case(kw))
    }

    fn text<'s>(&self, src: &'s str) -> &'s str {
        &src[self.start..self.end]
    }

    fn starts_statement(&self) -> bool {
        [
            "select", "insert", "update", "delete", "merge", "values", "table",
        ]
        .iter()
        .any(|kw| self.is(kw))
    }
}

/// A lexer over `src[pos..end]` that knows just enough SQL to never mistake the inside of
/// a string, quoted identifier, dollar quote or comment for code.
#[derive(Debug, Clone)]
pub(super) struct Lexer<'a> {
    src: &'a str,
    pos: usize,
    end: usize,
}

pub(super) fn is_ident_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b >= 0x80
}

pub(super) fn is_ident(b: u8) -> bool {
    is_ident_start(b) || b.is_ascii_digit() || b == b'$'
}

impl<'a> Lexer<'a> {
    fn new(src: &'a str, pos: usize, end: usize) -> Lexer<'a> {
        Lexer { src, pos, end }
    }

    fn bytes(&self) -> &'a [u8] {
        &self.src.as_bytes()[..self.end]
    }

    fn peek_at(&self, k: usize) -> Option<u8> {
        self.bytes().get(self.pos + k).copied()
    }

    /// Skips whitespace and comments.
    fn skip_blank(&mut self) {
        let b = self.bytes();
        while self.pos < b.len() {
            match b[self.pos] {
                b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c => self.pos += 1,
                b'-' if b.get(self.pos + 1) == Some(&b'-') => {
                    self.pos = b[self.pos..]
                        .iter()
                        .position(|&c| c == b'\n')
                        .map_or(b.len(), |n| self.pos + n + 1);
                }
                b'/' if b.get(self.pos + 1) == Some(&b'*') => {
                    // Postgres block comments nest.
                    let mut depth = 0u32;
                    while self.pos < b.len() {
                        if b[self.pos..].starts_with(b"/*") {
                            depth += 1;
                            self.pos += 2;
                        } else if b[self.pos..].starts_with(b"*/") {
                            depth -= 1;
                            self.pos += 2;
                            if depth == 0 {
                                break;
                            }
                        } else {
                            self.pos += 1;
                        }
                    }
                }
                _ => return,
            }
        }
    }

    /// Skips a quoted run starting at the opening `quote`; a doubled quote stands for one,
    /// and with `backslash` (E'...') a backslash escapes the next byte.
    fn skip_quoted(&mut self, quote: u8, backslash: bool) {
        let b = self.bytes();
        self.pos += 1;
        while self.pos < b.len() {
            let c = b[self.pos];
            if backslash && c == b'\\' {
                self.pos += 2;
            } else if c == quote {
                if b.get(self.pos + 1) == Some(&quote) {
                    self.pos += 2;
                } else {
                    self.pos += 1;
                    return;
                }
            } else {
                self.pos += 1;
            }
        }
        self.pos = b.len();
    }

    /// At a `$`: a dollar quote `$tag$...$tag$` (skipped whole), a parameter `$1`, or a
    /// lone `$`.
    fn skip_dollar(&mut self) {
        let b = self.bytes();
        let start = self.pos;
        let mut k = start + 1;
        if b.get(k).is_some_and(|c| c.is_ascii_digit()) {
            while b.get(k).is_some_and(|c| c.is_ascii_digit()) {
                k += 1;
            }
            self.pos = k;
            return;
        }
        if b.get(k).is_some_and(|&c| is_ident_start(c)) {
            while b.get(k).is_some_and(|&c| is_ident(c) && c != b'$') {
                k += 1;
            }
        }
        if b.get(k) != Some(&b'$') {
            self.pos = start + 1;
            return;
        }
        let delimiter = &b[start..=k];
        let body = k + 1;
        self.pos = b[body..]
            .windows(delimiter.len())
            .position(|w| w == delimiter)
            .map_or(b.len(), |n| body + n + delimiter.len());
    }
}

impl<'a> Iterator for Lexer<'a> {
    type Item = Token<'a>;

    fn next(&mut self) -> Option<Token<'a>> {
        self.skip_blank();
        let b = self.bytes();
        let start = self.pos;
        let c = *b.get(start)?;
        let tok = match c {
            b'\'' => {
                self.skip_quoted(b'\'', false);
                Tok::Other
            }
            b'"' => {
                self.skip_quoted(b'"', false);
                let close = if b[self.pos - 1] == b'"' && self.pos > start + 1 {
                    self.pos - 1
                } else {
                    self.pos
                };
                Tok::Quoted(&self.src[start + 1..close])
            }
            b'$' => {
                self.skip_dollar();
                Tok::Other
            }
            b'(' | b')' | b',' | b';' => {
                self.pos += 1;
                match c {
                    b'(' => Tok::Open,
                    b')' => Tok::Close,
                    b',' => Tok::Comma,
                    _ => Tok::Semi,
                }
            }
            b'.' if !self.peek_at(1).is_some_and(|d| d.is_ascii_digit()) => {
                self.pos += 1;
                Tok::Dot
            }
            b'0'..=b'9' | b'.' => {
                while self
                    .peek_at(0)
                    .is_some_and(|d| d.is_ascii_alphanumeric() || d == b'.' || d == b'_')
                {
                    self.pos += 1;
                }
                Tok::Other
            }
            c if is_ident_start(c) => {
                while self.peek_at(0).is_some_and(is_ident) {
                    self.pos += 1;
                }
                let word = &self.src[start..self.pos];
                match (word.as_bytes(), self.peek_at(0), self.peek_at(1)) {
                    // E'..' escapes with backslashes; B'..', X'..', N'..' do not.
                    ([e], Some(b'\''), _) if e.eq_ignore_ascii_case(&b'e') => {
                        self.skip_quoted(b'\'', true);
                        Tok::Other
                    }
                    ([p], Some(b'\''), _) if b"bBxXnN".contains(p) => {
                        self.skip_quoted(b'\'', false);
                        Tok::Other
                    }
                    // U&'..' and U&".." (Unicode escapes).
                    ([u], Some(b'&'), Some(q @ (b'\'' | b'"')))
                        if u.eq_ignore_ascii_case(&b'u') =>
                    {
                        self.pos += 1;
                        self.skip_quoted(q, false);
                        Tok::Other
                    }
                    _ => Tok::Word(word),
                }
            }
            _ => {
                self.pos += 1;
                Tok::Other
            }
        };
        Some(Token {
            tok,
            start,
            end: self.pos,
        })
    }
}
