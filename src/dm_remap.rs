// SPDX-License-Identifier: GPL-2.0

//! dm-remap: a device-mapper target that keeps an ageing disk usable.
//!
//! I/O passes through to a main device; blocks that fail writes are moved onto a spare
//! device transparently to the filesystem above. Everything that does not need the
//! kernel (parsing, on-disk format, remap table, allocator, statistics, prediction)
//! lives in `rust/remap-core`, compiled into this crate below and tested on the host;
//! the files here are the kernel glue: the target's hooks, the worker, the background
//! scan, the sampler that feeds the prediction engine, and the sysfs files.

mod bindings;
mod counters;
mod engine;
mod loss;
mod message;
mod meta_io;
mod reserve;
mod resultbuf;
mod sampler;
mod scan;
mod sysfs;
mod target;
mod timer;
mod worker;

// remap-core is a normal crate on the host and a module of this crate here. Not every
// item it exports is used by the kernel glue, and its public items are public for the
// host build, hence the allowances.
#[allow(dead_code, unreachable_pub, missing_docs, clippy::all)]
#[path = "../rust/remap-core/src/lib.rs"]
mod remap_core;

use kernel::prelude::*;
use target::DmRemap;

module! {
    type: DmRemap,
    name: "dm_remap",
    author: "dm-remap developers",
    description: "device-mapper target that remaps bad blocks to spare devices",
    license: "GPL",
}
