//! remap-core: the part of dm-remap that does not need the kernel.
//!
//! This crate is built twice from the same source: as a normal `no_std` crate for
//! host tests, fuzzing and `remapctl`, and inside the kernel module through
//! `#[path = "../rust/remap-core/src/lib.rs"] mod remap_core;`. For the second build
//! every path between modules is written with `super::` (never `crate::`), nothing
//! allocates, nothing is `unsafe`, and all arithmetic is integer and checked.
#![cfg_attr(not(any(MODULE, test)), no_std)]
#![forbid(unsafe_code)]
#![cfg_attr(
    not(test),
    deny(
        clippy::float_arithmetic,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

pub mod alloc;
pub mod crc;
pub mod cursor;
pub mod error;
pub mod fixed;
pub mod history;
pub mod judge;
pub mod latency;
pub mod layout;
pub mod log;
pub mod message;
pub mod meta;
pub mod pool;
pub mod predict;
pub mod remap_table;
pub mod repair;
pub mod route;
pub mod sampling;
pub mod scan;
pub mod stats;
pub mod storm;
pub mod table_line;
pub mod units;
pub mod uuid;
