use super::*;

fn sample() -> Batch {
    Batch {
        header: Header {
            device: "busan-03".into(),
            seq: 300,
            period: Period::day(Day(20_416)),
            schema: SCHEMA_VERSION,
            created_unix: 1_763_942_400,
            last_good_unix: 1_763_900_000,
        },
        report: Report {
            counters: Counters {
                calls: 2,
                utterances: 5,
                audio_ms: 61_250,
                positive_calls: 1,
                negative_calls: 1,
                positive_utterances: 2,
                negative_utterances: 3,
                audio_dropped: 0,
                marked: 1,
                neutral_calls: 0,
                neutral_utterances: 0,
            },
            sentiment_histogram: [0, 1, 0, 0, 0, 0, 0, 0, 1, 0],
            complaints: vec![Keyword {
                term: "환불".into(),
                calls: 1,
                z: 1.5,
            }],
            praise: vec![],
            drivers: vec![Driver {
                term: "환불".into(),
                share: 0.5,
                direction: -1,
            }],
            recommendations: vec![Recommendation {
                priority: 1,
                text: "환불 절차".into(),
            }],
            transcripts: vec![],
            merged: 0,
            lost: 0,
        },
    }
}

/// The exact version-1 bytes of `sample()`, as the version-1 code wrote them. If a
/// decoding test fails, version-1 frames (in boxes' outboxes, in hubs' stores) no longer
/// decode.
const GOLDEN_V1: &str = concat!(
    "0108627573616e2d3033ac02c09f01010180c08ec906e0f48bc9060205c2de03010102030001000100",
    "000000000001000106ed9998ebb688010000c03f000106ed9998ebb6880000003fff01010ded9998eb",
    "b68820eca088ecb0a8000000"
);

/// The exact version-2 bytes of `sample()` with 4 neutral calls and 9 neutral
/// utterances, as the version-2 code wrote them (boxes' outboxes and hubs' stores hold
/// such frames: they must keep decoding).
const GOLDEN_V2: &str = concat!(
    "0208627573616e2d3033ac02c09f01010180c08ec906e0f48bc9060205c2de03010102030001040900",
    "0100000000000001000106ed9998ebb688010000c03f000106ed9998ebb6880000003fff01010ded99",
    "98ebb68820eca088ecb0a8000000"
);

/// The exact version-3 bytes of the same batch: version 3 changed the hub's answer, not
/// the batch, so only the version byte differs. If this test fails, the wire format
/// changed: bump WIRE_VERSION and keep a decoder for the old one, or revert the change.
const GOLDEN: &str = concat!(
    "0308627573616e2d3033ac02c09f01010180c08ec906e0f48bc9060205c2de03010102030001040900",
    "0100000000000001000106ed9998ebb688010000c03f000106ed9998ebb6880000003fff01010ded99",
    "98ebb68820eca088ecb0a8000000"
);

fn sample_v2() -> Batch {
    let mut b = sample();
    b.report.counters.neutral_calls = 4;
    b.report.counters.neutral_utterances = 9;
    b
}

#[test]
fn golden_bytes() {
    let bytes = sample_v2().encode().unwrap();
    assert_eq!(hex(&bytes), GOLDEN, "the wire format changed");
    // Read by hand: version 3, then the device id as a length-prefixed string, then the
    // sequence number 300 as a varint (0xac 0x02).
    assert_eq!(bytes[0], 3);
    assert_eq!(bytes[1], 8);
    assert_eq!(&bytes[2..10], b"busan-03");
    assert_eq!(&bytes[10..12], &[0xac, 0x02]);
    assert_eq!(
        Batch::decode_versioned(&unhex(GOLDEN).unwrap()).unwrap(),
        (sample_v2(), 3)
    );
    // A version-2 frame (what the version-2 code wrote) decodes to the same batch.
    assert_eq!(
        Batch::decode_versioned(&unhex(GOLDEN_V2).unwrap()).unwrap(),
        (sample_v2(), 2)
    );
}

