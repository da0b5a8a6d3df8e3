//! The hub's decoder of box batches and the box's decoder of hub acknowledgements: any
//! bytes give a batch or an error, never a panic; a decoded batch, of any wire version,
//! encodes back (in the newest version) to bytes that decode to the same batch (each
//! version has one spelling per value). The corpus holds frames of version 1 (`golden`,
//! `v1-full`, written by the version-1 code) and version 2 (`golden-v2`, `golden-ack-v2`) and version 3 (`golden-v3`, `golden-ack-v3`,
//! `golden-conflict`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use sangdam_wire::{Ack, Answer, Batch, Conflict};

fuzz_target!(|data: &[u8]| {
    if let Ok(b) = Batch::decode(data) {
        let again = b.encode().expect("a decoded batch encodes");
        assert_eq!(again[0], sangdam_wire::WIRE_VERSION);
        assert_eq!(Batch::decode(&again).expect("and decodes again"), b);
        // The signature check on the same bytes must not panic either.
        let sig = sangdam_wire::sign(b"k", data);
        assert!(sangdam_wire::verify(b"k", data, &sig));
    }
    // Any Ack bytes: an Ack or an error; checking it never panics, and never passes
    // unless it really is signed for that batch (a version-1 Ack never is).
    if let Ok((ack, version)) = Ack::decode_versioned(data) {
        let key = [7u8; 32];
        let ok = ack.check(version, &key, &ack.device, ack.seq, data).is_ok();
        assert!(!ok || version >= 2);
        let signed = Ack::signed(
            &key,
            &ack.device,
            ack.seq,
            data,
            ack.duplicate,
            ack.hub_unix,
        );
        assert!(signed.check(2, &key, &ack.device, ack.seq, data).is_ok());
    }
    // Any answer bytes: an Answer or an error. A Conflict's check never panics, never
    // passes below version 3 or unsigned, and a passing one always names a later seq.
    if let Ok((answer, version)) = Answer::decode_versioned(data) {
        let key = [7u8; 32];
        if let Answer::Conflict(c) = answer {
            assert!(version >= sangdam_wire::CONFLICT_WIRE_VERSION);
            if let Ok(next) = c.check(version, &key, &c.device, c.seq, data) {
                assert!(next > c.seq);
            }
            let signed = Conflict::signed(&key, &c.device, c.seq, data, c.next_seq);
            let checked = signed.check(version, &key, &c.device, c.seq, data);
            assert_eq!(checked.is_ok(), c.next_seq > c.seq);
        }
    }
});
