// SPDX-License-Identifier: GPL-2.0

//! Counters and the status lines.
//!
//! C header: [include/linux/device-mapper.h](srctree/include/linux/device-mapper.h)
//!
//! `dmsetup status` must answer while the worker is busy with a dying disk (synchronous
//! retries can take minutes): nothing here takes the core mutex. The I/O counters are
//! atomics updated from `map`/`end_io`; what only writers change (spare usage, metadata
//! version, last commit result) is mirrored into atomics by the writers ([`Mirror`]).

use crate::engine::{FENCED, PENDING, REMAPPED};
use crate::remap_core::meta::MAX_SPARES;
use crate::target::{Remap, VERSION};
use core::fmt::Write;
use core::sync::atomic::{
    AtomicI32, AtomicU32, AtomicU64, AtomicUsize,
    Ordering::{Acquire, Relaxed, Release},
};
use kernel::alloc::flags::__GFP_ZERO;
use kernel::prelude::*;

/// I/O counters, updated lock-free from `map` and `end_io`.
#[derive(Default)]
pub(crate) struct Stats {
    pub(crate) reads: AtomicU64,
    pub(crate) writes: AtomicU64,
    pub(crate) flushes: AtomicU64,
    pub(crate) read_sectors: AtomicU64,
    pub(crate) write_sectors: AtomicU64,
    pub(crate) read_errors: AtomicU64,
    pub(crate) write_errors: AtomicU64,
    /// Blocks remapped since the target was created.
    pub(crate) remaps: AtomicU64,
    /// Failed reads that a retry recovered.
    pub(crate) read_retried_ok: AtomicU64,
    /// Failed writes completed successfully through a remap.
    pub(crate) write_errors_hidden: AtomicU64,
    /// Failed writes that the main device took when they were written again.
    pub(crate) write_retried_ok: AtomicU64,
    /// Failed I/O of the spare (each one puts the target in mode `failed`).
    pub(crate) spare_errors: AtomicU64,
    /// Reads the main device failed (each attempt that came back failed to `end_io`,
    /// whatever became of the bio): the samples' read errors.
    pub(crate) main_read_errors: AtomicU64,
    /// Writes the main device failed, likewise.
    pub(crate) main_write_errors: AtomicU64,
}

impl Stats {
    /// Zeroes every counter.
    pub(crate) fn clear(&self) {
        for c in [
            &self.reads,
            &self.writes,
            &self.flushes,
            &self.read_sectors,
            &self.write_sectors,
            &self.read_errors,
            &self.write_errors,
            &self.remaps,
            &self.read_retried_ok,
            &self.write_errors_hidden,
            &self.write_retried_ok,
            &self.spare_errors,
            &self.main_read_errors,
            &self.main_write_errors,
        ] {
            c.store(0, Relaxed);
        }
    }

    /// The `stats` message answer.
    pub(crate) fn write(&self, out: &mut dyn Write, sep: &str) -> core::fmt::Result {
        write!(
            out,
            "reads={r}{sep}writes={w}{sep}flushes={f}{sep}read_sectors={rs}{sep}write_sectors={ws}{sep}read_errors={re}{sep}write_errors={we}{sep}remaps={rm}{sep}read_retried_ok={rr}{sep}write_errors_hidden={wh}{sep}write_retried_ok={wr}{sep}spare_errors={se}{sep}main_read_errors={mr}{sep}main_write_errors={mw}",
            r = self.reads.load(Relaxed),
            w = self.writes.load(Relaxed),
            f = self.flushes.load(Relaxed),
            rs = self.read_sectors.load(Relaxed),
            ws = self.write_sectors.load(Relaxed),
            re = self.read_errors.load(Relaxed),
            we = self.write_errors.load(Relaxed),
            rm = self.remaps.load(Relaxed),
            rr = self.read_retried_ok.load(Relaxed),
            wh = self.write_errors_hidden.load(Relaxed),
            wr = self.write_retried_ok.load(Relaxed),
            se = self.spare_errors.load(Relaxed),
            mr = self.main_read_errors.load(Relaxed),
            mw = self.main_write_errors.load(Relaxed),
        )
    }
}

