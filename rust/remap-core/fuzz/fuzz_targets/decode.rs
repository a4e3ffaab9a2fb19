//! Arbitrary bytes as a metadata copy: decode never panics, and what decodes
//! round-trips.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use remap_core::layout::COPY_SECTORS;
use remap_core::meta::decode;

fuzz_target!(|data: &[u8]| {
    for &s in &COPY_SECTORS {
        if let Ok(d) = decode(data, s) {
            common::round_trip(&d);
        }
    }
});
