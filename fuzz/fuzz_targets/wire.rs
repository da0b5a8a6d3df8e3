//! The hub's decoder of box batches and the box's decoder of hub acknowledgements: any
//! bytes give a batch or an error, never a panic; a decoded batch, of any wire version,
//! encodes back (in the newest version) to bytes that decode to the same batch (each
//! version has one spelling per value). The corpus holds frames of version 1 (`golden`,
//! `v1-full`, written by the version-1 code) and version 2 (`golden-v2`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use sangdam_wire::{Ack, Batch};

fuzz_target!(|data: &[u8]| {
    if let Ok(b) = Batch::decode(data) {
        let again = b.encode().expect("a decoded batch encodes");
        assert_eq!(again[0], sangdam_wire::WIRE_VERSION);
        assert_eq!(Batch::decode(&again).expect("and decodes again"), b);
        // The signature check on the same bytes must not panic either.
        let sig = sangdam_wire::sign(b"k", data);
        assert!(sangdam_wire::verify(b"k", data, &sig));
    }
    let _ = Ack::decode(data);
});
