// SPDX-License-Identifier: GPL-2.0

//! `dmsetup message` verbs (parsed by remap-core, executed here).
//!
//! C header: [include/linux/device-mapper.h](srctree/include/linux/device-mapper.h)
//!
//! Answers go back through the message result buffer. Verbs that change the remap
//! state write to the devices, so they are refused on a read-only table and while the
//! device is suspended (a suspended device must not see new I/O); they take the core
//! mutex, like the worker.

use crate::engine::{mask_count, Special, FENCED, FENCED_MOVED, PENDING, REMAPPED};
use crate::remap_core::message::{Message, ScanCmd, SpareRef, VERBS};
use crate::remap_core::units::Blocks;
use crate::remap_core::uuid::UuidText;
use crate::resultbuf::ResultBuf;
use crate::target::{state, Remap};
use core::ffi::CStr;
use core::fmt::Write;
use kernel::ffi::{c_char, c_int, c_uint};
use kernel::prelude::*;

macro_rules! dmerr {
    ($($arg:tt)*) => { pr_err!("device-mapper: remap: {}\n", format_args!($($arg)*)) };
}

macro_rules! dminfo {
    ($($arg:tt)*) => { pr_info!("device-mapper: remap: {}\n", format_args!($($arg)*)) };
}

/// Most entries one `list` answer holds; `next=<block>` continues.
const LIST_MAX: usize = 64;

impl Remap {
    /// Refuses a state-changing verb where it must not write.
    pub(crate) fn may_write(&self, verb: &str) -> Result {
        if !self.writable {
            dmerr!("{}: refused: the table is read-only", verb);
            return Err(EROFS);
        }
        // SAFETY: `ti` is our live target.
        if unsafe { crate::bindings::dm_suspended(self.ti) } != 0 {
            dmerr!("{}: refused: the device is suspended", verb);
            return Err(EBUSY);
        }
        Ok(())
    }

