//! Arbitrary bytes as a table line's arguments (split on whitespace, as dm core
//! does): parsing never panics, and a line that parses prints a canonical form that
//! parses to the same configuration and prints the same again.
#![no_main]

mod words;

use libfuzzer_sys::fuzz_target;
use remap_core::table_line::TableConfig;

fuzz_target!(|data: &[u8]| {
    let args = words::words(data);
    let Ok(cfg) = TableConfig::parse(&args) else {
        return;
    };
    let mut printed = String::new();
    cfg.write_table(&mut printed, "7:0", "7:1", cfg.uuid.as_ref())
        .expect("printing a parsed line");
    let again: Vec<&[u8]> = printed
        .split_ascii_whitespace()
        .map(str::as_bytes)
        .collect();
    let cfg2 = TableConfig::parse(&again).expect("the canonical form parses");
    // The canonical form names the devices by number and never carries format_spare.
    let norm = TableConfig {
        main: b"7:0",
        spare: b"7:1",
        format_spare: false,
        ..cfg
    };
    assert_eq!(norm, cfg2, "canonical form of {printed:?}");
    let mut printed2 = String::new();
    cfg2.write_table(&mut printed2, "7:0", "7:1", cfg2.uuid.as_ref())
        .expect("printing");
    assert_eq!(printed, printed2);
});
