//! What the hub answers once [`crate::Storage::insert`] has said what it did with a
//! batch: the status and the body, independent of the HTTP server that sends them.

use sangdam_wire::{Ack, Conflict, CONFLICT_WIRE_VERSION};

use crate::Stored;

/// An HTTP answer: status, `Content-Type` and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
}

impl Answer {
    fn text(status: u16, text: String) -> Answer {
        Answer {
            status,
            content_type: "text/plain; charset=utf-8",
            body: text.into_bytes(),
        }
    }
}

/// The answer to batch `seq` of `device`, received as `body` in wire `version`, that
/// the store answered `stored`; signed under the device's `key` at the hub's clock
/// `hub_unix`.
///
/// - [`Stored::New`]: 200 and an [`Ack`] (in the batch's own version: a version-1 box
///   gets the unsigned version-1 Ack, which it can read).
/// - [`Stored::Duplicate`]: 409 and an Ack with `duplicate` set (the box may drop it).
/// - [`Stored::Conflict`] from a box of version 3 on: 409 and a signed [`Conflict`]
///   naming the next free seq (the box renumbers and sends again).
/// - [`Stored::Conflict`] from an older box: 409 and a plain-text body, which is no
///   frame (it starts with a letter, never with a version byte). Such a box cannot read
///   a Conflict, and a duplicate Ack would make it drop a batch the hub does not have:
///   it treats this as a failed send and keeps the batch until it is updated.
/// - An Ack that cannot be encoded (cannot happen for a decoded batch): 500.
pub fn answer(
    stored: Stored,
    key: &[u8],
    device: &str,
    seq: u64,
    body: &[u8],
    version: u8,
    hub_unix: u64,
) -> Answer {
    let frame = match stored {
        Stored::New | Stored::Duplicate => {
            let duplicate = stored == Stored::Duplicate;
            Ack::signed(key, device, seq, body, duplicate, hub_unix)
                .encode_as(version)
                .map(|frame| (if duplicate { 409 } else { 200 }, frame))
        }
        Stored::Conflict { next_seq } if version >= CONFLICT_WIRE_VERSION => {
            Conflict::signed(key, device, seq, body, next_seq)
                .encode()
                .map(|frame| (409, frame))
        }
        Stored::Conflict { next_seq } => {
            return Answer::text(
                409,
                format!(
                    "conflict: {device} #{seq} is stored at this hub with another batch (was the box's store rebuilt or the box re-imaged?); a wire version {version} box cannot be told the next free number ({next_seq}): the batch is not stored and not acknowledged; update the box\n"
                ),
            )
        }
    };
    match frame {
        Ok((status, body)) => Answer {
            status,
            content_type: "application/octet-stream",
            body,
        },
        Err(e) => Answer::text(500, format!("cannot encode the answer: {e}\n")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sangdam_wire::Answer as Frame;

    const KEY: [u8; 32] = [5; 32];

    #[test]
    fn each_outcome_gets_its_answer() {
        let body = b"\x03frame";
        let a = answer(Stored::New, &KEY, "d1", 4, body, 3, 9);
        assert_eq!(a.status, 200);
        let (ack, v) = sangdam_wire::Ack::decode_versioned(&a.body).unwrap();
        assert_eq!(ack.check(v, &KEY, "d1", 4, body), Ok(()));
        assert!(!ack.duplicate);
        let a = answer(Stored::Duplicate, &KEY, "d1", 4, body, 2, 9);
        assert_eq!((a.status, a.body[0]), (409, 2));
        assert!(sangdam_wire::Ack::decode(&a.body).unwrap().duplicate);
        // A version-3 box is told the next free number, signed.
        let a = answer(Stored::Conflict { next_seq: 12 }, &KEY, "d1", 4, body, 3, 9);
        assert_eq!(a.status, 409);
        match Frame::decode_versioned(&a.body).unwrap() {
            (Frame::Conflict(c), v) => assert_eq!(c.check(v, &KEY, "d1", 4, body), Ok(12)),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            sangdam_wire::Ack::decode(&a.body).map(|a| a.duplicate).ok(),
            None,
            "a conflict must never read as an Ack"
        );
        // Older boxes get text: no Ack, so nothing they would drop the batch on.
        for v in [1, 2] {
            let a = answer(Stored::Conflict { next_seq: 12 }, &KEY, "d1", 4, body, v, 9);
            assert_eq!(a.status, 409);
            assert!(a.content_type.starts_with("text/plain"));
            assert!(a.body[0].is_ascii_alphabetic());
            assert!(sangdam_wire::Ack::decode(&a.body).is_err(), "version {v}");
            assert!(String::from_utf8_lossy(&a.body).contains("update the box"));
        }
    }
}
