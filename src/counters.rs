// SPDX-License-Identifier: GPL-2.0

//! Counters and the status lines.
//!
//! C header: [include/linux/device-mapper.h](srctree/include/linux/device-mapper.h)
//!
//! `dmsetup status` must answer while the worker is busy with a dying disk (synchronous
//! retries can take minutes): nothing here takes the core mutex. The per-bio counts are
//! per-CPU counters ([`IoCounters`]) and the rarer events atomics, updated from
//! `map`/`end_io`; what only writers change (spare usage, metadata version, last commit
//! result) is mirrored into atomics by the writers ([`Mirror`]).

use crate::bindings as b;
use crate::engine::{FENCED, FENCED_MOVED, PENDING, REMAPPED};
use crate::remap_core::meta::MAX_SPARES;
use crate::target::{Remap, VERSION};
use core::fmt::Write;
use core::sync::atomic::{
    AtomicI32, AtomicU32, AtomicU64, AtomicUsize,
    Ordering::{AcqRel, Acquire, Relaxed, Release},
};
use kernel::alloc::flags::__GFP_ZERO;
use kernel::prelude::*;

/// The hot path's per-bio counts, kept per CPU (`dmr_iostat_*`): `map` adds to its
/// own CPU's counters with plain `this_cpu` instructions instead of two atomic adds
/// to cache lines every CPU writes. A read sums every CPU's counters (status,
/// messages, the sampler and the scanner, a few times a second at most).
///
/// Zeroing other CPUs' counters would race with their adds (`this_cpu_add` is not
/// atomic against a remote store), so [`IoCounters::take`] moves a base instead: a
/// counter reads as its sum minus its base.
///
/// # Invariants
/// `pcpu` comes from `dmr_iostat_alloc`, is not null, and is freed only by `drop`.
pub(crate) struct IoCounters {
    pcpu: *mut core::ffi::c_void,
    base: [AtomicU64; IO_COUNT],
}

/// How many counters [`IoCounters`] has (`DMR_IOSTAT_COUNT`).
const IO_COUNT: usize = b::DMR_IOSTAT_COUNT as usize;

// SAFETY: the per-CPU area is written only through `this_cpu` operations on the
// running CPU and read with `READ_ONCE`; the pointer itself never changes.
unsafe impl Send for IoCounters {}
// SAFETY: as above: every access through `&self` is a per-CPU add or a summing read,
// both safe from any number of threads at once (lock-free `get`s may run during a
// `take`, see there); the bases are atomics.
unsafe impl Sync for IoCounters {}

/// Indices of the counters (`DMR_IOSTAT_*`).
const READS: usize = b::DMR_IOSTAT_READS as usize;
const WRITES: usize = b::DMR_IOSTAT_WRITES as usize;
const READ_SECTORS: usize = b::DMR_IOSTAT_READ_SECTORS as usize;
const WRITE_SECTORS: usize = b::DMR_IOSTAT_WRITE_SECTORS as usize;
const FLUSHES: usize = b::DMR_IOSTAT_FLUSHES as usize;

impl IoCounters {
    /// Zeroed counters.
    pub(crate) fn new() -> Result<Self> {
        // SAFETY: allocates; no precondition.
        let pcpu = unsafe { b::dmr_iostat_alloc() };
        if pcpu.is_null() {
            return Err(ENOMEM);
        }
        // INVARIANT: allocated above, not null.
        Ok(Self {
            pcpu,
            base: Default::default(),
        })
    }

    /// Counts one read or write of `sectors`; returns the monotonic clock in ns (the
    /// bio's start, taken in the same call).
    #[inline]
    pub(crate) fn bio(&self, write: bool, sectors: u64) -> u64 {
        // SAFETY: `pcpu` is a live area from `dmr_iostat_alloc` (type invariant); the
        // call only adds to the running CPU's counters, in any context.
        unsafe { b::dmr_iostat_bio(self.pcpu, write, sectors) }
    }

    /// Counts one flush.
    #[inline]
    pub(crate) fn flush(&self) {
        // SAFETY: as in `bio`.
        unsafe { b::dmr_iostat_flush(self.pcpu) }
    }

    fn raw(&self) -> [u64; IO_COUNT] {
        let mut out = [0u64; IO_COUNT];
        // SAFETY: `pcpu` is live (type invariant); `out` has DMR_IOSTAT_COUNT u64s.
        unsafe { b::dmr_iostat_sum(self.pcpu, out.as_mut_ptr()) };
        out
    }

    /// Every counter since the last [`take`](Self::take). Lock-free (status, sysfs,
    /// the `stats` message), so a `take` may run meanwhile: the bases are loaded
    /// first (Acquire, pairing with `take`'s Release), so a base this sees was stored
    /// after `take` read the sums, and the sums read next are at least those (the
    /// counters only grow): a racing read shows the counts since the previous
    /// `take`, never a negative (wrapped) difference.
    pub(crate) fn get(&self) -> IoTotals {
        let base: [u64; IO_COUNT] =
            core::array::from_fn(|i| self.base.get(i).map_or(0, |b| b.load(Acquire)));
        let mut v = self.raw();
        for (x, b) in v.iter_mut().zip(base) {
            *x = x.saturating_sub(b);
        }
        IoTotals::from(v)
    }

    /// Reads plus writes since the target was created (never reset): whether the
    /// target had I/O between two calls.
    pub(crate) fn activity(&self) -> u64 {
        let v = self.raw();
        v.get(READS)
            .zip(v.get(WRITES))
            .map_or(0, |(r, w)| r.wrapping_add(*w))
    }

