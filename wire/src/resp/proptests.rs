//! Property tests: any RESP stream, cut anywhere, is followed as when whole.

use super::tests::*;
use super::*;
use proptest::prelude::*;

/// A RESP value to encode, with what the follower should say about it.
#[derive(Debug, Clone)]
enum Tree {
    Simple(String),
    Error(String),
    Int(i64),
    Bulk(Vec<u8>),
    NullBulk,
    NullArray,
    Null,
    Double,
    Bool(bool),
    Big,
    Verbatim(Vec<u8>),
    BulkError(String),
    Array(Vec<Tree>),
    Set(Vec<Tree>),
    Map(Vec<(Tree, Tree)>),
    /// An attribute, then the value it annotates.
    Attributed(Vec<(Tree, Tree)>, Box<Tree>),
}

fn encode(tree: &Tree, out: &mut Vec<u8>) {
    let line = |out: &mut Vec<u8>, kind: u8, text: &[u8]| {
        out.push(kind);
        out.extend_from_slice(text);
        out.extend_from_slice(b"\r\n");
    };
    let bulk = |out: &mut Vec<u8>, kind: u8, payload: &[u8]| {
        line(out, kind, payload.len().to_string().as_bytes());
        out.extend_from_slice(payload);
        out.extend_from_slice(b"\r\n");
    };
    match tree {
        Tree::Simple(s) => line(out, b'+', s.as_bytes()),
        Tree::Error(s) => line(out, b'-', s.as_bytes()),
        Tree::Int(n) => line(out, b':', n.to_string().as_bytes()),
        Tree::Bulk(b) => bulk(out, b'$', b),
        Tree::NullBulk => line(out, b'$', b"-1"),
        Tree::NullArray => line(out, b'*', b"-1"),
        Tree::Null => line(out, b'_', b""),
        Tree::Double => line(out, b',', b"-1.5e3"),
        Tree::Bool(b) => line(out, b'#', if *b { b"t" } else { b"f" }),
        Tree::Big => line(out, b'(', b"123456789012345678901234567890"),
        Tree::Verbatim(b) => {
            let mut payload = b"txt:".to_vec();
            payload.extend_from_slice(b);
            bulk(out, b'=', &payload)
        }
        Tree::BulkError(s) => bulk(out, b'!', s.as_bytes()),
        Tree::Array(items) | Tree::Set(items) => {
            let kind = if matches!(tree, Tree::Array(_)) {
                b'*'
            } else {
                b'~'
            };
            line(out, kind, items.len().to_string().as_bytes());
            for item in items {
                encode(item, out);
            }
        }
        Tree::Map(pairs) | Tree::Attributed(pairs, _) => {
            let kind = if matches!(tree, Tree::Map(_)) {
                b'%'
            } else {
                b'|'
            };
            line(out, kind, pairs.len().to_string().as_bytes());
            for (k, v) in pairs {
                encode(k, out);
                encode(v, out);
            }
            if let Tree::Attributed(_, inner) = tree {
                encode(inner, out);
            }
        }
    }
}

/// The coarse value the follower should give `tree`.
fn expected(tree: &Tree) -> Value {
    match tree {
        Tree::Simple(s) if s == "OK" => Value::Ok,
        Tree::Simple(s) if s == "QUEUED" => Value::Queued,
        Tree::Simple(_) => Value::Other(b'+'),
        Tree::Error(s) | Tree::BulkError(s) => Value::Error(s.clone()),
        Tree::Int(n) => Value::Integer(*n),
        Tree::Bulk(b) => Value::Bulk {
            len: b.len() as u64,
        },
        Tree::NullBulk | Tree::NullArray | Tree::Null => Value::Nil,
        Tree::Double => Value::Other(b','),
        Tree::Bool(_) => Value::Other(b'#'),
        Tree::Big => Value::Other(b'('),
        Tree::Verbatim(_) => Value::Other(b'='),
        Tree::Array(items) => Value::Array {
            len: items.len() as u64,
        },
        Tree::Set(_) => Value::Other(b'~'),
        Tree::Map(_) => Value::Other(b'%'),
        Tree::Attributed(_, inner) => expected(inner),
    }
}

fn arb_tree() -> impl Strategy<Value = Tree> {
    let text = || "[A-Za-z ]{0,12}";
    let leaf = prop_oneof![
        prop_oneof![Just("OK".to_string()), Just("QUEUED".to_string()), text()]
            .prop_map(Tree::Simple),
        "ERR [a-z ]{0,10}".prop_map(Tree::Error),
        any::<i64>().prop_map(Tree::Int),
        proptest::collection::vec(any::<u8>(), 0..30).prop_map(Tree::Bulk),
        Just(Tree::NullBulk),
        Just(Tree::NullArray),
        Just(Tree::Null),
        Just(Tree::Double),
        any::<bool>().prop_map(Tree::Bool),
        Just(Tree::Big),
        proptest::collection::vec(any::<u8>(), 0..20).prop_map(Tree::Verbatim),
        "[A-Za-z \r\n]{0,12}".prop_map(Tree::BulkError),
    ];
    leaf.prop_recursive(4, 40, 5, |inner| {
        let pairs = proptest::collection::vec((inner.clone(), inner.clone()), 0..3);
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..5).prop_map(Tree::Array),
            proptest::collection::vec(inner.clone(), 0..5).prop_map(Tree::Set),
            pairs.clone().prop_map(Tree::Map),
            (pairs, inner).prop_map(|(p, v)| Tree::Attributed(p, Box::new(v))),
        ]
    })
}

