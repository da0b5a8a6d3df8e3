//! Acknowledged means durable: a new hub on the same store still has every batch and
//! still refuses their replays.

use sangdam_hub::Storage;

use crate::common::*;

#[test]
fn restart_keeps_batches_and_rejects_replays() {
    let dir = tempfile::tempdir().unwrap();
    let sent: Vec<_> = (1..=3)
        .flat_map(|seq| [batch("busan-03", seq), batch("seoul-01", seq)])
        .collect();
    {
        let (hub, storage) = start_in(dir.path());
        for b in &sent {
            assert_eq!(upload(hub.addr(), b).status, 200);
        }
        assert_eq!(storage.count().unwrap(), 6);
        hub.stop();
        // The hub's threads are joined; dropping the last handle closes the store.
        drop(storage);
    }
    let (hub, storage) = start_in(dir.path());
    assert_eq!(storage.count().unwrap(), 6);
    let mut stored = storage.batches().unwrap();
    let mut expected = sent.clone();
    let order = |b: &sangdam_wire::Batch| (b.header.device.clone(), b.header.seq);
    stored.sort_by_key(order);
    expected.sort_by_key(order);
    assert_eq!(stored, expected);
    for b in &sent {
        let reply = upload(hub.addr(), b);
        assert_eq!(
            reply.status, 409,
            "replay of {} #{}",
            b.header.device, b.header.seq
        );
        assert!(reply.ack().duplicate);
    }
    assert_eq!(upload(hub.addr(), &batch("busan-03", 4)).status, 200);
    assert_eq!(storage.count().unwrap(), 7);
    assert_eq!(hub.stats().duplicates, 6);
}
