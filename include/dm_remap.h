/* SPDX-License-Identifier: GPL-2.0 */
/*
 * dm-remap: what the Rust module needs from C.
 *
 * bindgen reads this header (see Kbuild) and generates the module's own bindings for
 * the device-mapper types and functions, which the kernel's bindings do not cover.
 * Types those bindings already have (bio, block_device, queue_limits, ...) are taken
 * from kernel::bindings. The dmr_* functions are the C shim (src/shim.c): wrappers
 * of static inline helpers and flag macros that Rust cannot call directly.
 */
#ifndef DM_REMAP_H
#define DM_REMAP_H

#include <linux/device-mapper.h>
#include <linux/bio.h>
#include <linux/blkdev.h>
#include <linux/dm-io.h>
#include <linux/workqueue.h>

/* Operation class of a bio, as the Rust side needs it. */
enum dmr_bio_kind {
	DMR_BIO_READ = 0,
	DMR_BIO_WRITE = 1,
	DMR_BIO_FLUSH = 2,	/* empty REQ_PREFLUSH */
	DMR_BIO_OTHER = 3,	/* discard, write zeroes, ...: not advertised */
};

enum dmr_bio_kind dmr_bio_kind(const struct bio *bio);
unsigned int dmr_bio_sectors(const struct bio *bio);
sector_t dmr_bio_sector(const struct bio *bio);
void dmr_bio_remap(struct bio *bio, struct block_device *bdev, sector_t sector);
/* Whether the bio asks for durability (REQ_FUA or REQ_PREFLUSH). */
int dmr_bio_has_fua_or_flush(const struct bio *bio);

sector_t dmr_bdev_nr_sectors(struct block_device *bdev);
unsigned int dmr_bdev_logical_block_size(struct block_device *bdev);
unsigned int dmr_bdev_physical_block_size(struct block_device *bdev);
dev_t dmr_bdev_devt(struct block_device *bdev);
void dmr_limits_io_min(struct queue_limits *limits, unsigned int bytes);
/* Whether a table's open mode allows writes (BLK_OPEN_WRITE). */
int dmr_mode_writable(blk_mode_t mode);
/* Records that ti's table holds dev as main (spare = 0) or spare device; ERR_PTR(-EBUSY)
 * when that conflicts with a device another live target holds (see shim.c). */
void *dmr_claim(struct dm_target *ti, dev_t dev, int spare);
/* Releases a claim (NULL and error pointers are ignored). */
void dmr_unclaim(void *claim);
/* 1 when the two devices share sectors: partitions of one disk whose ranges meet, or one
 * stacked (dm, md: a holder) on a device that meets the other; 0 when not; -E2BIG when
 * more devices lie under one of them than the walk follows, -EINTR when killed while
 * waiting for a disk, -ENOMEM. See shim.c. */
int dmr_bdevs_overlap(struct block_device *a, struct block_device *b);

/* The main device's own identifier, for binding a spare to it. Kinds: 1 T10, 2 EUI-64,
 * 3 NAA (enum blk_unique_id, from block_device_operations.get_unique_id of the whole
 * disk: sd, nvme), 4 a partition's PARTUUID (36 characters, as the kernel keeps it).
 * Writes up to 36 bytes to id and the kind to *kind; returns the length, 0 when the
 * device has no identifier. */
int dmr_bdev_identity(struct block_device *bdev, u8 *kind, u8 id[36]);

/* A bio's data position, saved in map and restored before a worker touches the bio
 * again (the fields of drivers/md/dm-bio-record.h that dm-remap needs). */
struct dmr_bio_rec {
	struct bvec_iter iter;
};
void dmr_bio_save(struct bio *bio, struct dmr_bio_rec *rec);
void dmr_bio_restore(struct bio *bio, struct dmr_bio_rec *rec);
/* Copies len bytes at byte offset off of the bio's data to (to_bio = 0) or from buf. */
void dmr_bio_copy(struct bio *bio, unsigned int off, void *buf, unsigned int len, int to_bio);
/* Completes a bio with a blk_status_t value. */
void dmr_bio_endio(struct bio *bio, unsigned char status);
void dmr_bio_submit(struct bio *bio);