/// Writer-side values that status shows, copied out by the writers (under the core
/// mutex) after every change, read without the mutex.
#[derive(Default)]
pub(crate) struct Mirror {
    pub(crate) used: AtomicU64,
    pub(crate) free: AtomicU64,
    pub(crate) version: AtomicU64,
    pub(crate) last_commit: AtomicI32,
    /// What `spare_list` and `spare_stats` show of the pool (a separate allocation: it
    /// would double the target's state, which the constructor builds on its stack).
    pub(crate) pool: Option<KBox<PoolMirror>>,
}

/// The spares of the pool as the spare messages show them.
pub(crate) struct PoolMirror {
    spares: [SpareMirror; MAX_SPARES],
    /// How many of `spares` hold a spare (stored after them: Release/Acquire).
    nspares: AtomicUsize,
}

impl PoolMirror {
    /// A zeroed one, allocated without a copy on the stack.
    pub(crate) fn new() -> Result<KBox<PoolMirror>> {
        let b = KBox::<PoolMirror>::new_uninit(GFP_KERNEL | __GFP_ZERO)?;
        // SAFETY: the allocation is zeroed, and all-zero bytes are a valid PoolMirror
        // (atomic integers and arrays of them).
        Ok(unsafe { b.assume_init() })
    }
}

/// One spare as the spare messages show it.
struct SpareMirror {
    uuid: [AtomicU64; 2],
    sectors: AtomicU64,
    logical_block_bytes: AtomicU32,
    priority: AtomicU32,
    state: AtomicU32,
    blocks: AtomicU64,
    used: AtomicU64,
}

/// A spare as [`Remap::spare_view`] gives it.
pub(crate) struct SpareView {
    pub(crate) uuid: [u8; 16],
    pub(crate) sectors: u64,
    pub(crate) logical_block_bytes: u32,
    pub(crate) priority: u32,
    /// 0 active, 1 draining, 2 failed.
    pub(crate) state: u32,
    pub(crate) blocks: u64,
    pub(crate) used: u64,
}

impl Remap {
    /// Copies the writer-side values status shows. Callers hold the core mutex.
    pub(crate) fn mirror(&self, core: &crate::meta_io::Core) {
        self.mirror.used.store(core.used_blocks(), Relaxed);
        self.mirror.free.store(core.free_blocks(), Relaxed);
        self.mirror.version.store(core.version(), Relaxed);
        self.mirror.last_commit.store(core.last_commit, Relaxed);
        let Some(pool) = &self.mirror.pool else {
            return;
        };
        let mut n = 0;
        for (m, (sp, info)) in pool
            .spares
            .iter()
            .zip(core.spares.iter().zip(core.infos.iter()))
        {
            let (a, b) = info.uuid.split_at(8);
            let word = |h: &[u8]| {
                let mut w = [0u8; 8];
                w.copy_from_slice(h);
                u64::from_le_bytes(w)
            };
            m.uuid[0].store(word(a), Relaxed);
            m.uuid[1].store(word(b), Relaxed);
            m.sectors.store(info.sectors, Relaxed);
            m.logical_block_bytes
                .store(info.logical_block_bytes, Relaxed);
            m.priority.store(u32::from(info.priority), Relaxed);
            m.state.store(u32::from(info.state), Relaxed);
            m.blocks.store(sp.nblocks, Relaxed);
            m.used.store(sp.used, Relaxed);
            n += 1;
        }
        // After the spares' values: a reader that sees the count sees them (or the
        // values of a later mirror).
        pool.nspares.store(n, Release);
    }

