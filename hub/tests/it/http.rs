//! The upload contract: which answer for which body, and that nothing is stored unless
//! the answer is 200.

use std::sync::{Arc, Barrier};

use sangdam_hub::{HubStats, Storage};
use sangdam_wire::{Ack, AckError, Answer, Batch, MAX_BODY_BYTES, SCHEMA_VERSION, WIRE_VERSION};

use crate::common::*;

fn nothing_stored(t: &TestHub) {
    assert_eq!(
        t.storage.count().unwrap(),
        0,
        "a rejected upload was stored"
    );
    assert!(t.storage.batches().unwrap().is_empty());
}

#[test]
fn accepted_batch_is_stored_and_acknowledged() {
    let t = TestHub::start();
    let b = batch("busan-03", 1);
    let reply = upload(t.addr(), &b);
    assert_eq!(reply.status, 200, "{}", reply.text());
    let ack = reply.ack();
    assert_eq!(
        (ack.device.as_str(), ack.seq, ack.duplicate),
        ("busan-03", 1, false)
    );
    assert!(
        ack.hub_unix > 1_700_000_000,
        "hub clock in the Ack: {}",
        ack.hub_unix
    );
    // Signed under the device's key over the body that was sent (issue 18).
    let (body, _) = signed(&b);
    let (_, version) = sangdam_wire::Ack::decode_versioned(&reply.body).unwrap();
    assert_eq!(version, WIRE_VERSION);
    assert_eq!(ack.body_sha256, sangdam_wire::body_digest(&body));
    assert_eq!(
        ack.check(version, &key("busan-03"), "busan-03", 1, &body),
        Ok(())
    );
    assert_eq!(
        ack.check(version, &key("seoul-01"), "busan-03", 1, &body),
        Err(sangdam_wire::AckError::BadSignature)
    );
    assert!(t.storage.contains("busan-03", 1).unwrap());
    assert!(!t.storage.contains("busan-03", 2).unwrap());
    assert_eq!(t.storage.batches().unwrap(), vec![b]);
    let stats = t.hub.stats();
    assert_eq!(
        (stats.accepted, stats.duplicates, stats.rejected()),
        (1, 0, 0)
    );
    // Arrival time is kept for the fleet page.
    let records = t.storage.records().unwrap();
    assert!(records[0]
        .received_unix
        .is_some_and(|r| r >= ack.hub_unix - 5));
}

#[test]
fn duplicate_is_409_with_a_duplicate_ack_and_stored_once() {
    let t = TestHub::start();
    let b = batch("seoul-01", 7);
    assert_eq!(upload(t.addr(), &b).status, 200);
    let reply = upload(t.addr(), &b);
    assert_eq!(reply.status, 409, "{}", reply.text());
    let ack = reply.ack();
    assert_eq!(
        (ack.device.as_str(), ack.seq, ack.duplicate),
        ("seoul-01", 7, true)
    );
    // A different batch body under the same seq (new content under a reused number) is
    // refused too and does not overwrite the first; it is a conflict, not a duplicate.
    let mut other = batch("seoul-01", 7);
    other.report.counters.calls += 1;
    assert_ne!(other, b);
    let reply = upload(t.addr(), &other);
    assert_eq!(reply.status, 409);
    assert!(
        Ack::decode(&reply.body).is_err(),
        "a conflict answered with an Ack"
    );
    assert_eq!(t.storage.count().unwrap(), 1);
    assert_eq!(t.storage.batches().unwrap(), vec![b]);
    let stats = t.hub.stats();
    assert_eq!(
        (stats.accepted, stats.duplicates, stats.conflicts),
        (1, 1, 1)
    );
    // The next seq is new.
    assert_eq!(upload(t.addr(), &batch("seoul-01", 8)).status, 200);
    assert_eq!(t.storage.count().unwrap(), 2);
}

