// SPDX-License-Identifier: GPL-2.0

//! Metadata I/O and the writer-side state: the spare allocator and the commits.
//!
//! C header: [include/linux/dm-io.h](srctree/include/linux/dm-io.h)
//!
//! The format, copy selection, repair planning, commit ordering and the allocator are
//! remap-core's; this file only moves their bytes to and from the spare.

use crate::bindings as b;
use crate::engine::{Snapshot, Special, BUSY};
use crate::remap_core::alloc::{words_for, Bitmap};
use crate::remap_core::judge;
use crate::remap_core::layout::{self, COPY_COUNT, COPY_MAX_BYTES, COPY_SECTORS};
use crate::remap_core::log::{self, CopyWrite, LogEnd, RecordHead};
use crate::remap_core::meta::identity::{self, IdentityText};
use crate::remap_core::meta::{self, Config, Fingerprint, ScanCheckpoint, SpareInfo, State};
use crate::remap_core::repair::{self, CopyRead, CopyStatus, Refusal, Selection, COMMIT_PLAN};
use crate::remap_core::storm::StormGuard;
use crate::remap_core::table_line::TableConfig;
use crate::remap_core::units::Sectors;
use crate::worker::Scratch;
use core::ffi::CStr;
use kernel::bindings::block_device;
use kernel::ffi::c_int;
use kernel::prelude::*;

macro_rules! dmwarn {
    ($($arg:tt)*) => { pr_warn!("device-mapper: remap: {}\n", format_args!($($arg)*)) };
}
macro_rules! dminfo {
    ($($arg:tt)*) => { pr_info!("device-mapper: remap: {}\n", format_args!($($arg)*)) };
}
macro_rules! dmerr {
    ($($arg:tt)*) => { pr_err!("device-mapper: remap: {}\n", format_args!($($arg)*)) };
}

/// What the constructor learnt about the devices.
pub(crate) struct Geometry {
    /// Main device size.
    pub(crate) main_len: Sectors,
    /// Main device logical block size in bytes.
    pub(crate) main_lbs: u32,
    /// Main device physical block size in bytes.
    pub(crate) main_pbs: u32,
    /// Spare device size.
    pub(crate) spare_len: Sectors,
    /// Target length.
    pub(crate) target_len: Sectors,
    /// Spare logical block size in bytes (metadata copies are padded to it).
    pub(crate) spare_lbs: u32,
    /// The table may write (read-only tables never format, repair or commit).
    pub(crate) writable: bool,
    /// The main device's own identifier (`meta::identity` encoding; none: all zero).
    pub(crate) identity: [u8; meta::IDENTITY_LEN],
}