#[test]
fn version_1_frames_decode_with_no_neutral() {
    // The golden frame of the version-1 code: the same batch, the neutral counts 0.
    let (b, version) = Batch::decode_versioned(&unhex(GOLDEN_V1).unwrap()).unwrap();
    assert_eq!((b, version), (sample(), 1));
    // A fuller one the version-1 code wrote (fixtures/v1-full.bin): a merged three-day
    // period, praise, a transcript, lost and merged counts.
    let full = include_bytes!("../fixtures/v1-full.bin");
    assert_eq!(full[0], 1);
    let (b, version) = Batch::decode_versioned(full).unwrap();
    assert_eq!(version, 1);
    assert_eq!(b.header.device, "busan-03");
    assert_eq!(b.header.seq, 41);
    assert_eq!(
        b.header.period,
        Period {
            first_day: Day(20_410),
            days: 3
        }
    );
    assert_eq!(
        b.report.counters,
        Counters {
            calls: 7,
            utterances: 31,
            audio_ms: 61_250,
            positive_calls: 3,
            negative_calls: 2,
            positive_utterances: 11,
            negative_utterances: 9,
            audio_dropped: 1,
            marked: 1,
            neutral_calls: 0,
            neutral_utterances: 0,
        }
    );
    assert_eq!(b.report.praise[0].term, "친절");
    assert_eq!(b.report.praise[0].z, -2.25);
    assert_eq!(b.report.transcripts[0].call, [0xab; 16]);
    assert_eq!(
        b.report.transcripts[0].lines[1],
        (2, "카드 한도가 [번호] 낮아요".to_string())
    );
    assert_eq!((b.report.merged, b.report.lost), (2, 1));
    // Encoded again it is a version-2 frame of the same batch.
    let again = b.encode().unwrap();
    assert_eq!(again[0], WIRE_VERSION);
    assert_eq!(Batch::decode_versioned(&again).unwrap(), (b, WIRE_VERSION));
    // Truncated anywhere, a version-1 frame is an error, never a panic.
    for n in 1..full.len() {
        assert!(Batch::decode(&full[..n]).is_err(), "prefix of {n} bytes");
    }
    let mut long = full.to_vec();
    long.push(0);
    assert_eq!(Batch::decode(&long), Err(WireError::Trailing(1)));
}

#[test]
fn a_version_2_payload_is_not_read_as_version_1() {
    // The version byte decides the layout: a version-2 payload behind a 1 has two more
    // counters than version 1 expects, so its lists are read from the wrong place.
    let mut bytes = sample_v2().encode().unwrap();
    bytes[0] = 1;
    assert_ne!(Batch::decode(&bytes).ok(), Some(sample_v2()));
}

/// The exact version-2 bytes of the signed Ack of `golden_ack`. If this fails, the Ack's
/// layout or its signature changed, and boxes in the field would refuse the hub's answers.
const GOLDEN_ACK: &str = concat!(
    "02026431070101",
    // SHA-256 of b"body"
    "230d8358dc8e8890b4c58deeb62912ee2f20357ae92a5cc861b98e68fe31acb5",
    // HMAC-SHA256 under [7; 32] of tag, device, seq, digest, duplicate, hub_unix (checked
    // independently with Python's hmac module)
    "c56aa0765aef11835725783f1f6376f28a15bce21c573eb0e05fcf8b1463c724"
);

/// The exact version-3 bytes of a signed Conflict: device "d1", seq 7, body b"body",
/// next_seq 300, key [7; 32]. Computed independently with Python's hashlib and hmac.
const GOLDEN_CONFLICT: &str = concat!(
    // version 3, Answer variant 1 (Conflict), "d1", seq 7
    "030102643107",
    // SHA-256 of b"body"
    "230d8358dc8e8890b4c58deeb62912ee2f20357ae92a5cc861b98e68fe31acb5",
    // next_seq 300 as a varint
    "ac02",
    // HMAC-SHA256 under [7; 32] of the conflict tag, device, seq, digest, next_seq
    "40e0a5d7703c267dbaea575638cd32345494d6cb6d9e1c3d1005d5f1edac3a6d"
);

