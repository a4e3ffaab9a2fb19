//! Shared by the fuzz targets: the round-trip oracle.

use remap_core::layout::COPY_MAX_BYTES;
use remap_core::meta::{decode, encode, Decoded, SpareInfo, State};
use remap_core::remap_table::Entry;

/// For a copy that decodes: encoding its state again gives a copy that decodes to
/// the same state (decode ∘ encode = id on valid states).
pub fn round_trip(d: &Decoded<'_>) {
    let spares: Vec<SpareInfo> = (0..d.spare_count()).map(|i| d.spare(i).expect("spare")).collect();
    let entries: Vec<Entry> = d.entries().collect();
    let st = State {
        uuid: d.uuid,
        version: d.version,
        fingerprint: d.fingerprint,
        config: d.config,
        spares: &spares,
        entries: &entries,
        scan: d.scan,
    };
    let mut buf = vec![0u8; COPY_MAX_BYTES];
    let n = encode(&st, d.copy_sector, &mut buf).expect("a decoded state encodes");
    let e = decode(&buf[..n], d.copy_sector).expect("an encoded state decodes");
    assert_eq!(e.uuid, d.uuid);
    assert_eq!(e.version, d.version);
    assert_eq!(e.fingerprint, d.fingerprint);
    assert_eq!(e.config, d.config);
    assert_eq!(e.scan, d.scan);
    assert!(e.entries().eq(d.entries()));
    assert!((0..d.spare_count()).all(|i| e.spare(i) == d.spare(i)));
}