/// A constructor failure: the `ti->error` text and the errno.
pub(crate) type LoadError = (&'static CStr, Error);

/// Writer-side state, behind the target's mutex.
pub(crate) struct Core {
    /// Result of the last commit: 0 or a negative errno.
    pub(crate) last_commit: c_int,
    /// Copies rewritten when the metadata was loaded.
    pub(crate) repaired: u32,
    /// Copies to (re)write before the target first resumes: a fresh format or repairs.
    pending_writes: [bool; COPY_COUNT],
    /// Remap storm bound.
    pub(crate) storm: StormGuard,
    /// `FENCED` entries in the published table (see `Remap::settle_fences`).
    pub(crate) fenced: u32,
    bitmap: KVVec<u64>,
    nblocks: u64,
    used: u64,
    version: u64,
    uuid: [u8; 16],
    fingerprint: Fingerprint,
    config: Config,
    spare: SpareInfo,
    scan: ScanCheckpoint,
    /// Encoding buffer of one copy (vmalloc'd, reused by every commit).
    buf: KVVec<u8>,
    /// The last state written to every copy it was meant for, encoded as a base: what
    /// the next commit's record is the difference from (swapped with `buf` after each
    /// successful write).
    prev_buf: KVVec<u8>,
    /// The copy sector `prev_buf`'s header names; whether `prev_buf` holds a state.
    prev_sector: u64,
    prev_ok: bool,
    /// Encoding buffer of one log record.
    rec_buf: KVVec<u8>,
    /// Per copy: where its log ends and the version it holds, when known (`None`
    /// after a failed write, and for copies being rewritten: a base goes there).
    logs: [Option<LogEnd>; COPY_COUNT],
    /// Spare logical block size: copies are written in whole logical blocks.
    spare_lbs: u32,
    /// The configuration or binding differs from the loaded copy: the first resume
    /// commits a new version.
    config_changed: bool,
    /// Copies the last `write_copies` wrote before it returned (also on failure).
    landed: u32,
    /// Whether the last `write_copies` issued a write (a failed write may still have
    /// reached the disk whole).
    issued: bool,
    /// Copies that do not hold the loaded state (stale, damaged, unreadable) when a
    /// configuration change at load skips the repairs: the commit of the change writes
    /// them first, so that a cut while it overwrites a current copy leaves the new
    /// version on them.
    damaged: [bool; COPY_COUNT],
    client: *mut b::dm_io_client,
    bdev: *mut block_device,
    /// The unpublished table version writers rebuild (see `engine`).
    pub(crate) standby: Option<KBox<Snapshot>>,
    /// The worker's reserved storage.
    pub(crate) scratch: Scratch,
}

// SAFETY: the raw pointers are the dm-io client and the spare's block device, both
// owned by the target for the lifetime of `Core` and usable from any thread; `Core`
// is only used behind the target's mutex.
unsafe impl Send for Core {}

/// Synchronous I/O of `sectors` sectors of `buf` at `sector` of `bdev`.
fn io(
    client: *mut b::dm_io_client,
    bdev: *mut block_device,
    sector: u64,
    buf: &mut [u8],
    op: b::dmr_io_op,
) -> Result {
    let sectors = (buf.len() / 512) as u64;
    // SAFETY: `client` and `bdev` are live for the caller's target; `buf` is a kernel
    // buffer of `sectors` sectors that outlives this synchronous call.
    let r = unsafe { b::dmr_io(client, bdev, sector, sectors, buf.as_mut_ptr().cast(), op) };
    kernel::error::to_result(r)
}

fn new_uuid() -> [u8; 16] {
    let mut u = [0u8; 16];
    // SAFETY: `u` is a valid buffer of 16 bytes.
    unsafe { b::dmr_random_bytes(u.as_mut_ptr().cast(), u.len()) };
    // RFC 4122 version 4, variant 1.
    u[6] = (u[6] & 0x0f) | 0x40;
    u[8] = (u[8] & 0x3f) | 0x80;
    u
}

impl Core {
    /// Spare data blocks in use.
    pub(crate) fn used_blocks(&self) -> u64 {
        self.used
    }

    /// Spare data blocks free.
    pub(crate) fn free_blocks(&self) -> u64 {
        self.nblocks.saturating_sub(self.used)
    }

    /// The setup UUID.
    pub(crate) fn uuid(&self) -> [u8; 16] {
        self.uuid
    }

    /// Version of the last committed metadata.
    pub(crate) fn version(&self) -> u64 {
        self.version
    }

    /// The scan position of the last loaded or committed state (or the next commit).
    pub(crate) fn scan_checkpoint(&self) -> ScanCheckpoint {
        self.scan
    }

    /// Sets the scan position the next commit records.
    pub(crate) fn set_scan_checkpoint(&mut self, cp: ScanCheckpoint) {
        self.scan = cp;
    }

    /// Whether mode `failed` is recorded.
    pub(crate) fn failed_flag(&self) -> bool {
        self.config.flags & meta::CONFIG_FLAG_FAILED != 0
    }

    /// Records (or clears) mode `failed` for the next commit.
    pub(crate) fn set_failed_flag(&mut self, on: bool) {
        if on {
            self.config.flags |= meta::CONFIG_FLAG_FAILED;
        } else {
            self.config.flags &= !meta::CONFIG_FLAG_FAILED;
        }
    }

    /// Takes over the reserved storage of the state this one replaces.
    pub(crate) fn adopt_reserves(&mut self, old: &mut Core) {
        self.standby = old.standby.take();
        self.scratch = core::mem::replace(&mut old.scratch, Scratch::empty());
    }

    fn bitmap(&mut self) -> Option<Bitmap<'_>> {
        Bitmap::resume(&mut self.bitmap, self.nblocks).ok()
    }

    /// Allocates a spare data block.
    pub(crate) fn alloc_block(&mut self) -> Option<u64> {
        let mut bm = self.bitmap()?;
        let r = bm.alloc();
        self.used = bm.used();
        r
    }

    /// Frees a spare data block.
    pub(crate) fn free_block(&mut self, blk: u64) {
        if let Some(mut bm) = self.bitmap() {
            bm.free_block(blk);
            self.used = bm.used();
        }
    }

    /// Reads the spare's metadata (formatting a blank spare) and returns the state and
    /// the sorted special blocks.
    pub(crate) fn load(
        client: *mut b::dm_io_client,
        bdev: *mut block_device,
        cfg: &TableConfig<'_>,
        g: &Geometry,
        report: bool,
        uuid_hint: Option<[u8; 16]>,
    ) -> core::result::Result<(Core, KVVec<Special>), LoadError> {
        let nomem = |_| (c"Cannot allocate metadata buffers", ENOMEM);
        let bs = cfg.block_size;
        let nblocks = layout::data_blocks(g.spare_len, bs).0;
        let words =
            usize::try_from(words_for(nblocks)).map_err(|_| (c"Spare too large", EINVAL))?;
        let bitmap = KVVec::from_elem(0u64, words, GFP_KERNEL).map_err(nomem)?;
        let mut area =
            KVVec::from_elem(0u8, COPY_COUNT * COPY_MAX_BYTES, GFP_KERNEL).map_err(nomem)?;
        let mut ok = [false; COPY_COUNT];
        for (i, (chunk, &sector)) in area
            .chunks_mut(COPY_MAX_BYTES)
            .zip(COPY_SECTORS.iter())
            .enumerate()
        {
            let r = io(client, bdev, sector, chunk, b::dmr_io_op_DMR_IO_READ);
            if let Some(o) = ok.get_mut(i) {
                *o = r.is_ok();
            }
        }
        let mut chunks = area.chunks(COPY_MAX_BYTES);
        let reads: [CopyRead<'_>; COPY_COUNT] = core::array::from_fn(|i| match chunks.next() {
            Some(c) if ok.get(i).copied().unwrap_or(false) => CopyRead::Bytes(c),
            _ => CopyRead::IoError,
        });
        let fingerprint = Fingerprint {
            main_sectors: g.main_len.0,
            logical_block_bytes: g.main_lbs,
            physical_block_bytes: g.main_pbs,
            identity: g.identity,
        };
        // The setup UUID of a spare formatted now: the one the table names, else the
        // one an earlier load of this table chose (the constructor's load writes
        // nothing; the first resume formats), else a new one.
        let fresh_uuid = cfg.uuid.or(uuid_hint).unwrap_or_else(new_uuid);
        let mut core = Core {
            last_commit: 0,
            repaired: 0,
            pending_writes: [false; COPY_COUNT],
            // SAFETY: reads the monotonic clock.
            storm: StormGuard::new(cfg.max_remap_rate, unsafe { b::dmr_now_ms() }),
            fenced: 0,
            bitmap,
            nblocks,
            used: 0,
            version: 0,
            uuid: [0; 16],
            fingerprint,
            config: Config {
                block_bytes: bs.bytes(),
                read_retries: u32::from(cfg.read_retries),
                target_sectors: g.target_len.0,
                flags: 0,
                scan_interval_s: cfg.scan_interval_s.unwrap_or(0),
                scan_rate_kibs: cfg.scan_rate_kibs.unwrap_or(0),
                predict_interval_s: 0,
                alert_min_level: 0,
            },
            spare: meta::spare_info(new_uuid(), g.spare_len.0, g.spare_lbs, bs, 0),
            scan: ScanCheckpoint::default(),
            buf: KVVec::new(),
            prev_buf: KVVec::from_elem(0u8, COPY_MAX_BYTES, GFP_KERNEL).map_err(nomem)?,
            prev_sector: 0,
            prev_ok: false,
            rec_buf: KVVec::new(),
            logs: [None; COPY_COUNT],
            spare_lbs: g.spare_lbs,
            config_changed: false,
            landed: 0,
            issued: false,
            damaged: [false; COPY_COUNT],
            client,
            bdev,
            standby: None,
            scratch: Scratch::empty(),
        };
        let sel = repair::select(&reads, None);
        let mut items = KVVec::new();
        let rewrite = match sel {
            Selection::Blank
            | Selection::Refuse {
                reason: Refusal::NoValidCopy,
                ..
            } if !g.writable => {
                return Err((
                    c"Read-only table: the spare has no metadata to load",
                    EINVAL,
                ));
            }
            Selection::Blank => {
                core.uuid = fresh_uuid;
                if report {
                    dminfo!("formatting blank spare");
                }
                [true; COPY_COUNT]
            }
            Selection::Refuse {
                reason: Refusal::NoValidCopy,
                diagnosis,
            } if cfg.format_spare => {
                for (i, d) in diagnosis.iter().enumerate() {
                    if let Some(d) = d {
                        dmwarn!("format_spare: copy {} was: {}", i, d.as_str());
                    }
                }
                core.uuid = fresh_uuid;
                dmwarn!("format_spare: overwriting foreign data in the metadata area");
                [true; COPY_COUNT]
            }
            Selection::Refuse { reason, diagnosis } => {
                for (i, d) in diagnosis.iter().enumerate() {
                    if let Some(d) = d {
                        dmerr!(
                            "metadata copy {} at sector {}: {}",
                            i,
                            COPY_SECTORS.get(i).unwrap_or(&0),
                            d.as_str()
                        );
                    }
                }
                dmerr!("{}", reason.as_str());
                let msg = match reason {
                    Refusal::NoValidCopy => {
                        c"Spare holds foreign data or corrupt metadata (format_spare overrides)"
                    }
                    Refusal::MixedSetups => c"Spare metadata copies belong to different setups",
                    Refusal::Conflict { .. } => {
                        c"Spare metadata copies of the same version disagree"
                    }
                    Refusal::BlankWithErrors => c"Spare metadata area unreadable",
                };
                return Err((msg, EINVAL));
            }
            Selection::Load {
                state,
                status,
                rewrite: rw,
                chosen,
                version,
                state_crc,
                logs,
            } => {
                // Runs let a copy record more blocks than a state may hold (and than the
                // in-memory table holds); refused before the judge walks them (checked
                // again on the state loaded, which may come from another copy).
                check_block_count(&state)?;
                // The chosen copy's log: its records applied to its base give the state,
                // which must encode to the checksum the last record carries. The
                // replayed state, encoded into `prev_buf`, is what gets judged and
                // loaded; without records, the base itself. A current copy whose log
                // does not replay to the state it records (records that pass their own
                // checksums but are wrong) is not loaded: the next current copy is
                // tried (one holding that version as a base, or another log), and the
                // failed copy is rewritten like a damaged one.
                let mut rw = rw;
                let mut logs = logs;
                let mut status = status;
                let mut found: Option<(usize, Option<usize>)> = None;
                let mut why = c"Spare metadata log does not replay to the state it records";
                let mut dropped = [false; COPY_COUNT];
                for k in repair::load_order(chosen, &logs) {
                    let Some(CopyRead::Bytes(bytes)) = reads.get(k) else {
                        continue;
                    };
                    let base = if k == chosen {
                        Ok(state)
                    } else {
                        meta::decode(bytes, *COPY_SECTORS.get(k).unwrap_or(&0))
                    };
                    let Ok(base) = base else {
                        continue;
                    };
                    if base.version == version {
                        found = Some((k, None));
                        break;
                    }
                    match replay(&base, bytes, version, &mut core.prev_buf) {
                        Ok(n) => match meta::decode(core.prev_buf.get(..n).unwrap_or(&[]), 0) {
                            Ok(st) if st.body_crc == state_crc => {
                                found = Some((k, Some(n)));
                                break;
                            }
                            Ok(_) => {
                                why = c"Spare metadata log does not replay to the state it records"
                            }
                            Err(_) => why = c"Spare metadata log replays to an invalid state",
                        },
                        Err(e) => why = e,
                    }
                    if why == c"Cannot allocate metadata buffers" {
                        return Err((why, ENOMEM));
                    }
                    if report {
                        dmwarn!(
                            "metadata log of copy {}: {}; trying another current copy",
                            k,
                            why.to_str().unwrap_or("")
                        );
                    }
                    if let Some(d) = dropped.get_mut(k) {
                        *d = true;
                    }
                }
                // Copies whose log did not replay are rewritten like damaged ones.
                for (k, _) in dropped.iter().enumerate().filter(|(_, &d)| d) {
                    if let Some(r) = rw.get_mut(k) {
                        *r = true;
                    }
                    if let Some(l) = logs.get_mut(k) {
                        *l = None;
                    }
                    if let Some(st) = status.get_mut(k) {
                        *st = CopyStatus::Bad(meta::Diagnosis::LogReplay);
                    }
                }
                let state = match found {
                    None => return Err((why, EINVAL)),
                    Some((_, Some(n))) => {
                        core.prev_sector = 0;
                        meta::decode(core.prev_buf.get(..n).unwrap_or(&[]), 0).map_err(|_| {
                            (c"Spare metadata log replays to an invalid state", EINVAL)
                        })?
                    }
                    Some((k, None)) => {
                        let bytes = match reads.get(k) {
                            Some(CopyRead::Bytes(b)) => *b,
                            _ => &[],
                        };
                        let sector = *COPY_SECTORS.get(k).unwrap_or(&0);
                        let base = meta::decode(bytes, sector)
                            .map_err(|_| (c"Spare metadata copy unreadable", EINVAL))?;
                        let n = base.total_len;
                        let dst = core
                            .prev_buf
                            .get_mut(..n)
                            .ok_or((c"Spare metadata too long", EINVAL))?;
                        dst.copy_from_slice(
                            bytes.get(..n).ok_or((c"Spare metadata too long", EINVAL))?,
                        );
                        core.prev_sector = sector;
                        base
                    }
                };
                check_block_count(&state)?;
                core.prev_ok = true;
                core.logs = logs;
                // One judge (remap-core), the same rules `remapctl meta check` applies:
                // the state in itself, then against these devices and this table line.
                let words = usize::try_from(judge::bitmap_words(&state, |_| Some(g.spare_len.0)))
                    .map_err(|_| (c"Spare too large", EINVAL))?;
                let mut bm_words = KVVec::from_elem(0u64, words, GFP_KERNEL).map_err(nomem)?;
                let verdict = judge::judge_state(&state, &mut bm_words).and_then(|used| {
                    let expect = judge::Expect {
                        uuid: cfg.uuid,
                        main_sectors: g.main_len.0,
                        main_lbs: g.main_lbs,
                        main_pbs: g.main_pbs,
                        identity: &g.identity,
                        block_bytes: bs.bytes(),
                        target_sectors: g.target_len.0,
                        spares: &[judge::SpareDev {
                            sectors: g.spare_len.0,
                            lbs: g.spare_lbs,
                        }],
                    };
                    judge::judge_against(&state, &expect).map(|()| used)
                });
                let used = match verdict {
                    Ok(used) => used.iter().sum(),
                    Err(v) => {
                        dmerr!("{}", v.as_str());
                        if v == judge::Verdict::MainIdentity {
                            dmerr!(
                                "the spare's setup was made on main device {}; this one is {}",
                                IdentityText(&state.fingerprint.identity),
                                IdentityText(&g.identity)
                            );
                        }
                        return Err((v.as_cstr(), EINVAL));
                    }
                };
                if bm_words.len() != core.bitmap.len() {
                    return Err((c"Spare bitmap size mismatch", EINVAL));
                }
                core.bitmap = bm_words;
                core.used = used;
                // Repairs must reproduce the selected copy exactly (only the location
                // binding differs): take everything from it. What the table line or
                // the devices change is a new version, committed at the first resume.
                core.uuid = state.uuid;
                core.version = version;
                core.fingerprint = state.fingerprint;
                core.config = state.config;
                core.scan = state.scan;
                if let Some(sp) = state.spare(0) {
                    core.spare = sp;
                }
                // Format 1 did not record the spare's logical block size.
                if core.spare.logical_block_bytes == 0 {
                    core.spare.logical_block_bytes = g.spare_lbs;
                }
                let retries = u32::from(cfg.read_retries);
                if core.config.read_retries != retries {
                    core.config.read_retries = retries;
                    core.config_changed = true;
                }
                // The scan options as the table gives them (0: not given).
                let scan = (
                    cfg.scan_interval_s.unwrap_or(0),
                    cfg.scan_rate_kibs.unwrap_or(0),
                );
                if (core.config.scan_interval_s, core.config.scan_rate_kibs) != scan {
                    (core.config.scan_interval_s, core.config.scan_rate_kibs) = scan;
                    core.config_changed = true;
                }
                // A setup made where the main device showed no identifier (or by an
                // older version) is bound to the identifier it shows now.
                if core.fingerprint.identity != g.identity
                    && core.fingerprint.identity == identity::IDENTITY_NONE
                {
                    if report {
                        dminfo!(
                            "binding the setup to main device identity {}",
                            IdentityText(&g.identity)
                        );
                    }
                    core.fingerprint.identity = g.identity;
                    core.config_changed = true;
                }
                let (r, l, p) = state.counts();
                items = KVVec::with_capacity(r + p, GFP_KERNEL).map_err(nomem)?;
                for e in state.entries() {
                    items.push(e, GFP_KERNEL).map_err(nomem)?;
                }
                for (i, st) in status.iter().enumerate().filter(|_| report) {
                    match st {
                        CopyStatus::Current => {}
                        CopyStatus::Stale { version } => {
                            dmwarn!(
                                "metadata copy {}: stale (version {} < {}), rewriting",
                                i,
                                version,
                                state.version
                            )
                        }
                        CopyStatus::Bad(d) => {
                            dmwarn!("metadata copy {}: {}, rewriting", i, d.as_str())
                        }
                    }
                }
                if report {
                    dminfo!(
                        "loaded metadata version {}: {} remapped ({} with lost sectors), {} pending",
                        state.version,
                        r,
                        l,
                        p
                    );
                }
                // A format 1 state is upgraded by a commit (version + 1, every copy in
                // format 2), not by repairs: a copy rewritten in format 2 under the
                // version the format 1 copies hold would differ from them in its body,
                // and a cut before the rest followed would leave two different copies of
                // one version, which selection refuses. The commit at the first resume
                // rewrites all five copies, the damaged ones included.
                if state.format_version == meta::FORMAT_V1 {
                    if report {
                        dminfo!(
                            "metadata version {} is in format 1: upgrading to format 2 at the first resume",
                            state.version
                        );
                    }
                    core.config_changed = true;
                }
                // Likewise when the table line or the binding changes the state: the
                // commit of the change writes every copy as a base, the damaged ones
                // included. Repairing first would write the selected version with the
                // new configuration next to copies of that version with the old one.
                // The commit writes the copies that do not hold the selected state first
                // (`damaged`): until the first current copy is overwritten, the
                // selected version stays intact there.
                if core.config_changed {
                    core.damaged = rw;
                    [false; COPY_COUNT]
                } else {
                    rw
                }
            }
        };
        // Keep one copy's worth of the read buffer for encoding.
        drop(area);
        core.buf = KVVec::from_elem(0u8, COPY_MAX_BYTES, GFP_KERNEL).map_err(nomem)?;
        core.rec_buf =
            KVVec::from_elem(0u8, log::MAX_RECORD_BYTES + 65536, GFP_KERNEL).map_err(nomem)?;
        core.pending_writes = rewrite;
        Ok((core, items))
    }

    /// The record of a commit of `items` (whose encoding has body checksum
    /// `body_crc`) against `prev`, the last written state, into `rec_buf`; its padded
    /// length. `None` when the commit cannot be a record: a change besides the map and
    /// the scan checkpoint, or more changes than a record holds.
    fn make_record(
        &self,
        prev: &meta::Decoded<'_>,
        items: &[Special],
        body_crc: u32,
        rec_buf: &mut [u8],
    ) -> Option<usize> {
        let same = prev.uuid == self.uuid
            && prev.fingerprint == self.fingerprint
            && prev.config == self.config
            && prev.spare_count() == 1
            && prev.spare(0) == Some(self.spare);
        if !same {
            return None;
        }
        let head = RecordHead {
            version: self.version,
            prev: prev.version,
            base_crc: 0,
            state_crc: body_crc,
            scan: self.scan,
        };
        let changes = log::diff(prev.entries(), items);
        log::encode_record(rec_buf, &head, changes, self.spare_lbs as usize).ok()
    }

    /// Encodes the current state with `items` and writes it to the copies marked in
    /// `which`, one at a time in commit order, each durable before the next: as a
    /// record appended to the copy's log where `records` allows it and the copy's log
    /// has room (`log::plan_write`), else as a new base. Returns how many copies were
    /// written.
    ///
    /// Cut safety is the same for both kinds of write: one copy in flight at a time,
    /// and a record goes to whole logical blocks past the copy's last record, so a torn
    /// write damages only itself (it fails its checksum and the copy reads as the
    /// previous version). A record is only appended to a copy known to hold the
    /// version the record applies to (`LogEnd::version`); after a failed write no copy
    /// is known, and the next commit writes bases everywhere.
    fn write_copies(
        &mut self,
        items: &[Special],
        which: &[bool; COPY_COUNT],
        records: bool,
    ) -> Result<u32> {
        // Nothing landed yet, whatever makes this call fail (also before any write).
        self.landed = 0;
        self.issued = false;
        let spares = [self.spare];
        let st = State {
            uuid: self.uuid,
            version: self.version,
            fingerprint: self.fingerprint,
            config: self.config,
            spares: &spares,
            entries: items,
            scan: self.scan,
        };
        let len = match meta::encode(&st, 0, &mut self.buf) {
            Ok(n) => n,
            Err(meta::EncodeError::TooLarge) => {
                dmerr!("metadata full: the map cannot hold more entries");
                return Err(ENOSPC);
            }
            Err(_) => return Err(EINVAL),
        };
        // Whole logical blocks of the spare (a 4 KiB-sector disk fails smaller I/O);
        // the padding is zeroed, whatever an earlier, longer encoding left there.
        let Some(padded) = meta::padded_len(len, self.spare_lbs) else {
            dmerr!("metadata full: the map cannot hold more entries");
            return Err(ENOSPC);
        };
        // A base is written with one zeroed logical block after it (where its log's first
        // record would go), when the extent has room: records an earlier base left
        // there must not chain onto this one. They would if this base had the same
        // header checksum as theirs — a repair writing back the very state a damaged
        // copy held — and bring back a version that was never acknowledged.
        let base_write = padded
            .saturating_add(self.spare_lbs as usize)
            .min(COPY_MAX_BYTES);
        if let Some(pad) = self.buf.get_mut(len..base_write) {
            pad.fill(0);
        }
        let body_crc = self
            .buf
            .get(56..60)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_le_bytes)
            .ok_or(EINVAL)?;
        // The last written state, decoded once: what a record is made against. Only a
        // copy holding exactly it (same body checksum, not merely the same version:
        // repairs at load may have written the selected version with another
        // configuration) gets the record.
        let prev_buf = core::mem::replace(&mut self.prev_buf, KVVec::new());
        let mut rec_buf = core::mem::replace(&mut self.rec_buf, KVVec::new());
        let prev = match meta::decode(&prev_buf, self.prev_sector) {
            Ok(p) if self.prev_ok => Some(p),
            _ => None,
        };
        let prev_crc = prev.as_ref().map(|p| p.body_crc);
        let rec_len = match prev {
            Some(ref p) if records => self.make_record(p, items, body_crc, &mut rec_buf),
            _ => None,
        };
        self.prev_buf = prev_buf;
        self.rec_buf = rec_buf;
        let (client, bdev) = (self.client, self.bdev);
        let mut sector_in_buf = 0u64;
        let mut n = 0;
        // Copies that do not hold the current state go first (see `damaged`), then the
        // rest, each group in commit order.
        let damaged = self.damaged;
        let first = COMMIT_PLAN
            .iter()
            .filter(|s| damaged.get(s.copy).copied().unwrap_or(false));
        let rest = COMMIT_PLAN
            .iter()
            .filter(|s| !damaged.get(s.copy).copied().unwrap_or(false));
        let order = Iterator::chain(first, rest);
        for step in order {
            let k = step.copy;
            if !which.get(k).copied().unwrap_or(false) {
                continue;
            }
            let copy_sector = *COPY_SECTORS.get(k).ok_or(EINVAL)?;
            let end = self
                .logs
                .get(k)
                .copied()
                .flatten()
                .filter(|e| Some(e.state_crc) == prev_crc);
            let w = log::plan_write(end, rec_len);
            let mut base_crc = 0u32;
            let r = match (w, end) {
                (CopyWrite::Append { offset }, Some(e)) => {
                    let rec = self.rec_buf.get_mut(..rec_len.unwrap_or(0)).ok_or(EINVAL)?;
                    log::set_record_base(rec, e.base_crc, e.version).map_err(|_| EINVAL)?;
                    let at = copy_sector + (offset / 512) as u64;
                    self.issued = true;
                    io(client, bdev, at, rec, b::dmr_io_op_DMR_IO_WRITE_FUA)
                }
                _ => {
                    let buf = self.buf.get_mut(..base_write).ok_or(EINVAL)?;
                    // The copy's place: the spare it is written on and its sector.
                    meta::set_copy_spare(buf, &self.spare.uuid).map_err(|_| EINVAL)?;
                    meta::set_copy_sector(buf, copy_sector).map_err(|_| EINVAL)?;
                    sector_in_buf = copy_sector;
                    base_crc = buf
                        .get(124..128)
                        .and_then(|b| b.try_into().ok())
                        .map(u32::from_le_bytes)
                        .ok_or(EINVAL)?;
                    self.issued = true;
                    io(
                        client,
                        bdev,
                        copy_sector,
                        buf,
                        b::dmr_io_op_DMR_IO_WRITE_FUA,
                    )
                }
            };
            if let Err(e) = r {
                dmerr!(
                    "metadata write of copy {} (version {}) failed: {:?}",
                    k,
                    self.version,
                    e
                );
                self.logs = [None; COPY_COUNT];
                self.prev_ok = false;
                return Err(e);
            }
            if let Some(slot) = self.logs.get_mut(k) {
                *slot = log::after_write(
                    end,
                    w,
                    rec_len.unwrap_or(0),
                    (base_crc, padded),
                    (self.version, body_crc),
                );
            }
            if let Some(d) = self.damaged.get_mut(k) {
                *d = false;
            }
            n += 1;
            self.landed = n;
        }
        // The state just written is what the next record is made against.
        core::mem::swap(&mut self.buf, &mut self.prev_buf);
        self.prev_sector = sector_in_buf;
        self.prev_ok = true;
        Ok(n)
    }

    /// Writes what loading found missing (a fresh format, or copies to repair).
    ///
    /// Loading itself writes nothing: during a table reload the old table is still live
    /// and may commit until it is suspended, so writes wait for the first resume.
    pub(crate) fn write_pending(&mut self, items: &[Special]) -> Result {
        let which = self.pending_writes;
        if which.iter().any(|&w| w) {
            let n = self.write_copies(items, &which, false)?;
            self.pending_writes = [false; COPY_COUNT];
            self.repaired = n;
            dminfo!("wrote {} metadata copies (version {})", n, self.version);
        }
        if self.config_changed {
            self.commit(items)?;
            self.config_changed = false;
            dminfo!("configuration changed: committed version {}", self.version);
        }
        Ok(())
    }

    /// Commits `items` as the new metadata version.
    ///
    /// The version is consumed even when the commit fails, so a later commit never
    /// reuses the number of copies that may have reached the disk.
    pub(crate) fn commit(&mut self, items: &[Special]) -> Result {
        self.landed = 0;
        self.issued = false;
        self.version = self.version.checked_add(1).ok_or(EINVAL)?;
        let r = self.write_copies(items, &[true; COPY_COUNT], true);
        r.map(|_| ())
    }

    /// Whether the last commit, failed or not, wrote at least one copy.
    pub(crate) fn commit_landed(&self) -> bool {
        self.landed > 0
    }

    /// Whether the last commit failed with its outcome unknown: a copy write was
    /// issued and failed, none was known written, and the failed one may still be on
    /// the disk whole (an error reported after the data landed), so the next load may
    /// select either the new version or the previous one.
    pub(crate) fn commit_uncertain(&self) -> bool {
        self.issued && self.landed == 0
    }

    /// Whether `items` (in-memory states included) plus `extra` new remaps still fit
    /// one metadata copy and the in-memory table. Blocks being moved (`BUSY`) and the
    /// new ones count as singles: where they land decides whether they join a run.
    pub(crate) fn fits(items: &[Special], extra: usize) -> bool {
        let mut c = meta::count(items);
        let busy = items.iter().filter(|e| e.state == BUSY).count();
        c.singles = c.singles.saturating_add(busy).saturating_add(extra);
        items.len().saturating_add(extra) <= meta::MAX_BLOCKS && meta::fits(1, &c)
    }
}