#[test]
fn golden_ack() {
    let key = [7u8; 32];
    let ack = Ack::signed(&key, "d1", 7, b"body", true, 1);
    let bytes = ack.encode_as(2).unwrap();
    assert_eq!(
        hex(&bytes),
        GOLDEN_ACK,
        "the Ack's layout or signature changed"
    );
    assert_eq!(Ack::decode_versioned(&bytes).unwrap(), (ack.clone(), 2));
    assert_eq!(ack.check(2, &key, "d1", 7, b"body"), Ok(()));
    // Version 3: the same Ack behind variant byte 0 of an Answer.
    let v3 = ack.encode().unwrap();
    assert_eq!(hex(&v3), format!("0300{}", &GOLDEN_ACK[2..]));
    assert_eq!(Ack::decode_versioned(&v3).unwrap(), (ack.clone(), 3));
    assert_eq!(
        Answer::decode_versioned(&v3).unwrap(),
        (Answer::Ack(ack.clone()), 3)
    );
    assert_eq!(ack.check(3, &key, "d1", 7, b"body"), Ok(()));
    // Older versions read as an Answer too (an Ack is all they hold).
    assert_eq!(
        Answer::decode_versioned(&bytes).unwrap(),
        (Answer::Ack(ack.clone()), 2)
    );
    // The version-1 bytes (what a version-1 hub sent, and what a hub sends a version-1
    // box): the first four fields behind a 1, unsigned.
    let v1 = ack.encode_as(1).unwrap();
    assert_eq!(hex(&v1), "01026431070101");
    let (read, version) = Ack::decode_versioned(&v1).unwrap();
    assert_eq!(version, 1);
    assert_eq!((read.mac, read.body_sha256), ([0; 32], [0; 32]));
    assert_eq!(
        read.check(version, &key, "d1", 7, b"body"),
        Err(AckError::Unsigned(1))
    );
    assert_eq!(
        ack.encode_as(WIRE_VERSION + 1),
        Err(WireError::UnknownVersion(WIRE_VERSION + 1))
    );
    assert_eq!(
        Ack::decode(&[0, 2, 0x64, 0x31, 7, 1, 1]),
        Err(WireError::UnknownVersion(0))
    );
}

#[test]
fn golden_conflict() {
    let key = [7u8; 32];
    let c = Conflict::signed(&key, "d1", 7, b"body", 300);
    let bytes = c.encode().unwrap();
    assert_eq!(
        hex(&bytes),
        GOLDEN_CONFLICT,
        "the Conflict's layout or signature changed"
    );
    assert_eq!(
        Answer::decode_versioned(&bytes).unwrap(),
        (Answer::Conflict(c.clone()), 3)
    );
    assert_eq!(c.check(3, &key, "d1", 7, b"body"), Ok(300));
    // A Conflict is never read as an Ack, so a box that looks for an Ack drops nothing.
    assert!(matches!(Ack::decode(&bytes), Err(WireError::Malformed(_))));
    // Behind an older version byte it is no answer at all (no v1/v2 layout has it).
    for v in [1, 2] {
        let mut old = bytes.clone();
        old[0] = v;
        assert!(
            !matches!(Answer::decode_versioned(&old), Ok((Answer::Conflict(_), _))),
            "version {v}"
        );
        assert_eq!(
            c.check(v, &key, "d1", 7, b"body"),
            Err(AckError::Unsigned(v))
        );
    }
    // Truncated anywhere: an error, never a panic.
    for n in 1..bytes.len() {
        assert!(Answer::decode_versioned(&bytes[..n]).is_err(), "{n}");
    }
}

