// SPDX-License-Identifier: GPL-2.0
/*
 * dm-remap C shim: wrappers for static inline helpers and flag macros of the block
 * layer, which Rust cannot call. Nothing here holds logic of dm-remap itself.
 */
#include "../include/dm_remap.h"

static_assert(DMR_STS_OK == (__force int)BLK_STS_OK);
static_assert(DMR_STS_IOERR == (__force int)BLK_STS_IOERR);

enum dmr_bio_kind dmr_bio_kind(const struct bio *bio)
{
	if (op_is_flush(bio->bi_opf) && !bio_sectors(bio))
		return DMR_BIO_FLUSH;
	switch (bio_op(bio)) {
	case REQ_OP_READ:
		return DMR_BIO_READ;
	case REQ_OP_WRITE:
		return DMR_BIO_WRITE;
	default:
		return DMR_BIO_OTHER;
	}
}

unsigned int dmr_bio_sectors(const struct bio *bio)
{
	return bio_sectors(bio);
}

sector_t dmr_bio_sector(const struct bio *bio)
{
	return bio->bi_iter.bi_sector;
}

void dmr_bio_remap(struct bio *bio, struct block_device *bdev, sector_t sector)
{
	bio_set_dev(bio, bdev);
	bio->bi_iter.bi_sector = sector;
}

int dmr_bio_has_fua_or_flush(const struct bio *bio)
{
	return op_is_flush(bio->bi_opf);
}

sector_t dmr_bdev_nr_sectors(struct block_device *bdev)
{
	return bdev_nr_sectors(bdev);
}

unsigned int dmr_bdev_logical_block_size(struct block_device *bdev)
{
	return bdev_logical_block_size(bdev);
}

dev_t dmr_bdev_devt(struct block_device *bdev)
{
	return bdev->bd_dev;
}

void dmr_limits_io_min(struct queue_limits *limits, unsigned int bytes)
{
	if (limits->io_min < bytes)
		limits->io_min = bytes;
}
