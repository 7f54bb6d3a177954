use proptest::prelude::*;
use serde_bencode::value::Value;

use super::*;

const LIMITS: Limits = Limits {
    max_depth: 4,
    max_len: 1000,
};

#[test]
fn well_formed_values_end_where_they_end() {
    for (input, end) in [
        (&b"i42e"[..], 4),
        (b"i-7etrailing", 4),
        (b"0:", 2),
        (b"4:spam", 6),
        (b"le", 2),
        (b"de", 2),
        (b"l4:spami1eee", 11),
        (b"d3:cow3:moo4:spaml1:a1:beeXYZ", 26),
        (b"d1:md11:ut_metadatai2eee", 24),
    ] {
        assert_eq!(value_end(input, 0, LIMITS), Ok(end), "{input:?}");
    }
    assert_eq!(value_end(b"xx4:spam", 2, LIMITS), Ok(8));
}

#[test]
fn malformed_values_are_refused_with_their_offset() {
    for (input, offset, reason) in [
        (&b""[..], 0, "unexpected end of input"),
        (b"x", 0, "not the start of a value"),
        (b"i12", 0, "integer without `e`"),
        (b"ie", 0, "bad integer"),
        (b"i1x2e", 0, "bad integer"),
        (b"5:abc", 0, "string runs past the end of the input"),
        (b"4spam", 0, "string length without `:`"),
        (b"l", 1, "unexpected end of input"),
        (b"di1ei2ee", 1, "dictionary key is not a string"),
        (b"d1:ae", 4, "dictionary key without a value"),
        (b"l99999999999999999999999:xe", 1, "string length too large"),
    ] {
        assert_eq!(
            value_end(input, 0, LIMITS),
            Err(ScanError::Malformed { offset, reason }),
            "{:?}",
            String::from_utf8_lossy(input)
        );
    }
}

#[test]
fn depth_and_length_limits_hold() {
    assert_eq!(
        value_end(b"llllee ee", 0, LIMITS),
        Err(ScanError::Malformed {
            offset: 6,
            reason: "not the start of a value"
        })
    );
    assert_eq!(value_end(b"lllleeee", 0, LIMITS), Ok(8));
    assert_eq!(
        value_end(b"llllleeeee", 0, LIMITS),
        Err(ScanError::TooDeep { max: 4 })
    );
    // A million `l`s: refused at depth 5, no recursion, no big allocation.
    assert_eq!(
        value_end(&vec![b'l'; 1 << 20], 0, LIMITS),
        Err(ScanError::TooDeep { max: 4 })
    );
    // `l` inside a string is not nesting.
    assert_eq!(value_end(b"l10:lllllllllle", 0, LIMITS), Ok(15));
    let long = format!("1000:{}", "x".repeat(1000));
    assert_eq!(
        value_end(long.as_bytes(), 0, LIMITS),
        Err(ScanError::TooLong { max: 1000 })
    );
    let just = format!("995:{}", "x".repeat(995));
    assert_eq!(value_end(just.as_bytes(), 0, LIMITS), Ok(999));
    // A long list is stopped at the limit, not read to its end.
    let mut many = vec![b'l'];
    many.extend(b"i1e".repeat(100_000));
    assert_eq!(
        value_end(&many, 0, LIMITS),
        Err(ScanError::TooLong { max: 1000 })
    );
}

fn arb_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        any::<i64>().prop_map(Value::Int),
        proptest::collection::vec(any::<u8>(), 0..20).prop_map(Value::Bytes),
    ];
    leaf.prop_recursive(3, 32, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::List),
            proptest::collection::hash_map(
                proptest::collection::vec(any::<u8>(), 0..8),
                inner,
                0..4
            )
            .prop_map(Value::Dict),
        ]
    })
}

proptest! {
    #[test]
    fn encoded_values_scan_to_their_length(
        value in arb_value(),
        trailing in proptest::collection::vec(any::<u8>(), 0..8),
    ) {
        let encoded = serde_bencode::to_bytes(&value).unwrap();
        let limits = Limits { max_depth: 4, max_len: encoded.len() };
        let mut input = encoded.clone();
        input.extend_from_slice(&trailing);
        prop_assert_eq!(value_end(&input, 0, limits), Ok(encoded.len()));
        prop_assert_eq!(
            value_end(&input, 0, Limits { max_len: encoded.len() - 1, ..limits }),
            Err(ScanError::TooLong { max: encoded.len() - 1 })
        );
        for cut in 0..encoded.len() {
            prop_assert!(value_end(&encoded[..cut], 0, limits).is_err());
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_accepted_spans_decode(
        input in proptest::collection::vec(
            prop_oneof![Just(b'l'), Just(b'd'), Just(b'e'), Just(b'i'), Just(b':'), b'0'..=b'9', any::<u8>()],
            0..64,
        ),
    ) {
        if let Ok(end) = value_end(&input, 0, LIMITS) {
            prop_assert!(end <= input.len());
            // serde_bencode agrees that the span is one value (it is
            // stricter on some integers, e.g. `i-0e`, so only the
            // structure is compared when it accepts).
            if let Ok(value) = serde_bencode::from_bytes::<Value>(&input[..end]) {
                let again = serde_bencode::to_bytes(&value).unwrap();
                prop_assert_eq!(value_end(&again, 0, Limits { max_len: again.len(), ..LIMITS }), Ok(again.len()));
            }
        }
    }
}