    fn message(&self, msg: Message, out: &mut dyn Write) -> Result<()> {
        let blocks = self.cfg.block_size.whole_blocks(self.len).0;
        let check = |blk: Blocks| {
            if blk.0 < blocks {
                Ok(blk.0)
            } else {
                dmerr!("block {} is beyond the target ({} blocks)", blk.0, blocks);
                Err(EINVAL)
            }
        };
        // A cut answer is fine: dm core sees the full buffer, sets DM_BUFFER_FULL_FLAG
        // and dmsetup asks again with a larger one. So formatting errors are ignored.
        let _ = match msg {
            Message::Help => {
                let mut r = Ok(());
                for (verb, what) in VERBS.iter() {
                    r = r.and_then(|()| writeln!(out, "{verb:<22}{what}"));
                }
                r
            }
            Message::Stats => self.stats.write(out, " "),
            Message::ClearStats => {
                self.clear_stats();
                Ok(())
            }
            Message::Query(blk) => {
                let blk = check(blk)?;
                let s = self.published.read(|s| s.and_then(|s| s.get(blk)).copied());
                match s {
                    None => write!(out, "block={blk} state=main"),
                    Some(s) => self.write_special(out, &s),
                }
            }
            Message::List(from) => self.published.read(|snap| {
                let items = snap.map_or(&[][..], |s| s.items());
                let start = items.partition_point(|s| s.block < from.0);
                let mut r = Ok(());
                let rest = items.get(start..).unwrap_or(&[]);
                for s in rest.iter().take(LIST_MAX) {
                    r = r
                        .and_then(|()| self.write_special(out, s))
                        .and_then(|()| writeln!(out));
                }
                match rest.get(LIST_MAX) {
                    Some(n) => r.and_then(|()| write!(out, "next={}", n.block)),
                    None => r.and_then(|()| write!(out, "end")),
                }
            }),
            Message::Remap(blk) => {
                let blk = check(blk)?;
                self.may_write("remap")?;
                let r = {
                    let mut core = self.core.lock();
                    let r = self.remap_now(&mut core, blk);
                    self.mirror(&core);
                    r
                };
                // A new remap raises a dm event, outside the core mutex (as the worker).
                if r.is_ok() {
                    self.raise_event();
                }
                r.inspect_err(|e| {
                    if *e == EEXIST {
                        dmerr!("remap {}: refused: the block is already remapped", blk);
                    } else if *e == EBUSY {
                        dmerr!("remap {}: refused: the block is fenced or being moved", blk);
                    } else {
                        dmerr!("remap {}: failed ({})", blk, e.to_errno());
                    }
                })?;
                write!(out, "block={blk} remapped")
            }
            Message::Unremap(blk) => {
                let blk = check(blk)?;
                self.may_write("unremap")?;
                let r = {
                    let mut core = self.core.lock();
                    let r = self.unremap_now(&mut core, blk);
                    self.mirror(&core);
                    r
                };
                if r.is_ok() {
                    self.raise_event();
                }
                r.inspect_err(|e| {
                    if *e == ENOENT {
                        dmerr!("unremap {}: refused: the block is not remapped", blk);
                    } else if *e == EBUSY {
                        dmerr!("unremap {}: refused: sectors of the block were lost (write them first), or it is fenced", blk);
                    } else {
                        dmerr!("unremap {}: failed ({}): the copy back or its commit failed", blk, e.to_errno());
                    }
                })?;
                write!(out, "block={blk} unremapped")
            }
            Message::Clear => {
                self.may_write("clear")?;
                let mut n = 0u64;
                // A step at a time (up to CLEAR_BATCH entries, see `clear_step`), the
                // core mutex let go between steps so the worker keeps serving bios. At
                // most as many entries as the table held when clear began: remaps made
                // meanwhile (a dying disk) do not keep it going.
                let total = self.published.read(|s| s.map_or(0, |s| s.items().len())) as u64;
                let r = loop {
                    let mut core = self.core.lock();
                    let (k, stop) = self.clear_step(&mut core);
                    self.mirror(&core);
                    drop(core);
                    n += k as u64;
                    if let Some((blk, e)) = stop {
                        dmerr!(
                            "clear: block {} cannot move back ({}); {} cleared",
                            blk,
                            e.to_errno(),
                            n
                        );
                        break Err(e);
                    }
                    if k == 0 || n >= total {
                        break Ok(());
                    }
                };
                if n > 0 {
                    self.raise_event();
                }
                r?;
                write!(out, "cleared={n}")
            }
            Message::ClearFailed => {
                self.may_write("clear_failed")?;
                let changed = {
                    let mut core = self.core.lock();
                    let r = self.leave_failed(&mut core);
                    self.mirror(&core);
                    r?
                };
                if changed {
                    self.raise_event();
                }
                write!(out, "mode=ok")
            }
            Message::Scan(ScanCmd::Status) => self.write_scan_status(out),
            Message::Health => self.write_health(out),
            Message::Alerts => self.write_alerts(out),
            Message::Samples(from) => self.write_samples(out, from),
            Message::SpareList | Message::SpareStats => {
                // From the mirror, not under the core mutex: monitoring asks for these
                // and must not wait behind the worker's slow I/O.
                let names = self.spare_names();
                let mut r = Ok(());
                for (i, sp) in self.spare_view().enumerate() {
                    let name = names.get(i).copied().unwrap_or("?");
                    let state = match sp.state {
                        0 => "active",
                        1 => "draining",
                        _ => "failed",
                    };
                    r = r.and_then(|()| {
                        if msg == Message::SpareList {
                            writeln!(
                                out,
                                "spare={i} dev={name} uuid={} sectors={} logical_block_size={} role=data state={state} priority={}",
                                UuidText(&sp.uuid),
                                sp.sectors,
                                sp.logical_block_bytes,
                                sp.priority
                            )
                        } else {
                            let errs = self
                                .spare_errs
                                .get(i)
                                .map_or(0, |c| c.load(core::sync::atomic::Ordering::Relaxed));
                            writeln!(
                                out,
                                "spare={i} dev={name} blocks={} used={} free={} errors={errs} state={state}",
                                sp.blocks,
                                sp.used,
                                sp.blocks.saturating_sub(sp.used)
                            )
                        }
                    });
                }
                r
            }
            Message::SpareRemove(which) => {
                self.may_write("spare_remove")?;
                let k = self.spare_index(which)?;
                let (moved, lost) = self.spare_remove(k)?;
                let state = if lost { "failed" } else { "draining" };
                write!(
                    out,
                    "spare={k} moved={moved} state={state}: reload the table without it"
                )
            }
            Message::Scan(ScanCmd::Start) => {
                self.may_write("scan start")?;
                self.scan_start()?;
                self.write_scan_status(out)
            }
            Message::Scan(ScanCmd::Stop) => {
                self.scan_stop();
                self.write_scan_status(out)
            }
        };
        Ok(())
    }

