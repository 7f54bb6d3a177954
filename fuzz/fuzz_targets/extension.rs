//! The BEP 10 extended handshake and BEP 11 peer exchange decoders on
//! arbitrary payloads (the bytes after the extended message id).
//!
//! Checks: no panic; whatever decodes re-encodes and decodes to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use minibit_core::wire::{ExtendedHandshake, Pex};

fuzz_target!(|data: &[u8]| {
    if let Ok(handshake) = ExtendedHandshake::decode(data) {
        assert_eq!(
            ExtendedHandshake::decode(&handshake.encode()),
            Ok(handshake.clone())
        );
        for name in handshake.m.keys() {
            assert_ne!(handshake.id_for(name), Some(0), "id 0 means disabled");
        }
    }
    if let Ok(pex) = Pex::decode(data) {
        assert_eq!(Pex::decode(&pex.encode()), Ok(pex));
    }
});