/* RCU read side, for the lock-free remap table lookup in map. */
void dmr_rcu_read_lock(void);
void dmr_rcu_read_unlock(void);
void dmr_synchronize_rcu(void);
void dmr_synchronize_rcu_expedited(void);

/* Synchronous I/O of a kernel (vmalloc or kmalloc) buffer through dm-io. FUA writes
 * carry REQ_PREFLUSH too: everything written before (data blocks, earlier copies) is
 * durable before the copy, and the copy is durable when the call returns. */
enum dmr_io_op {
	DMR_IO_READ = 0,
	DMR_IO_WRITE = 1,	/* plain write */
	DMR_IO_WRITE_FUA = 2,	/* preflush + FUA: durable, ordered after earlier writes */
	DMR_IO_FLUSH = 3,	/* an empty preflush (count 0): earlier writes durable */
};
int dmr_io(struct dm_io_client *client, struct block_device *bdev, sector_t sector,
	   sector_t count, void *buf, enum dmr_io_op op);
void dmr_random_bytes(void *buf, size_t len);
/* Monotonic time (boot clock) in milliseconds. */
u64 dmr_now_ms(void);

/* Microseconds of the monotonic clock; seconds of the real-time clock. */
u64 dmr_now_us(void);
u64 dmr_real_seconds(void);
/* Nanoseconds of the monotonic clock (ktime_get_ns), for I/O latency. */
u64 dmr_now_ns(void);

/*
 * A per-CPU latency histogram of DMR_LAT_BUCKETS u64 counters (remap-core's
 * latency::BUCKETS, checked at compile time in sampler.rs). dmr_lat_add counts one I/O
 * in bucket b (clamped to the last) with this_cpu_inc: no lock, no atomic, any
 * context. dmr_lat_sum adds every CPU's counters into out[DMR_LAT_BUCKETS].
 */
#define DMR_LAT_BUCKETS 400
void *dmr_lat_alloc(void);
void dmr_lat_free(void *h);
void dmr_lat_add(void *h, unsigned int b);
void dmr_lat_sum(void *h, u64 *out);

/*
 * The hot path's I/O counters, per CPU (no shared cache line written by every bio):
 * DMR_IOSTAT_COUNT u64 counters indexed by the values below. dmr_iostat_bio counts
 * one read or write of `sectors` with this_cpu_inc/this_cpu_add and returns
 * ktime_get_ns() (the bio's start time, in the same call); dmr_iostat_flush counts a
 * flush; dmr_iostat_sum adds every CPU's counters into out[DMR_IOSTAT_COUNT].
 */
#define DMR_IOSTAT_READS 0
#define DMR_IOSTAT_WRITES 1
#define DMR_IOSTAT_READ_SECTORS 2
#define DMR_IOSTAT_WRITE_SECTORS 3
#define DMR_IOSTAT_FLUSHES 4
#define DMR_IOSTAT_COUNT 5
void *dmr_iostat_alloc(void);
void dmr_iostat_free(void *h);
u64 dmr_iostat_bio(void *h, bool write, u64 sectors);
void dmr_iostat_flush(void *h);
void dmr_iostat_sum(void *h, u64 *out);

/*
 * The background scan's delayed work item (on system_long_wq). The work runs fn(ctx)
 * with memalloc_noio; fn requeues it with dmr_scanner_queue. Cancel waits for a run in
 * progress and keeps a self-requeue from taking effect.
 */
struct dmr_scanner;
struct dmr_scanner *dmr_scanner_create(void (*fn)(void *), void *ctx);
void dmr_scanner_destroy(struct dmr_scanner *s);
void dmr_scanner_queue(struct dmr_scanner *s, u64 delay_ms);
void dmr_scanner_cancel(struct dmr_scanner *s);

/* Module parameters (validated on write): the defaults of the scan options. The
 * ranges are remap-core's table_line limits (checked at compile time in scan.rs). */
