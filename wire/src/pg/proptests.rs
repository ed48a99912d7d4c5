//! Property tests: any Postgres stream, cut anywhere, is followed as when whole.

use super::tests::*;
use super::*;
use proptest::prelude::*;

fn arb_name() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(Vec::new()),
        "[a-z0-9]{1,6}".prop_map(String::into_bytes)
    ]
}

fn arb_sql() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(b"BEGIN".to_vec()),
        Just(b"COMMIT".to_vec()),
        Just(b"INSERT INTO b VALUES ($1)".to_vec()),
        Just(b"SELECT * FROM r FOR UPDATE".to_vec()),
        "[ -~]{0,40}".prop_map(String::into_bytes),
    ]
}

fn cstring(mut bytes: Vec<u8>) -> Vec<u8> {
    bytes.push(0);
    bytes
}

/// One frontend message after the startup, encoded.
fn arb_frontend_message() -> impl Strategy<Value = Vec<u8>> {
    let bytes = || proptest::collection::vec(any::<u8>(), 0..40);
    prop_oneof![
        arb_sql().prop_map(|sql| typed(b'Q', &cstring(sql))),
        (arb_name(), arb_sql()).prop_map(|(n, sql)| {
            let mut body = cstring(n);
            body.extend(cstring(sql));
            body.extend_from_slice(&[0, 0]);
            typed(b'P', &body)
        }),
        (arb_name(), arb_name(), bytes()).prop_map(|(p, s, params)| {
            let mut body = cstring(p);
            body.extend(cstring(s));
            body.extend(params);
            typed(b'B', &body)
        }),
        arb_name().prop_map(|p| {
            let mut body = cstring(p);
            body.extend_from_slice(&[0, 0, 0, 0]);
            typed(b'E', &body)
        }),
        (prop_oneof![Just(b'S'), Just(b'P')], arb_name()).prop_map(|(t, n)| {
            let mut body = vec![t];
            body.extend(cstring(n));
            typed(b'C', &body)
        }),
        Just(typed(b'S', b"")),
        Just(typed(b'H', b"")),
        (
            prop_oneof![Just(b'D'), Just(b'd'), Just(b'p'), Just(b'c')],
            bytes()
        )
            .prop_map(|(t, body)| typed(t, &body)),
    ]
}

fn arb_frontend_stream() -> impl Strategy<Value = Vec<u8>> {
    (
        any::<bool>(),
        proptest::collection::vec(arb_frontend_message(), 0..20),
    )
        .prop_map(|(ssl, messages)| {
            let mut out = Vec::new();
            if ssl {
                out.extend_from_slice(&8i32.to_be_bytes());
                out.extend_from_slice(&SSL_REQUEST.to_be_bytes());
            }
            out.extend(startup());
            out.extend(messages.concat());
            out.extend(typed(b'X', b""));
            out
        })
}

fn arb_backend_message() -> impl Strategy<Value = Vec<u8>> {
    let bytes = || proptest::collection::vec(any::<u8>(), 0..60);
    prop_oneof![
        "[A-Z]{1,8}( [0-9]{1,3}){0,2}".prop_map(|tag| typed(b'C', &cstring(tag.into_bytes()))),
        prop_oneof![Just(b'I'), Just(b'T'), Just(b'E')].prop_map(|s| typed(b'Z', &[s])),
        ("[0-9A-Z]{5}", "[ -~]{0,30}").prop_map(|(code, message)| {
            let mut body = b"SERROR\0C".to_vec();
            body.extend(cstring(code.into_bytes()));
            body.push(b'M');
            body.extend(cstring(message.into_bytes()));
            body.push(0);
            typed(b'E', &body)
        }),
        (
            prop_oneof![
                Just(b'D'),
                Just(b'T'),
                Just(b'N'),
                Just(b'S'),
                Just(b'1'),
                Just(b'2')
            ],
            bytes()
        )
            .prop_map(|(t, body)| typed(t, &body)),
    ]
}

fn arb_backend_stream() -> impl Strategy<Value = Vec<u8>> {
    (
        any::<bool>(),
        proptest::collection::vec(arb_backend_message(), 0..20),
    )
        .prop_map(|(ssl, messages)| {
            let mut out = if ssl { b"N".to_vec() } else { Vec::new() };
            out.extend(typed(b'R', &0i32.to_be_bytes()));
            out.extend(messages.concat());
            out
        })
}

proptest! {
    #[test]
    fn frontend_events_do_not_depend_on_chunking(
        stream in arb_frontend_stream(),
        cuts in proptest::collection::vec(0usize..2000, 0..12),
    ) {
        let whole = frontend([&stream[..]]);
        prop_assert_eq!(&whole.1, &None);
        prop_assert_eq!(frontend(cut(&stream, &cuts)), whole);
    }

    #[test]
    fn backend_events_do_not_depend_on_chunking(
        stream in arb_backend_stream(),
        cuts in proptest::collection::vec(0usize..2000, 0..12),
    ) {
        let whole = backend([&stream[..]]);
        prop_assert_eq!(&whole.1, &None);
        prop_assert_eq!(backend(cut(&stream, &cuts)), whole);
    }

    #[test]
    fn garbage_never_panics_and_fails_the_same_whatever_the_chunking(
        prefix in arb_frontend_stream(),
        keep in 0usize..400,
        garbage in proptest::collection::vec(any::<u8>(), 0..200),
        cuts in proptest::collection::vec(0usize..600, 0..12),
    ) {
        let mut stream = prefix[..keep.min(prefix.len())].to_vec();
        stream.extend(garbage);
        prop_assert_eq!(frontend(cut(&stream, &cuts)), frontend([&stream[..]]));
        prop_assert_eq!(backend(cut(&stream, &cuts)), backend([&stream[..]]));
    }

    #[test]
    fn pure_garbage_never_panics(garbage in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = frontend(garbage.chunks(3));
        let _ = backend(garbage.chunks(3));
    }

    #[test]
    fn any_text_classifies_without_panicking(sql in "\\PC{0,80}") {
        let _ = classify(&sql);
        let _ = statements(&sql).count();
    }
}