#[test]
fn a_reused_seq_with_another_batch_is_a_signed_conflict_naming_the_next_seq() {
    let t = TestHub::start();
    for seq in 1..=4 {
        assert_eq!(upload(t.addr(), &batch("busan-03", seq)).status, 200);
    }
    // A rebuilt box starts at 1 again, with a new day's batch.
    let mut fresh = batch("busan-03", 1);
    fresh.header.period.first_day.0 += 50;
    let (body, sig) = signed(&fresh);
    let reply = post(t.addr(), Some("busan-03"), Some(&sig), &body);
    assert_eq!(reply.status, 409, "{}", reply.text());
    let (answer, version) = Answer::decode_versioned(&reply.body).unwrap();
    assert_eq!(version, WIRE_VERSION);
    let Answer::Conflict(c) = answer else {
        panic!("not a conflict: {answer:?}")
    };
    assert_eq!(
        c.check(version, &key("busan-03"), "busan-03", 1, &body),
        Ok(5)
    );
    assert_eq!(
        c.check(version, &key("seoul-01"), "busan-03", 1, &body),
        Err(AckError::BadSignature)
    );
    // The same batch under the number it was given is stored.
    fresh.header.seq = 5;
    assert_eq!(upload(t.addr(), &fresh).status, 200);
    // A version-2 box (which would drop its batch on a duplicate Ack) gets a 409 whose
    // body is no frame at all, so it keeps the batch.
    let mut old = batch("busan-03", 2);
    old.header.period.first_day.0 += 60;
    let mut body = old.encode().unwrap();
    body[0] = 2;
    let sig = sangdam_wire::sign(&key("busan-03"), &body);
    let reply = post(t.addr(), Some("busan-03"), Some(&sig), &body);
    assert_eq!(reply.status, 409);
    assert!(Ack::decode(&reply.body).is_err(), "{:?}", reply.body);
    assert!(reply.text().contains("update the box"), "{}", reply.text());
    assert_eq!(t.storage.count().unwrap(), 5);
    let stats = t.hub.stats();
    assert_eq!(
        (
            stats.accepted,
            stats.duplicates,
            stats.conflicts,
            stats.rejected()
        ),
        (5, 0, 2, 0)
    );
    let json: serde_json::Value = serde_json::from_slice(&t.view("/v1/stats").body).unwrap();
    assert_eq!(json["conflicts"], 2);
}