    /// The pool position of the spare a message names (`spare=` or `dev=` of
    /// `spare_list`).
    fn spare_index(&self, which: SpareRef) -> Result<u8> {
        let names = self.spare_names();
        let found = match which {
            SpareRef::Index(i) => usize::try_from(i).ok().filter(|&i| i < self.nspares),
            SpareRef::Dev(..) => names
                .iter()
                .take(self.nspares)
                .position(|n| SpareRef::parse(n.as_bytes()).ok() == Some(which)),
        };
        match found.and_then(|i| u8::try_from(i).ok()) {
            Some(i) => Ok(i),
            None => {
                dmerr!("spare_remove: refused: no such spare in the pool (see spare_list)");
                Err(EINVAL)
            }
        }
    }

    /// `spare_remove`: marks spare `k` draining (committed) once the other spares are
    /// known to hold its blocks, then moves them there a step at a time (the core
    /// mutex let go between steps, as `clear`). Again on a draining spare: carries on
    /// moving. Returns how many blocks moved.
    fn spare_remove(&self, k: u8) -> Result<(u64, bool)> {
        if self.nspares < 2 {
            dmerr!("spare_remove: refused: the pool's last spare cannot be removed");
            return Err(EINVAL);
        }
        // A lost spare (`meta::SPARE_FAILED`) is not marked draining: it already takes
        // no blocks and no commit writes it. Its entries move off it without a read
        // (every sector of them is recorded lost).
        {
            let mut core = self.core.lock();
            let lost = core.is_lost(k);
            if !core.is_draining(k) {
                let active = (0..self.nspares)
                    .filter_map(|i| u8::try_from(i).ok())
                    .filter(|&i| i != k && core.is_active(i))
                    .count();
                if active == 0 {
                    dmerr!(
                        "spare_remove {}: refused: every other spare of the pool is draining or lost",
                        k
                    );
                    return Err(EINVAL);
                }
                let on_k = self
                    .published
                    .items_locked()
                    .iter()
                    .filter(|e| {
                        // A block with another copy on a spare not lost needs no room:
                        // it keeps that copy alone when no spare has room for a new one.
                        e.state != PENDING
                            && e.copies().any(|(sp, _)| sp == k)
                            && !e.copies().any(|(sp, _)| sp != k && !core.is_lost(sp))
                    })
                    .count() as u64;
                // The other spares' free blocks (`free_blocks` counts active spares').
                let own = if core.is_active(k) {
                    core.spare_free(k)
                } else {
                    0
                };
                let room = core.free_blocks().saturating_sub(own);
                if on_k > room {
                    dmerr!(
                        "spare_remove {}: refused: its {} block(s) do not fit the {} free block(s) of the other spares",
                        k,
                        on_k,
                        room
                    );
                    return Err(ENOSPC);
                }
            }
            if !core.is_draining(k) && !lost {
                core.set_draining(k, true);
                if let Err(e) = self.commit_current(&mut core) {
                    // Drained on disk only if a copy landed (then it stays so). Not
                    // when the commit found the spare dead and recorded it lost
                    // (`loss::commit_surviving`): that stays.
                    if !core.commit_landed() && core.is_draining(k) {
                        core.set_draining(k, false);
                    }
                    self.mirror(&core);
                    dmerr!(
                        "spare_remove {}: failed ({}): the commit marking it draining failed",
                        k,
                        e.to_errno()
                    );
                    return Err(e);
                }
                self.mirror(&core);
                dminfo!(
                    "{}: spare {} {}",
                    self.main_name(),
                    k,
                    if core.is_lost(k) {
                        "found lost by that commit: moving its entries without reading it"
                    } else {
                        "draining: moving its blocks to the other spares"
                    }
                );
            }
        }
        let mut n = 0u64;
        let r = loop {
            // A suspend waits for this message (it holds the live table) with new I/O
            // already held back: stop between steps.
            if self.suspending.load(core::sync::atomic::Ordering::Relaxed) {
                dmerr!(
                    "spare_remove {}: stopped after moving {} block(s): the device is being suspended; it stays draining (send spare_remove again after the resume)",
                    k,
                    n
                );
                break Err(EBUSY);
            }
            let mut core = self.core.lock();
            let (moved, stop) = self.move_step(&mut core, k);
            self.mirror(&core);
            drop(core);
            n += moved as u64;
            if let Some(e) = stop {
                if e == EBUSY {
                    dmerr!(
                        "spare_remove {}: {} block(s) moved; blocks on it are busy or fenced, or blocks moved off it are fenced until a commit lands (clear_failed): send spare_remove again",
                        k,
                        n
                    );
                } else {
                    dmerr!(
                        "spare_remove {}: stopped ({}) after moving {} block(s); it stays draining (send spare_remove again)",
                        k,
                        e.to_errno(),
                        n
                    );
                }
                break Err(e);
            }
            if moved == 0 {
                // Done: the spare's bitmap from the table (blocks a settled fence kept
                // are free now).
                let mut core = self.core.lock();
                core.recount_spare(k, self.published.items_locked());
                self.mirror(&core);
                // Lost meanwhile, perhaps (a draining spare can be lost too).
                break Ok((n, core.is_lost(k)));
            }
        };
        if n > 0 {
            self.raise_event();
        }
        r
    }

