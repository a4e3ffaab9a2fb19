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
int dmr_bio_has_fua_or_flush(const struct bio *bio);

sector_t dmr_bdev_nr_sectors(struct block_device *bdev);
unsigned int dmr_bdev_logical_block_size(struct block_device *bdev);
dev_t dmr_bdev_devt(struct block_device *bdev);
void dmr_limits_io_min(struct queue_limits *limits, unsigned int bytes);

/* blk_status_t values the Rust side compares against (checked in shim.c). */
#define DMR_STS_OK 0
#define DMR_STS_IOERR 10

#endif