#[test]
fn forged_conflicts_fail_the_check() {
    let key = [7u8; 32];
    let good = Conflict::signed(&key, "d1", 7, b"body", 42);
    assert_eq!(good.check(3, &key, "d1", 7, b"body"), Ok(42));
    assert_eq!(
        Conflict::signed(&[8u8; 32], "d1", 7, b"body", 42).check(3, &key, "d1", 7, b"body"),
        Err(AckError::BadSignature)
    );
    let e = Conflict::signed(&key, "d1", 8, b"body", 42).check(3, &key, "d1", 7, b"body");
    assert!(
        matches!(e, Err(AckError::OtherBatch { seq: 8, .. })),
        "{e:?}"
    );
    let e = Conflict::signed(&key, "d2", 7, b"body", 42).check(3, &key, "d1", 7, b"body");
    assert!(matches!(e, Err(AckError::OtherBatch { .. })), "{e:?}");
    assert_eq!(
        Conflict::signed(&key, "d1", 7, b"other", 42).check(3, &key, "d1", 7, b"body"),
        Err(AckError::OtherBody(7))
    );
    // Signed, but a next number not above the batch's would renumber nothing forward.
    for next in [0, 7] {
        assert_eq!(
            Conflict::signed(&key, "d1", 7, b"body", next).check(3, &key, "d1", 7, b"body"),
            Err(AckError::BadNextSeq {
                seq: 7,
                next_seq: next
            })
        );
    }
    for change in 0..4 {
        let mut c = good.clone();
        match change {
            0 => c.next_seq += 1,
            1 => c.seq += 1,
            2 => c.body_sha256[0] ^= 1,
            _ => c.mac[0] ^= 1,
        }
        assert_eq!(
            c.check(3, &key, "d1", c.seq, b"body"),
            Err(AckError::BadSignature),
            "change {change}"
        );
    }
    // The Ack's MAC over the same key is never a Conflict's (distinct tags), and the
    // other way round.
    let ack = Ack::signed(&key, "d1", 7, b"body", false, 42);
    let mut c = good.clone();
    c.mac = ack.mac;
    assert_eq!(
        c.check(3, &key, "d1", 7, b"body"),
        Err(AckError::BadSignature)
    );
    let mut a = ack.clone();
    a.mac = good.mac;
    assert_eq!(
        a.check(3, &key, "d1", 7, b"body"),
        Err(AckError::BadSignature)
    );
}

#[test]
fn forged_acks_fail_the_check() {
    let key = [7u8; 32];
    let good = Ack::signed(&key, "d1", 7, b"body", false, 1_800_000_000);
    assert_eq!(good.check(2, &key, "d1", 7, b"body"), Ok(()));
    // Another key (anyone on the path without the device's key).
    let other = Ack::signed(&[8u8; 32], "d1", 7, b"body", false, 1_800_000_000);
    assert_eq!(
        other.check(2, &key, "d1", 7, b"body"),
        Err(AckError::BadSignature)
    );
    // The right key, for another batch, another device or another body.
    let e = Ack::signed(&key, "d1", 8, b"body", false, 1).check(2, &key, "d1", 7, b"body");
    assert!(
        matches!(e, Err(AckError::OtherBatch { seq: 8, .. })),
        "{e:?}"
    );
    let e = Ack::signed(&key, "d2", 7, b"body", false, 1).check(2, &key, "d1", 7, b"body");
    assert!(matches!(e, Err(AckError::OtherBatch { .. })), "{e:?}");
    assert_eq!(
        Ack::signed(&key, "d1", 7, b"other", false, 1).check(2, &key, "d1", 7, b"body"),
        Err(AckError::OtherBody(7))
    );
    // Any field changed after signing breaks the signature.
    for change in 0..5 {
        let mut a = good.clone();
        match change {
            0 => a.hub_unix = u64::MAX,
            1 => a.duplicate = true,
            2 => a.seq += 1,
            3 => a.body_sha256[0] ^= 1,
            _ => a.mac[31] ^= 1,
        }
        assert_eq!(
            a.check(2, &key, "d1", a.seq, b"body"),
            Err(AckError::BadSignature),
            "change {change}"
        );
    }
    // Unsigned: a v2 frame with the v1 layout is malformed; all zeros does not verify.
    let mut short = good.encode_as(1).unwrap();
    short[0] = 2;
    assert!(matches!(Ack::decode(&short), Err(WireError::Malformed(_))));
    let mut zero = good.clone();
    zero.mac = [0; 32];
    assert_eq!(
        zero.check(2, &key, "d1", 7, b"body"),
        Err(AckError::BadSignature)
    );
    let e = AckError::BadSignature.to_string();
    assert!(e.contains("sync.hub_url points at the hub"), "{e}");
}