    /// The pool's spares as of the last change the writers mirrored, without the core
    /// mutex (which the worker holds through slow I/O): the spare messages answer at
    /// once. Each value is one the writers stored; values of one spare may come from
    /// two neighbouring changes, as status's may.
    pub(crate) fn spare_view(&self) -> impl Iterator<Item = SpareView> + '_ {
        let pool = self.mirror.pool.as_deref();
        let n = pool.map_or(0, |p| p.nspares.load(Acquire));
        pool.into_iter()
            .flat_map(|p| p.spares.iter())
            .take(n)
            .map(|m| {
                let mut uuid = [0u8; 16];
                let (a, b) = uuid.split_at_mut(8);
                a.copy_from_slice(&m.uuid[0].load(Relaxed).to_le_bytes());
                b.copy_from_slice(&m.uuid[1].load(Relaxed).to_le_bytes());
                SpareView {
                    uuid,
                    sectors: m.sectors.load(Relaxed),
                    logical_block_bytes: m.logical_block_bytes.load(Relaxed),
                    priority: m.priority.load(Relaxed),
                    state: m.state.load(Relaxed),
                    blocks: m.blocks.load(Relaxed),
                    used: m.used.load(Relaxed),
                }
            })
    }

    /// The INFO status line (fields documented in the admin guide).
    pub(crate) fn write_info(&self, out: &mut dyn Write) -> core::fmt::Result {
        // One pass over the table (status is not the hot path).
        let (remapped, pending, fenced) = self.published.read(|s| {
            s.map_or((0, 0, 0), |s| {
                s.items()
                    .iter()
                    .fold((0u64, 0u64, 0u64), |(r, p, f), e| match e.state {
                        REMAPPED => (r + 1, p, f),
                        PENDING => (r, p + 1, f),
                        FENCED => (r, p, f + 1),
                        _ => (r, p, f),
                    })
            })
        });
        let m = &self.mirror;
        let s = &self.stats;
        write!(
            out,
            "{} {} {} {} {} {} {} {} {} {} {} {} {} {} {} {} {}",
            self.cfg.block_size.bytes(),
            self.spare_blocks(),
            s.reads.load(Relaxed),
            s.writes.load(Relaxed),
            s.flushes.load(Relaxed),
            s.read_sectors.load(Relaxed),
            s.write_sectors.load(Relaxed),
            s.read_errors.load(Relaxed),
            s.write_errors.load(Relaxed),
            remapped,
            pending,
            m.used.load(Relaxed),
            m.free.load(Relaxed),
            s.remaps.load(Relaxed),
            m.version.load(Relaxed),
            m.last_commit.load(Relaxed),
            if self.is_failed() { "failed" } else { "ok" }
        )?;
        out.write_char(' ')?;
        self.write_scan_info(out)?;
        write!(out, " {fenced} ")?;
        self.write_health_info(out)
    }

    /// The IMA measurement line (the first spare as `spare_dev`, as with one spare).
    pub(crate) fn write_ima(&self, out: &mut dyn Write) -> core::fmt::Result {
        write!(
            out,
            "target_name=remap,target_version={}.{}.{},main_dev={},spare_dev={}",
            VERSION[0],
            VERSION[1],
            VERSION[2],
            self.main_name(),
            self.spare_name(),
        )?;
        // Further spares of a pool: `spare_dev_1=..`, `spare_dev_2=..`.
        for (i, name) in self
            .spare_names()
            .iter()
            .enumerate()
            .take(self.nspares)
            .skip(1)
        {
            write!(out, ",spare_dev_{i}={name}")?;
        }
        write!(
            out,
            ",uuid={},block_size={},read_retries={},max_remap_rate={},mode={};",
            crate::remap_core::uuid::UuidText(&self.uuid),
            self.cfg.block_size.bytes(),
            self.cfg.read_retries,
            self.cfg.max_remap_rate,
            if self.is_failed() { "failed" } else { "ok" }
        )
    }
}