#define DMR_SCAN_RATE_LOWEST 64
#define DMR_SCAN_RATE_HIGHEST 4194304
#define DMR_SCAN_INTERVAL_LONGEST 31536000
unsigned int dmr_param_scan_rate_min_kib(void);
unsigned int dmr_param_scan_rate_max_kib(void);
unsigned int dmr_param_scan_interval_s(void);
/* Seconds between statistics samples (1..DMR_SAMPLE_INTERVAL_LONGEST, default 3600). */
#define DMR_SAMPLE_INTERVAL_LONGEST 86400
unsigned int dmr_param_sample_interval_s(void);
/* Proactive remapping defaults (table options proactive_reserve, proactive_region). */
#define DMR_PROACTIVE_REGION_LARGEST 64
unsigned int dmr_param_proactive_reserve_pct(void);
unsigned int dmr_param_proactive_region_blocks(void);
/* Failure prediction tunables, read when a target's engine is made. */
#define DMR_PREDICT_UNUSABLE_PPM_HIGHEST 1000000
#define DMR_PREDICT_DAYS_LONGEST 3650
#define DMR_PREDICT_HOLD_LONGEST 2592000
unsigned int dmr_param_predict_unusable_ppm(void);
unsigned int dmr_param_predict_warning_days(void);
unsigned int dmr_param_predict_critical_days(void);
unsigned int dmr_param_predict_min_confidence(void);
unsigned int dmr_param_predict_raise_hold_s(void);
unsigned int dmr_param_predict_lower_hold_s(void);

/* An ordered workqueue with one work item and a bio list, for the remap worker. */
struct dmr_worker;
struct dmr_worker *dmr_worker_create(const char *name, void (*fn)(void *), void *ctx);
void dmr_worker_destroy(struct dmr_worker *w);
void dmr_worker_kick(struct dmr_worker *w);
void dmr_worker_flush(struct dmr_worker *w);
void dmr_worker_add_bio(struct dmr_worker *w, struct bio *bio);
/* Takes at most max queued bios, oldest first; returns the first, chained through
 * bi_next (the rest stay queued for the next call). */
struct bio *dmr_worker_take_bios(struct dmr_worker *w, unsigned int max);
struct bio *dmr_bio_next(struct bio *bio);
/* In-flight main-device writes (SRCU, semaphore-like: taken in map, released in
 * end_io); dmr_io_drain waits for every write that entered before it was called. */
int dmr_io_enter(struct dmr_worker *w);
void dmr_io_exit(struct dmr_worker *w, int idx);
void dmr_io_drain(struct dmr_worker *w);

/* blk_status_t values the Rust side compares against (checked in shim.c). */
#define DMR_STS_OK 0
#define DMR_STS_IOERR 10
#define DMR_STS_MEDIUM 7
#define DMR_STS_NOSPC 3
#define DMR_STS_AGAIN 12
#define DMR_STS_TRANSPORT 4
#define DMR_STS_RESOURCE 9

/*
 * sysfs: /sys/kernel/dm_remap/dm-N/, one directory per mapped device that has a remap table
 * (loaded or live), shared by its tables: dmr_sysfs_get in ctr (creates it, or takes
 * a reference), dmr_sysfs_activate in resume (the files now read the resumed target),
 * dmr_sysfs_put in dtr (waits for a read or write of the files in progress on this
 * target, then drops the reference; the last one removes the directory). A file's
 * read or write calls the show/store callbacks registered at module init with the
 * active target and the file's id: a value below DMR_SYSFS_KNOB is the field of the
 * INFO status line the file shows; the others are the knobs.
 */
enum dmr_sysfs_knob {
	DMR_SYSFS_KNOB = 100,
	DMR_SYSFS_SCAN_ACTION = 100,
	DMR_SYSFS_SCAN_RATE_MAX_KIBS = 101,
};
typedef long (*dmr_sysfs_show_fn)(void *target, unsigned int id, char *buf);
typedef long (*dmr_sysfs_store_fn)(void *target, unsigned int id, const char *buf,
				   size_t len);
int dmr_sysfs_init(dmr_sysfs_show_fn show, dmr_sysfs_store_fn store);
void dmr_sysfs_exit(void);
void *dmr_sysfs_get(struct dm_target *ti);
void dmr_sysfs_activate(void *h, void *target);
void dmr_sysfs_put(void *h, void *target);

#endif