#[test]
fn concurrent_duplicates_store_once() {
    let t = TestHub::start();
    let (body, sig) = signed(&batch("busan-04", 3));
    let addr = t.addr();
    let n = 8;
    let barrier = Arc::new(Barrier::new(n));
    let statuses: Vec<u16> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..n)
            .map(|_| {
                let (body, sig, barrier) = (&body, &sig, barrier.clone());
                s.spawn(move || {
                    let agent = agent();
                    barrier.wait();
                    let reply = post_with(&agent, addr, Some("busan-04"), Some(sig), body);
                    let ack = reply.ack();
                    assert_eq!(ack.seq, 3);
                    assert_eq!(ack.duplicate, reply.status == 409);
                    reply.status
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(
        statuses.iter().filter(|&&s| s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|&&s| s == 409).count(),
        n - 1,
        "{statuses:?}"
    );
    assert_eq!(t.storage.count().unwrap(), 1);
    let stats = t.hub.stats();
    assert_eq!((stats.accepted, stats.duplicates), (1, n as u64 - 1));
}

#[test]
fn forged_signatures_are_401_and_store_nothing() {
    let t = TestHub::start();
    let (body, sig) = signed(&batch("busan-03", 1));
    // One byte of the body flipped after signing.
    let mut flipped = body.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0x01;
    let reply = post(t.addr(), Some("busan-03"), Some(&sig), &flipped);
    assert_eq!(reply.status, 401, "{}", reply.text());
    // Signed with another device's key.
    let other = sangdam_wire::sign(&key("seoul-01"), &body);
    assert_eq!(
        post(t.addr(), Some("busan-03"), Some(&other), &body).status,
        401
    );
    // A signature that is not hex, and none at all.
    assert_eq!(
        post(t.addr(), Some("busan-03"), Some("zz"), &body).status,
        401
    );
    assert_eq!(post(t.addr(), Some("busan-03"), None, &body).status, 401);
    nothing_stored(&t);
    let stats = t.hub.stats();
    assert_eq!(stats.bad_signature, 4, "{stats:?}");
    assert_eq!(stats.accepted, 0);
}

#[test]
fn unknown_or_missing_device_is_403() {
    let t = TestHub::start();
    let mut b = batch("busan-03", 1);
    b.header.device = "daegu-09".into();
    let body = b.encode().unwrap();
    let sig = sangdam_wire::sign(&key("daegu-09"), &body);
    let reply = post(t.addr(), Some("daegu-09"), Some(&sig), &body);
    assert_eq!(reply.status, 403);
    assert_eq!(
        reply.text().trim(),
        "forbidden",
        "the answer reveals nothing more"
    );
    assert_eq!(post(t.addr(), None, Some(&sig), &body).status, 403);
    // Header checks come before the signature: an unknown device with a garbage
    // signature is still 403.
    assert_eq!(post(t.addr(), Some("nobody"), Some("00"), b"x").status, 403);
    nothing_stored(&t);
    assert_eq!(t.hub.stats().unknown_device, 3);
}

#[test]
fn truncated_body_signed_over_the_truncated_bytes_is_400() {
    let t = TestHub::start();
    let (body, _) = signed(&batch("busan-03", 1));
    for cut in [body.len() - 1, body.len() / 2, 3, 1] {
        let short = &body[..cut];
        let sig = sangdam_wire::sign(&key("busan-03"), short);
        let reply = post(t.addr(), Some("busan-03"), Some(&sig), short);
        assert_eq!(reply.status, 400, "cut at {cut}: {}", reply.text());
        assert!(
            reply.text().contains("malformed"),
            "cut at {cut}: {}",
            reply.text()
        );
    }
    // An empty body, signed.
    let sig = sangdam_wire::sign(&key("busan-03"), b"");
    let reply = post(t.addr(), Some("busan-03"), Some(&sig), b"");
    assert_eq!(reply.status, 400);
    assert!(reply.text().contains("empty"), "{}", reply.text());
    // Trailing bytes after a whole batch.
    let mut long = body.clone();
    long.push(0);
    let sig = sangdam_wire::sign(&key("busan-03"), &long);
    assert_eq!(
        post(t.addr(), Some("busan-03"), Some(&sig), &long).status,
        400
    );
    nothing_stored(&t);
    assert_eq!(t.hub.stats().malformed, 6);
}

#[test]
fn unknown_version_is_400_with_the_wire_message() {
    let t = TestHub::start();
    let (mut body, _) = signed(&batch("busan-03", 1));
    body[0] = WIRE_VERSION + 1;
    let sig = sangdam_wire::sign(&key("busan-03"), &body);
    let reply = post(t.addr(), Some("busan-03"), Some(&sig), &body);
    assert_eq!(reply.status, 400);
    assert!(
        reply.text().contains(&format!(
            "wire version {} is not understood",
            WIRE_VERSION + 1
        )),
        "{}",
        reply.text()
    );
    // A report schema this hub does not know.
    let mut b = batch("busan-03", 1);
    b.header.schema = SCHEMA_VERSION + 1;
    let reply = upload(t.addr(), &b);
    assert_eq!(reply.status, 400);
    assert!(reply.text().contains("schema"), "{}", reply.text());
    nothing_stored(&t);
    assert_eq!(t.hub.stats().bad_version, 2);
}

/// The version-1 frame the version-1 box code wrote (sangdam-wire's fixture): device
/// busan-03, seq 41, 7 calls over three days, no neutral counts.
const V1_FRAME: &[u8] = include_bytes!("../../../wire/fixtures/v1-full.bin");

#[test]
fn version_1_and_version_2_batches_are_both_accepted() {
    let t = TestHub::start();
    // A box not yet updated: stored, and acknowledged in version 1, which it reads.
    assert_eq!(V1_FRAME[0], 1);
    let sig = sangdam_wire::sign(&key("busan-03"), V1_FRAME);
    let reply = post(t.addr(), Some("busan-03"), Some(&sig), V1_FRAME);
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.body[0], 1, "a version-1 box gets a version-1 Ack");
    let ack = reply.ack();
    assert_eq!(
        (ack.device.as_str(), ack.seq, ack.duplicate),
        ("busan-03", 41, false)
    );
    // The unsigned version-1 layout, exactly: a version-1 box reads nothing after it.
    let mut v1 = vec![1, 8];
    v1.extend_from_slice(b"busan-03");
    v1.push(41);
    v1.push(0);
    assert_eq!(&reply.body[..v1.len()], &v1[..]);
    assert!(reply.body.len() <= v1.len() + 10, "{:?}", reply.body);
    // Its duplicate is answered in version 1 too.
    let again = post(t.addr(), Some("busan-03"), Some(&sig), V1_FRAME);
    assert_eq!((again.status, again.body[0]), (409, 1));
    // An updated box with neutral counts: acknowledged in version 2.
    let mut b = batch("busan-03", 1);
    b.report.counters.neutral_calls = 5;
    b.report.counters.neutral_utterances = 40;
    let reply = upload(t.addr(), &b);
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.body[0], WIRE_VERSION);
    assert_eq!(reply.ack().seq, 1);
    // Both are in the store as sent, and decode (the old one with no neutral calls).
    let mut stored = t.storage.batches().unwrap();
    stored.sort_by_key(|b| b.header.seq);
    assert_eq!(stored.len(), 2);
    assert_eq!(stored[0], b);
    assert_eq!(stored[1], Batch::decode(V1_FRAME).unwrap());
    assert_eq!(stored[1].report.counters.calls, 7);
    assert_eq!(stored[1].report.counters.neutral_calls, 0);
    let stats = t.hub.stats();
    assert_eq!(
        (
            stats.accepted,
            stats.accepted_v1,
            stats.duplicates,
            stats.rejected()
        ),
        (2, 1, 1, 0)
    );
    let json: serde_json::Value = serde_json::from_slice(&t.view("/v1/stats").body).unwrap();
    assert_eq!(json["accepted_v1"], 1);
    // The summary adds them: busan-03's neutral calls are the version-2 batch's alone.
    let s: serde_json::Value = serde_json::from_slice(&t.view("/v1/summary").body).unwrap();
    let busan = &s["branches"][0];
    assert_eq!(busan["branch"], "부산 3지점");
    assert_eq!(busan["calls"], 7 + b.report.counters.calls);
    assert_eq!(busan["neutral_calls"], 5);
    assert_eq!(
        busan["positive_calls"],
        3 + b.report.counters.positive_calls
    );
}

#[test]
fn frame_device_must_match_the_header() {
    let t = TestHub::start();
    // busan-03 signs a frame that claims to be seoul-01's.
    let b = batch("seoul-01", 1);
    let body = b.encode().unwrap();
    let sig = sangdam_wire::sign(&key("busan-03"), &body);
    let reply = post(t.addr(), Some("busan-03"), Some(&sig), &body);
    assert_eq!(reply.status, 400);
    assert!(reply.text().contains("seoul-01"), "{}", reply.text());
    nothing_stored(&t);
    assert_eq!(t.hub.stats().device_mismatch, 1);
}

#[test]
fn oversized_bodies_are_413_without_being_read() {
    let t = TestHub::start();
    // Announced over the limit: refused from the header, before any body byte is sent.
    for length in [MAX_BODY_BYTES as u64 + 1, 1 << 40, 1 << 50] {
        let reply = raw(
            t.addr(),
            format!(
                "POST /v1/batches HTTP/1.1\r\nHost: hub\r\nX-Sangdam-Device: busan-03\r\n\
                 X-Sangdam-Signature: 00\r\nContent-Length: {length}\r\n\r\n"
            )
            .as_bytes(),
        );
        assert_eq!(status_of(&reply), 413, "Content-Length {length}: {reply}");
        assert!(
            reply.to_ascii_lowercase().contains("connection: close"),
            "{reply}"
        );
    }
    // A real oversized body, signed, sent by a client that does not wait for an answer.
    let big = vec![1u8; MAX_BODY_BYTES + 10];
    let sig = sangdam_wire::sign(&key("busan-03"), &big);
    let agent = agent();
    let mut request = agent
        .post(format!("http://{}/v1/batches", t.addr()))
        .header("X-Sangdam-Device", "busan-03")
        .header("X-Sangdam-Signature", &sig);
    request = request.header("Content-Type", "application/octet-stream");
    // The hub may close before the whole body is written; either way it is not a 2xx.
    match request.send(&big[..]) {
        Ok(response) => assert_eq!(response.status().as_u16(), 413),
        Err(e) => eprintln!("the hub closed the connection during the upload: {e}"),
    }
    // u64::MAX and beyond are refused by hyper's parser (431 or 400: hyper's choice),
    // a length that is no number is malformed HTTP, and so are conflicting lengths.
    for length in [
        (u64::MAX - 1).to_string(),
        u64::MAX.to_string(),
        "99999999999999999999999".into(),
    ] {
        let reply = raw(
            t.addr(),
            format!("POST /v1/batches HTTP/1.1\r\nContent-Length: {length}\r\n\r\n").as_bytes(),
        );
        assert!(matches!(status_of(&reply), 400 | 413 | 431), "{reply}");
    }
    let reply = raw(
        t.addr(),
        b"POST /v1/batches HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
    );
    assert_eq!(status_of(&reply), 400, "{reply}");
    let reply = raw(
        t.addr(),
        b"POST /v1/batches HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello",
    );
    assert_eq!(status_of(&reply), 400, "{reply}");
    nothing_stored(&t);
    assert!(t.hub.stats().too_large >= 3, "{:?}", t.hub.stats());
    // Still serving.
    assert_eq!(upload(t.addr(), &batch("busan-03", 1)).status, 200);
}

#[test]
fn http_level_refusals() {
    let t = TestHub::start();
    let (body, sig) = signed(&batch("busan-03", 1));
    // Chunked uploads are read up to the limit like any other body.
    let mut request = format!(
        "POST /v1/batches HTTP/1.1\r\nX-Sangdam-Device: busan-03\r\nX-Sangdam-Signature: {sig}\r\n\
         Transfer-Encoding: chunked\r\n\r\n{:x}\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(&body);
    request.extend_from_slice(b"\r\n0\r\n\r\nGET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n");
    let reply = raw(t.addr(), &request);
    assert_eq!(status_of(&reply), 200, "{reply}");
    assert_eq!(t.storage.count().unwrap(), 1);
    // A chunked body that goes past the limit is cut off with 413.
    let mut request = b"POST /v1/batches HTTP/1.1\r\nX-Sangdam-Device: busan-03\r\nX-Sangdam-Signature: 00\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    let chunk = vec![b'x'; 64 * 1024];
    for _ in 0..=(MAX_BODY_BYTES / chunk.len()) {
        request.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        request.extend_from_slice(&chunk);
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"0\r\n\r\n");
    assert_eq!(status_of(&raw(t.addr(), &request)), 413);
    assert_eq!(t.storage.count().unwrap(), 1);
    // Wrong method, unknown path, garbage, a huge header.
    assert_eq!(
        status_of(&raw(
            t.addr(),
            b"GET /v1/batches HTTP/1.1\r\nConnection: close\r\n\r\n"
        )),
        405
    );
    assert_eq!(
        status_of(&raw(
            t.addr(),
            b"GET /nope HTTP/1.1\r\nConnection: close\r\n\r\n"
        )),
        404
    );
    // The dashboard's paths are not on the ingest listener.
    for path in ["/", "/v1/summary", "/v1/stats", "/login"] {
        assert_eq!(
            get(t.addr(), path).status,
            404,
            "{path} on the ingest listener"
        );
    }
    assert_eq!(status_of(&raw(t.addr(), b"HELLO\r\n\r\n")), 400);
    let http2 = status_of(&raw(t.addr(), b"GET / HTTP/2.0\r\n\r\n"));
    assert!(matches!(http2, 400 | 505), "{http2}");
    let huge = format!("GET / HTTP/1.1\r\nX-Junk: {}\r\n\r\n", "a".repeat(20_000));
    assert_eq!(status_of(&raw(t.addr(), huge.as_bytes())), 431);
    let many: String = (0..100).map(|i| format!("X-H{i}: v\r\n")).collect();
    let many = format!("GET /healthz HTTP/1.1\r\n{many}\r\n");
    assert_eq!(status_of(&raw(t.addr(), many.as_bytes())), 431);
    assert_eq!(t.storage.count().unwrap(), 1);
    assert_eq!(get(t.addr(), "/healthz").status, 200);
}

#[test]
fn keep_alive_and_expect_continue() {
    let t = TestHub::start();
    // Two uploads on one connection, the second with Expect: 100-continue.
    let (b1, s1) = signed(&batch("busan-03", 1));
    let (b2, s2) = signed(&batch("busan-03", 2));
    let mut request = format!(
        "POST /v1/batches HTTP/1.1\r\nX-Sangdam-Device: busan-03\r\nX-Sangdam-Signature: {s1}\r\nContent-Length: {}\r\n\r\n",
        b1.len()
    )
    .into_bytes();
    request.extend_from_slice(&b1);
    request.extend_from_slice(
        format!(
            "POST /v1/batches HTTP/1.1\r\nX-Sangdam-Device: busan-03\r\nX-Sangdam-Signature: {s2}\r\n\
             Expect: 100-continue\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
            b2.len()
        )
        .as_bytes(),
    );
    request.extend_from_slice(&b2);
    let reply = raw(t.addr(), &request);
    let statuses: Vec<&str> = reply
        .match_indices("HTTP/1.1 ")
        .map(|(i, _)| &reply[i + 9..i + 12])
        .collect();
    assert_eq!(statuses, ["200", "100", "200"], "{reply}");
    assert_eq!(t.storage.count().unwrap(), 2);
}

#[test]
fn stats_add_up() {
    let t = TestHub::start();
    assert_eq!(t.hub.stats(), HubStats::default());
    upload(t.addr(), &batch("busan-03", 1));
    upload(t.addr(), &batch("busan-03", 1));
    post(t.addr(), Some("busan-03"), Some("00"), b"x");
    let stats = t.hub.stats();
    assert_eq!(
        (stats.accepted, stats.duplicates, stats.rejected()),
        (1, 1, 1)
    );
    let json: serde_json::Value = serde_json::from_slice(&t.view("/v1/stats").body).unwrap();
    assert_eq!(json["accepted"], 1);
    assert_eq!(json["bad_signature"], 1);
}

#[test]
fn slow_requests_are_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    let storage = std::sync::Arc::new(sangdam_hub::SledStorage::open(dir.path()).unwrap());
    let config = sangdam_hub::HubConfig {
        header_timeout: std::time::Duration::from_millis(300),
        body_timeout: std::time::Duration::from_millis(300),
        ..sangdam_hub::HubConfig::new("127.0.0.1:0".parse().unwrap())
    };
    let hub = sangdam_hub::serve(config, registry(), storage.clone()).unwrap();
    // Half a head, then nothing: the hub closes the connection instead of waiting (hyper
    // may or may not write a 408 first).
    let started = std::time::Instant::now();
    let reply = raw(hub.addr(), b"POST /v1/batches HTTP/1.1\r\nX-Sangdam-Dev");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "the half head held the connection for {:?}",
        started.elapsed()
    );
    assert!(reply.is_empty() || status_of(&reply) == 408, "{reply}");
    // A whole head announcing 100 bytes, then 10 of them: 408 from the body deadline.
    let reply = raw(
        hub.addr(),
        b"POST /v1/batches HTTP/1.1\r\nX-Sangdam-Device: busan-03\r\nContent-Length: 100\r\n\r\n0123456789",
    );
    assert_eq!(status_of(&reply), 408, "{reply}");
    assert_eq!(hub.stats().incomplete, 1);
    // An idle keep-alive connection is closed after the header timeout too.
    let (body, sig) = signed(&batch("busan-03", 1));
    let mut request = format!(
        "POST /v1/batches HTTP/1.1\r\nX-Sangdam-Device: busan-03\r\nX-Sangdam-Signature: {sig}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(&body);
    let started = std::time::Instant::now();
    let reply = raw(hub.addr(), &request);
    assert_eq!(status_of(&reply), 200, "{reply}");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    assert_eq!(storage.count().unwrap(), 1);
    hub.stop();
}
