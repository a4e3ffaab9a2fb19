//! Helpers shared by the commit tests.

use remap_core::meta::{Config, Fingerprint, ScanCheckpoint, SpareInfo, State, IDENTITY_LEN};
use remap_core::remap_table::Entry;

/// A state of setup `uuid` over a 8 GiB main device with 4 KiB blocks.
pub fn state<'a>(
    uuid: [u8; 16],
    spares: &'a [SpareInfo],
    entries: &'a [Entry],
    version: u64,
    scan: ScanCheckpoint,
) -> State<'a> {
    State {
        uuid,
        version,
        fingerprint: Fingerprint {
            main_sectors: 1 << 24,
            logical_block_bytes: 512,
            physical_block_bytes: 4096,
            identity: [0; IDENTITY_LEN],
        },
        config: Config {
            block_bytes: 4096,
            read_retries: 1,
            target_sectors: 1 << 24,
            flags: 0,
            scan_interval_s: 0,
            scan_rate_kibs: 0,
            predict_interval_s: 0,
            alert_min_level: 0,
        },
        spares,
        entries,
        scan,
    }
}