#[test]
fn rejects_other_versions_and_garbage() {
    let mut bytes = sample().encode().unwrap();
    assert_eq!(Batch::decode(&[]), Err(WireError::Empty));
    for other in [0, WIRE_VERSION + 1, 0xff] {
        bytes[0] = other;
        let e = Batch::decode(&bytes).unwrap_err();
        assert_eq!(e, WireError::UnknownVersion(other));
        assert!(e.to_string().contains("update the hub or the box"), "{e}");
    }
    bytes[0] = WIRE_VERSION;
    // Truncated anywhere inside: an error, never a panic or a partial batch.
    for n in 1..bytes.len() {
        assert!(Batch::decode(&bytes[..n]).is_err(), "prefix of {n} bytes");
    }
    let mut long = bytes.clone();
    long.push(0);
    assert_eq!(Batch::decode(&long), Err(WireError::Trailing(1)));
    assert!(matches!(
        Batch::decode(&vec![1u8; MAX_BODY_BYTES + 1]),
        Err(WireError::TooLarge(_))
    ));
}

#[test]
fn header_is_checked_both_ways() {
    let mut b = sample();
    b.header.seq = 0;
    assert!(matches!(b.encode(), Err(WireError::BadHeader(_))));
    let mut b = sample();
    b.header.device = "a b".into();
    assert!(matches!(b.encode(), Err(WireError::BadHeader(_))));
    let mut b = sample();
    b.header.period.days = 0;
    assert!(matches!(b.encode(), Err(WireError::BadHeader(_))));
    // A hand-made frame with seq 0 is refused by the decoder too.
    let mut b = sample();
    b.header.seq = 0;
    let mut raw = vec![WIRE_VERSION];
    raw.extend(postcard::to_stdvec(&b).unwrap());
    assert!(matches!(Batch::decode(&raw), Err(WireError::BadHeader(_))));
}

#[test]
fn signatures() {
    // RFC 4231 test case 2.
    assert_eq!(
        sign(b"Jefe", b"what do ya want for nothing?"),
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
    let body = sample().encode().unwrap();
    let key = [7u8; 32];
    let sig = sign(&key, &body);
    assert!(verify(&key, &body, &sig));
    assert!(verify(&key, &body, &sig.to_uppercase()));
    assert!(!verify(&[8u8; 32], &body, &sig));
    let mut forged = body.clone();
    *forged.last_mut().unwrap() ^= 1;
    assert!(!verify(&key, &forged, &sig));
    assert!(!verify(&key, &body, "zz"));
    assert!(!verify(&key, &body, &sig[..62]));
}

#[test]
fn keys() {
    assert_eq!(parse_key(&"ab".repeat(32)).unwrap(), vec![0xab; 32]);
    assert!(parse_key("abcd").unwrap_err().contains("2 bytes"));
    assert!(parse_key("not hex at all!!")
        .unwrap_err()
        .contains("not hex"));
}

#[test]
fn period_and_counters() {
    let p = Period {
        first_day: Day(10),
        days: 7,
    };
    assert_eq!(p.end_day(), Day(17));
    let mut c = sample().report.counters;
    c.add(&sample_v2().report.counters);
    assert_eq!(c.calls, 4);
    assert_eq!(c.audio_ms, 122_500);
    assert_eq!(c.marked, 2);
    assert_eq!((c.neutral_calls, c.neutral_utterances), (4, 9));
}

#[test]
fn non_finite_scores_are_refused() {
    let mut b = sample();
    b.report.drivers[0].share = f32::NAN;
    assert!(matches!(b.encode(), Err(WireError::BadHeader(_))));
    let mut raw = vec![WIRE_VERSION];
    raw.extend(postcard::to_stdvec(&b).unwrap());
    assert!(matches!(Batch::decode(&raw), Err(WireError::BadHeader(_))));
    let mut b = sample();
    b.report.complaints[0].z = f32::INFINITY;
    assert!(b.encode().is_err());
}
