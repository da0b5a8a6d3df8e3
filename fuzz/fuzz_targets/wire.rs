//! The hub's decoder of box batches and the box's decoder of hub acknowledgements: any
//! bytes give a batch or an error, never a panic; a decoded batch encodes back to bytes
//! that decode to the same batch (the format has one spelling per value).
#![no_main]

use libfuzzer_sys::fuzz_target;
use sangdam_wire::{Ack, Batch};

fuzz_target!(|data: &[u8]| {
    if let Ok(b) = Batch::decode(data) {
        let again = b.encode().expect("a decoded batch encodes");
        assert_eq!(Batch::decode(&again).expect("and decodes again"), b);
        // The signature check on the same bytes must not panic either.
        let sig = sangdam_wire::sign(b"k", data);
        assert!(sangdam_wire::verify(b"k", data, &sig));
    }
    let _ = Ack::decode(data);
});