/// A top-level message: a reply, or a push of elements.
fn arb_reply() -> impl Strategy<Value = (Tree, bool)> {
    prop_oneof![
        4 => arb_tree().prop_map(|t| (t, false)),
        1 => proptest::collection::vec(arb_tree(), 1..4).prop_map(|items| (Tree::Array(items), true)),
    ]
}

fn encode_reply((tree, push): &(Tree, bool), out: &mut Vec<u8>) {
    let start = out.len();
    encode(tree, out);
    if *push {
        out[start] = b'>';
    }
}

/// One command: RESP array of arbitrary arguments, or an inline line of words.
fn arb_command() -> impl Strategy<Value = (Vec<Vec<u8>>, bool)> {
    prop_oneof![
        proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..20), 1..6)
            .prop_map(|args| (args, false)),
        proptest::collection::vec("[A-Za-z0-9:_]{1,8}", 1..6)
            .prop_map(|words| (words.into_iter().map(String::into_bytes).collect(), true)),
    ]
}

fn encode_command((args, inline): &(Vec<Vec<u8>>, bool), out: &mut Vec<u8>) {
    if *inline {
        out.extend_from_slice(&args.join(&b' '));
        out.extend_from_slice(b"\r\n");
    } else {
        out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
        for arg in args {
            out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
            out.extend_from_slice(arg);
            out.extend_from_slice(b"\r\n");
        }
    }
}

proptest! {
    #[test]
    fn replies_are_read_back_whatever_the_chunking(
        messages in proptest::collection::vec(arb_reply(), 0..12),
        cuts in proptest::collection::vec(0usize..3000, 0..12),
    ) {
        let mut stream = Vec::new();
        let mut bounds = Vec::new();
        for message in &messages {
            let start = stream.len() as u64;
            encode_reply(message, &mut stream);
            bounds.push(start..stream.len() as u64);
        }
        let mut got = Vec::new();
        let mut follower = ReplyFollower::new();
        follower.feed(&stream, |r| {
            got.push((r.range, r.value.clone(), r.push, r.elements.to_vec()))
        }).unwrap();
        prop_assert_eq!(got.len(), messages.len());
        for (((range, value, push, elements), (tree, pushed)), bound) in
            got.iter().zip(&messages).zip(&bounds)
        {
            prop_assert_eq!(range, bound);
            prop_assert_eq!(*push, *pushed);
            if !pushed {
                prop_assert_eq!(value, &expected(tree));
            }
            let mut bare = tree;
            while let Tree::Attributed(_, inner) = bare {
                bare = inner;
            }
            let want: Vec<Value> = match bare {
                Tree::Array(items) if !pushed => items.iter().map(expected).collect(),
                _ => Vec::new(),
            };
            prop_assert_eq!(elements, &want);
        }
        prop_assert_eq!(replies(cut(&stream, &cuts)), replies([&stream[..]]));
    }

    #[test]
    fn commands_are_read_back_whatever_the_chunking(
        sent in proptest::collection::vec(arb_command(), 0..12),
        cuts in proptest::collection::vec(0usize..2000, 0..12),
    ) {
        let mut stream = Vec::new();
        for command in &sent {
            encode_command(command, &mut stream);
            // Empty arrays and lines are ignored, as by Redis.
            stream.extend_from_slice(b"*0\r\n\r\n");
        }
        let mut got = Vec::new();
        CommandFollower::new().feed(&stream, |c| {
            let mut words = vec![c.name.as_bytes().to_vec()];
            words.extend(c.args().map(<[u8]>::to_vec));
            got.push(words);
        }).unwrap();
        let want: Vec<Vec<Vec<u8>>> = sent
            .iter()
            .map(|(args, _)| {
                let mut words = args.clone();
                words[0].make_ascii_uppercase();
                words
            })
            .collect();
        prop_assert_eq!(got, want);
        prop_assert_eq!(commands(cut(&stream, &cuts)), commands([&stream[..]]));
    }

    #[test]
    fn garbage_never_panics_and_fails_the_same_whatever_the_chunking(
        sent in proptest::collection::vec(arb_command(), 0..4),
        answered in proptest::collection::vec(arb_reply(), 0..4),
        keep in 0usize..400,
        garbage in proptest::collection::vec(any::<u8>(), 0..200),
        cuts in proptest::collection::vec(0usize..600, 0..12),
    ) {
        let mut up = Vec::new();
        for command in &sent {
            encode_command(command, &mut up);
        }
        up.truncate(keep);
        up.extend_from_slice(&garbage);
        prop_assert_eq!(commands(cut(&up, &cuts)), commands([&up[..]]));
        let mut down = Vec::new();
        for message in &answered {
            encode_reply(message, &mut down);
        }
        down.truncate(keep);
        down.extend_from_slice(&garbage);
        prop_assert_eq!(replies(cut(&down, &cuts)), replies([&down[..]]));
    }

    #[test]
    fn pure_garbage_never_panics(garbage in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = commands(garbage.chunks(3));
        let _ = replies(garbage.chunks(3));
    }

    #[test]
    fn any_command_classifies_and_pairs_without_panicking(
        sent in proptest::collection::vec(arb_command(), 0..8),
        answered in proptest::collection::vec(arb_reply(), 0..8),
    ) {
        let mut up = Vec::new();
        for command in &sent {
            encode_command(command, &mut up);
        }
        let mut down = Vec::new();
        for message in &answered {
            encode_reply(message, &mut down);
        }
        let mut scripts = Scripts::new();
        let mut pairing = Pairing::new();
        CommandFollower::new().feed(&up, |c| {
            let op = scripts.classify(&c);
            pairing.expect(&c, op);
        }).unwrap();
        ReplyFollower::new().feed(&down, |r| { pairing.reply(&r); }).unwrap();
    }
}
