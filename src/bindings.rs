// SPDX-License-Identifier: GPL-2.0

//! Bindings for the device-mapper API and the C shim.
//!
//! C header: [include/linux/device-mapper.h](srctree/include/linux/device-mapper.h)
//!
//! Generated at build time by the module's Kbuild from `include/dm_remap.h`; types the
//! kernel's own bindings provide come from `kernel::bindings`.

#![allow(
    non_camel_case_types,
    non_upper_case_globals,
    non_snake_case,
    dead_code,
    missing_docs,
    unreachable_pub,
    improper_ctypes,
    unsafe_op_in_unsafe_fn,
    clippy::all,
    clippy::undocumented_unsafe_blocks
)]

include!("bindings_generated.rs");