/// Refuses a state recording more remapped and pending blocks than the module keeps in
/// memory ([`meta::MAX_BLOCKS`]).
fn check_block_count(
    state: &meta::Decoded<'_>,
) -> core::result::Result<(), (&'static CStr, Error)> {
    let (r, p) = (state.counts().0, state.counts().2);
    if r.checked_add(p).map_or(true, |n| n > meta::MAX_BLOCKS) {
        dmerr!(
            "the metadata records {} remapped and {} pending blocks; this module keeps at most {} in memory",
            r,
            p,
            meta::MAX_BLOCKS
        );
        return Err((
            c"Spare metadata holds more blocks than this module keeps in memory",
            EINVAL,
        ));
    }
    Ok(())
}

/// The state of a copy whose log holds records: its base `base` (read from `extent`)
/// with the records applied, encoded as a base into `out`; returns the length.
fn replay(
    base: &meta::Decoded<'_>,
    extent: &[u8],
    version: u64,
    out: &mut [u8],
) -> core::result::Result<usize, &'static CStr> {
    let nomem = c"Cannot allocate metadata buffers";
    let mut items: KVVec<Special> = KVVec::new();
    for e in base.entries() {
        items.push(e, GFP_KERNEL).map_err(|_| nomem)?;
    }
    let mut scan = base.scan;
    let mut last = base.version;
    for r in log::records(extent, base) {
        let mut next =
            KVVec::with_capacity(items.len() + r.change_count(), GFP_KERNEL).map_err(|_| nomem)?;
        for e in log::apply(items.iter().copied(), r.changes()) {
            next.push(e, GFP_KERNEL).map_err(|_| nomem)?;
        }
        items = next;
        scan = r.scan;
        last = r.version;
    }
    if last != version {
        return Err(c"Spare metadata log does not reach the selected version");
    }
    let mut spares = [SpareInfo::default(); meta::MAX_SPARES];
    let n = base.spare_count().min(meta::MAX_SPARES);
    for (i, s) in spares.iter_mut().enumerate().take(n) {
        *s = base.spare(i).unwrap_or_default();
    }
    let st = State {
        uuid: base.uuid,
        version,
        fingerprint: base.fingerprint,
        config: base.config,
        spares: spares.get(..n).unwrap_or(&[]),
        entries: &items,
        scan,
    };
    meta::encode(&st, 0, out)
        .map_err(|_| c"Spare metadata log replays to a state that does not fit a copy")
}