    fn write_special(&self, out: &mut dyn Write, s: &Special) -> core::fmt::Result {
        match s.state {
            REMAPPED => {
                write!(
                    out,
                    "block={} state=remapped spare={} spare_block={} lost_sectors={}",
                    s.block,
                    s.spare,
                    s.spare_block,
                    // All of them when every copy's spare was lost.
                    mask_count(&self.lost_of(s))
                )?;
                if s.has_mirror() {
                    write!(out, " mirror={} mirror_block={}", s.mirror, s.mirror_block)?;
                }
                Ok(())
            }
            PENDING => write!(out, "block={} state=pending", s.block),
            FENCED => write!(out, "block={} state=fenced", s.block),
            FENCED_MOVED => write!(
                out,
                "block={} state=fenced spare={} spare_block={}",
                s.block, s.spare, s.spare_block
            ),
            _ => write!(out, "block={} state=busy", s.block),
        }
    }
}

/// # Safety
/// Called by dm core with a constructed target, `argc` C strings in `argv` and a
/// `maxlen`-byte result buffer.
pub(crate) unsafe extern "C" fn remap_message(
    ti: *mut crate::bindings::dm_target,
    argc: c_uint,
    argv: *mut *mut c_char,
    result: *mut c_char,
    maxlen: c_uint,
) -> c_int {
    // SAFETY: dm core calls `message` only for a constructed target.
    let t = unsafe { state(ti) };
    let argc = argc as usize;
    if argc > 4 {
        dmerr!("message: too many arguments");
        return EINVAL.to_errno();
    }
    let mut args: [&[u8]; 4] = [&[]; 4];
    for (i, slot) in args.iter_mut().take(argc).enumerate() {
        // SAFETY: dm core passes `argc` valid NUL-terminated strings.
        *slot = unsafe { CStr::from_ptr((*argv.add(i)).cast()) }.to_bytes();
    }
    let msg = match Message::parse(args.get(..argc).unwrap_or(&[])) {
        Ok(m) => m,
        Err(e) => {
            dmerr!("message: {}", e.as_str());
            return EINVAL.to_errno();
        }
    };
    // SAFETY: dm core passes a writable buffer of `maxlen` bytes.
    let Some(mut out) = (unsafe { ResultBuf::new(result, maxlen) }) else {
        return EINVAL.to_errno();
    };
    // 1: the answer is in the buffer (cut when it did not fit, which dm core detects).
    match t.message(msg, &mut out) {
        Ok(()) => 1,
        Err(e) => e.to_errno(),
    }
}