    /// Every counter since the last `take`, and zeroes them. Callers serialise
    /// (`clear_stats` holds the sampler's mutex); lock-free `get`s may run meanwhile
    /// (see there). An add that lands after the sums are read counts after the
    /// zeroing: none is lost.
    pub(crate) fn take(&self) -> IoTotals {
        let raw = self.raw();
        let mut v = [0u64; IO_COUNT];
        for ((x, r), b) in v.iter_mut().zip(raw).zip(self.base.iter()) {
            *x = r.saturating_sub(b.swap(r, AcqRel));
        }
        IoTotals::from(v)
    }
}

/// The values of [`IoCounters`].
#[derive(Clone, Copy)]
pub(crate) struct IoTotals {
    pub(crate) reads: u64,
    pub(crate) writes: u64,
    pub(crate) read_sectors: u64,
    pub(crate) write_sectors: u64,
    pub(crate) flushes: u64,
}

impl From<[u64; IO_COUNT]> for IoTotals {
    fn from(v: [u64; IO_COUNT]) -> Self {
        let at = |i: usize| v.get(i).copied().unwrap_or(0);
        IoTotals {
            reads: at(READS),
            writes: at(WRITES),
            read_sectors: at(READ_SECTORS),
            write_sectors: at(WRITE_SECTORS),
            flushes: at(FLUSHES),
        }
    }
}

impl Drop for IoCounters {
    fn drop(&mut self) {
        // SAFETY: allocated by `dmr_iostat_alloc` (type invariant), freed once. This
        // runs when the target's state is dropped in `dtr`: dm core calls `dtr` only
        // after the table is unbound from the device and its I/O is done, so no
        // `map`/`end_io` adds any more, and `Remap::drop` has stopped sysfs, the
        // sampler and the scanner, the readers, before its fields are dropped.
        unsafe { b::dmr_iostat_free(self.pcpu) };
    }
}

/// I/O counters: the per-bio counts per CPU ([`IoCounters`]), the rarer events as
/// atomics, updated lock-free from `map`, `end_io` and the worker.
pub(crate) struct Stats {
    pub(crate) io: IoCounters,
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
    /// Failed I/O of a spare (the spare is then recorded lost when its device no
    /// longer answers and another spare is active; else the target enters mode
    /// `failed`).
    pub(crate) spare_errors: AtomicU64,
    /// Spares recorded lost (`meta::SPARE_FAILED`).
    pub(crate) spares_lost: AtomicU64,
    /// Reads the main device failed (each attempt that came back failed to `end_io`,
    /// whatever became of the bio): the samples' read errors.
    pub(crate) main_read_errors: AtomicU64,
    /// Writes the main device failed, likewise.
    pub(crate) main_write_errors: AtomicU64,
}

impl Stats {
    /// Zeroed counters.
    pub(crate) fn new() -> Result<Self> {
        Ok(Self {
            io: IoCounters::new()?,
            read_errors: AtomicU64::new(0),
            write_errors: AtomicU64::new(0),
            remaps: AtomicU64::new(0),
            read_retried_ok: AtomicU64::new(0),
            write_errors_hidden: AtomicU64::new(0),
            write_retried_ok: AtomicU64::new(0),
            spare_errors: AtomicU64::new(0),
            spares_lost: AtomicU64::new(0),
            main_read_errors: AtomicU64::new(0),
            main_write_errors: AtomicU64::new(0),
        })
    }

    /// Zeroes every counter but the per-bio counts (which `clear_stats` takes with
    /// [`IoCounters::take`]).
    pub(crate) fn clear(&self) {
        for c in [
            &self.read_errors,
            &self.write_errors,
            &self.remaps,
            &self.read_retried_ok,
            &self.write_errors_hidden,
            &self.write_retried_ok,
            &self.spare_errors,
            &self.spares_lost,
            &self.main_read_errors,
            &self.main_write_errors,
        ] {
            c.store(0, Relaxed);
        }
    }

    /// The `stats` message answer.
    pub(crate) fn write(&self, out: &mut dyn Write, sep: &str) -> core::fmt::Result {
        let io = self.io.get();
        write!(
            out,
            "reads={r}{sep}writes={w}{sep}flushes={f}{sep}read_sectors={rs}{sep}write_sectors={ws}{sep}read_errors={re}{sep}write_errors={we}{sep}remaps={rm}{sep}read_retried_ok={rr}{sep}write_errors_hidden={wh}{sep}write_retried_ok={wr}{sep}spare_errors={se}{sep}main_read_errors={mr}{sep}main_write_errors={mw}{sep}spares_lost={sl}",
            r = io.reads,
            w = io.writes,
            f = io.flushes,
            rs = io.read_sectors,
            ws = io.write_sectors,
            re = self.read_errors.load(Relaxed),
            we = self.write_errors.load(Relaxed),
            rm = self.remaps.load(Relaxed),
            rr = self.read_retried_ok.load(Relaxed),
            wh = self.write_errors_hidden.load(Relaxed),
            wr = self.write_retried_ok.load(Relaxed),
            se = self.spare_errors.load(Relaxed),
            mr = self.main_read_errors.load(Relaxed),
            mw = self.main_write_errors.load(Relaxed),
            sl = self.spares_lost.load(Relaxed),
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
                        FENCED | FENCED_MOVED => (r, p, f + 1),
                        _ => (r, p, f),
                    })
            })
        });
        let m = &self.mirror;
        let s = &self.stats;
        let io = s.io.get();
        write!(
            out,
            "{} {} {} {} {} {} {} {} {} {} {} {} {} {} {} {} {}",
            self.cfg.block_size.bytes(),
            self.spare_blocks(),
            io.reads,
            io.writes,
            io.flushes,
            io.read_sectors,
            io.write_sectors,
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
