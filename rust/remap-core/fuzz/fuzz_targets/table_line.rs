//! Arbitrary bytes as a table line's arguments (split on whitespace, as dm core
//! does): parsing never panics, and a line that parses prints a canonical form that
//! parses to the same configuration and prints the same again.
#![no_main]

mod words;

use libfuzzer_sys::fuzz_target;
use remap_core::meta::MAX_SPARES;
use remap_core::table_line::TableConfig;

/// The names the canonical form gives the spares: `7:1`, `7:2`, ...
const NAMES: [&str; MAX_SPARES] = [
    "7:1", "7:2", "7:3", "7:4", "7:5", "7:6", "7:7", "7:8", "7:9", "7:10", "7:11", "7:12", "7:13",
    "7:14", "7:15", "7:16",
];

fuzz_target!(|data: &[u8]| {
    let args = words::words(data);
    let Ok(cfg) = TableConfig::parse(&args) else {
        return;
    };
    let names = &NAMES[..cfg.spare_count];
    let mut printed = String::new();
    cfg.write_table(&mut printed, "7:0", names, cfg.uuid.as_ref())
        .expect("printing a parsed line");
    let again: Vec<&[u8]> = printed
        .split_ascii_whitespace()
        .map(str::as_bytes)
        .collect();
    let cfg2 = TableConfig::parse(&again).expect("the canonical form parses");
    // The canonical form names the devices by number and never carries format_spare.
    let mut spares = [&b""[..]; MAX_SPARES];
    for (s, n) in spares.iter_mut().zip(names) {
        *s = n.as_bytes();
    }
    let norm = TableConfig {
        main: b"7:0",
        spares,
        format_spare: false,
        ..cfg
    };
    assert_eq!(norm, cfg2, "canonical form of {printed:?}");
    let mut printed2 = String::new();
    cfg2.write_table(&mut printed2, "7:0", names, cfg2.uuid.as_ref())
        .expect("printing");
    assert_eq!(printed, printed2);
});
