// SPDX-License-Identifier: GPL-2.0
/*
 * dm-remap C shim: wrappers for static inline helpers and flag macros of the block
 * layer, which Rust cannot call. Nothing here holds logic of dm-remap itself.
 */
#include "../include/dm_remap.h"
#include <linux/srcu.h>
#include <linux/sched/mm.h>
#include <linux/random.h>
#include <linux/mm.h>
#include <linux/slab.h>
#include <linux/kernfs.h>
#include <linux/moduleparam.h>
#include <linux/workqueue.h>
#include <linux/timekeeping.h>
#include <linux/percpu.h>
#include <linux/kobject.h>
#include <linux/sysfs.h>
#include <linux/rwsem.h>
#include <linux/blkdev.h>
#include <linux/dm-ioctl.h>

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

unsigned int dmr_bdev_physical_block_size(struct block_device *bdev)
{
	return bdev_physical_block_size(bdev);
}

dev_t dmr_bdev_devt(struct block_device *bdev)
{
	return bdev->bd_dev;
}

int dmr_mode_writable(blk_mode_t mode)
{
	return !!(mode & BLK_OPEN_WRITE);
}

int dmr_bdev_identity(struct block_device *bdev, u8 *kind, u8 id[36])
{
	/* The designators nfsd's pNFS block layout trusts, most specific first. */
	static const u8 types[] = { BLK_UID_NAA, BLK_UID_EUI64, BLK_UID_T10 };
	const struct block_device_operations *fops = bdev->bd_disk->fops;
	u8 buf[16];
	int i, r;

	*kind = 0;
	if (bdev_is_partition(bdev)) {
		const struct partition_meta_info *info = bdev->bd_meta_info;

		if (info && strnlen(info->uuid, sizeof(info->uuid)) == 36) {
			memcpy(id, info->uuid, 36);
			*kind = 4;
			return 36;
		}
		return 0;
	}
	if (!fops->get_unique_id)
		return 0;
	for (i = 0; i < ARRAY_SIZE(types); i++) {
		r = fops->get_unique_id(bdev->bd_disk, buf, types[i]);
		if (r > 0 && r <= (int)sizeof(buf)) {
			memcpy(id, buf, r);
			*kind = types[i];
			return r;
		}
	}
	return 0;
}

void dmr_limits_io_min(struct queue_limits *limits, unsigned int bytes)
{
	if (limits->io_min < bytes)
		limits->io_min = bytes;
}

static_assert(DMR_STS_MEDIUM == (__force int)BLK_STS_MEDIUM);
static_assert(DMR_STS_NOSPC == (__force int)BLK_STS_NOSPC);
static_assert(DMR_STS_AGAIN == (__force int)BLK_STS_AGAIN);
static_assert(DMR_STS_TRANSPORT == (__force int)BLK_STS_TRANSPORT);
static_assert(DMR_STS_RESOURCE == (__force int)BLK_STS_RESOURCE);

void dmr_bio_save(struct bio *bio, struct dmr_bio_rec *rec)
{
	rec->iter = bio->bi_iter;
}

void dmr_bio_restore(struct bio *bio, struct dmr_bio_rec *rec)
{
	bio->bi_iter = rec->iter;
}

void dmr_bio_copy(struct bio *bio, unsigned int off, void *buf, unsigned int len, int to_bio)
{
	struct bvec_iter iter = bio->bi_iter;
	struct bio_vec bv;
	char *p = buf;

	if (off >= iter.bi_size)
		return;
	bio_advance_iter(bio, &iter, off);
	while (len && iter.bi_size) {
		bv = bio_iter_iovec(bio, iter);
		bv.bv_len = min(bv.bv_len, len);
		if (to_bio)
			memcpy_to_bvec(&bv, p);
		else
			memcpy_from_bvec(p, &bv);
		p += bv.bv_len;
		len -= bv.bv_len;
		bio_advance_iter(bio, &iter, bv.bv_len);
	}
}

void dmr_bio_endio(struct bio *bio, unsigned char status)
{
	bio->bi_status = (__force blk_status_t)status;
	bio_endio(bio);
}

void dmr_bio_submit(struct bio *bio)
{
	submit_bio_noacct(bio);
}

void dmr_rcu_read_lock(void)
{
	rcu_read_lock();
}

void dmr_rcu_read_unlock(void)
{
	rcu_read_unlock();
}

void dmr_synchronize_rcu(void)
{
	synchronize_rcu();
}

/*
 * For the worker's batches only (see Published::publish): the bios that failed on the
 * main device, or were deferred to the worker, wait for their map changes, and a
 * normal grace period lasts several scheduler ticks (a remapped write at QD1 took
 * about 40 ms, 2 ms expedited: make bench BENCH_CONFIGS=wremap). dm core's table swap
 * (dm_sync_table) is expedited too. The guarantee is synchronize_rcu()'s; rcu_normal
 * (boot parameter, or /sys/kernel/rcu_normal; on by default on PREEMPT_RT after boot)
 * makes it a normal grace period.
 */
void dmr_synchronize_rcu_expedited(void)
{
	synchronize_rcu_expedited();
}

int dmr_io(struct dm_io_client *client, struct block_device *bdev, sector_t sector,
	   sector_t count, void *buf, enum dmr_io_op op)
{
	bool vmalloced = is_vmalloc_addr(buf);
	struct dm_io_region region = { .bdev = bdev, .sector = sector, .count = count };
	struct dm_io_request req = {
		.mem.type = vmalloced ? DM_IO_VMA : DM_IO_KMEM,
		.mem.ptr.addr = buf,
		.client = client,
	};
	unsigned long error_bits = 0;
	int r;

	switch (op) {
	case DMR_IO_READ:
		req.bi_opf = REQ_OP_READ | REQ_SYNC;
		break;
	case DMR_IO_WRITE:
		req.bi_opf = REQ_OP_WRITE | REQ_SYNC;
		break;
	case DMR_IO_FLUSH:
		/* dm-io sends a zero-sized flush for a region of count 0 (as dm-log does). */
		req.bi_opf = REQ_OP_WRITE | REQ_SYNC | REQ_PREFLUSH;
		region.count = 0;
		break;
	default:
		req.bi_opf = REQ_OP_WRITE | REQ_SYNC | REQ_PREFLUSH | REQ_FUA;
		break;
	}
	if (vmalloced)
		req.mem.ptr.vma = buf;
	r = dm_io(&req, 1, &region, &error_bits, IOPRIO_DEFAULT);
	if (r)
		return r;
	return error_bits ? -EIO : 0;
}

struct dmr_worker {
	struct workqueue_struct *wq;
	struct work_struct work;
	spinlock_t lock;
	struct bio_list bios;
	void (*fn)(void *ctx);
	void *ctx;
	struct srcu_struct inflight;
};

static void dmr_worker_run(struct work_struct *work)
{
	struct dmr_worker *w = container_of(work, struct dmr_worker, work);
	/* The worker completes I/O: its allocations must not recurse into I/O. */
	unsigned int noio = memalloc_noio_save();

	w->fn(w->ctx);
	memalloc_noio_restore(noio);
}

struct dmr_worker *dmr_worker_create(const char *name, void (*fn)(void *), void *ctx)
{
	struct dmr_worker *w = kzalloc(sizeof(*w), GFP_KERNEL);

	if (!w)
		return NULL;
	w->wq = alloc_ordered_workqueue("%s", WQ_MEM_RECLAIM, name);
	if (!w->wq) {
		kfree(w);
		return NULL;
	}
	if (init_srcu_struct(&w->inflight)) {
		destroy_workqueue(w->wq);
		kfree(w);
		return NULL;
	}
	INIT_WORK(&w->work, dmr_worker_run);
	spin_lock_init(&w->lock);
	bio_list_init(&w->bios);
	w->fn = fn;
	w->ctx = ctx;
	return w;
}

void dmr_worker_destroy(struct dmr_worker *w)
{
	destroy_workqueue(w->wq);
	cleanup_srcu_struct(&w->inflight);
	kfree(w);
}

void dmr_worker_kick(struct dmr_worker *w)
{
	queue_work(w->wq, &w->work);
}

void dmr_worker_flush(struct dmr_worker *w)
{
	flush_workqueue(w->wq);
}

void dmr_worker_add_bio(struct dmr_worker *w, struct bio *bio)
{
	unsigned long flags;

	spin_lock_irqsave(&w->lock, flags);
	bio_list_add(&w->bios, bio);
	spin_unlock_irqrestore(&w->lock, flags);
	queue_work(w->wq, &w->work);
}

struct bio *dmr_worker_take_bios(struct dmr_worker *w, unsigned int max)
{
	struct bio_list taken = BIO_EMPTY_LIST;
	unsigned long flags;
	struct bio *bio;

	spin_lock_irqsave(&w->lock, flags);
	while (max-- && (bio = bio_list_pop(&w->bios)))
		bio_list_add(&taken, bio);
	spin_unlock_irqrestore(&w->lock, flags);
	return bio_list_get(&taken);
}

struct bio *dmr_bio_next(struct bio *bio)
{
	struct bio *next = bio->bi_next;

	bio->bi_next = NULL;
	return next;
}

int dmr_io_enter(struct dmr_worker *w)
{
	return srcu_down_read(&w->inflight);
}

void dmr_io_exit(struct dmr_worker *w, int idx)
{
	srcu_up_read(&w->inflight, idx);
}

/* Plain synchronize_srcu(): it expedites itself when no grace period of this SRCU ran
 * recently, as for the drains here (each made under the core mutex, between I/O). */
void dmr_io_drain(struct dmr_worker *w)
{
	synchronize_srcu(&w->inflight);
}

void dmr_random_bytes(void *buf, size_t len)
{
	get_random_bytes(buf, len);
}

u64 dmr_now_ms(void)
{
	return div_u64(ktime_get_boottime_ns(), NSEC_PER_MSEC);
}

/*
 * Devices held by live dm-remap targets, with their role. dm core opens every table's
 * devices with one shared holder, so it lets two tables name the same device; a spare
 * holds metadata and remapped data that exactly one target may own. A spare may not be
 * another target's spare or main device (nor a main device another target's spare),
 * except between a device's live table and the table that replaces it (a reload of the
 * same mapped device), which both hold it until the old one is destroyed.
 */
struct dmr_claim {
	struct list_head node;
	dev_t dev;
	struct mapped_device *md;
	struct dm_table *table;
	bool spare;
};
static LIST_HEAD(dmr_claims);
static DEFINE_MUTEX(dmr_claims_lock);

void *dmr_claim(struct dm_target *ti, dev_t dev, int spare)
{
	struct mapped_device *md = dm_table_get_md(ti->table);
	struct dmr_claim *c, *n;

	n = kmalloc(sizeof(*n), GFP_KERNEL);
	if (!n)
		return ERR_PTR(-ENOMEM);
	n->dev = dev;
	n->md = md;
	n->table = ti->table;
	n->spare = spare;
	mutex_lock(&dmr_claims_lock);
	list_for_each_entry(c, &dmr_claims, node) {
		if (c->dev == dev && (c->spare || spare) &&
		    (c->md != md || c->table == ti->table)) {
			mutex_unlock(&dmr_claims_lock);
			kfree(n);
			return ERR_PTR(-EBUSY);
		}
	}
	list_add(&n->node, &dmr_claims);
	mutex_unlock(&dmr_claims_lock);
	return n;
}

void dmr_unclaim(void *claim)
{
	struct dmr_claim *c = claim;

	if (IS_ERR_OR_NULL(c))
		return;
	mutex_lock(&dmr_claims_lock);
	list_del(&c->node);
	mutex_unlock(&dmr_claims_lock);
	kfree(c);
}

/*
 * Whether the spare shares sectors with the main device. Two block devices share
 * sectors when they are, or sit on, partitions of one disk whose sector ranges meet, or
 * when one is stacked on the other through a driver that links itself as a holder
 * (bd_link_disk_holder: dm, md, bcache). The block layer does not say which part of a
 * lower device a stacked device uses, so a stacked device counts as using the whole of
 * each device under it: a spare on a dm-linear over the second half of the main device
 * is refused, and so is one on another LV of the main device's volume group. A
 * partition of a stacked disk (md0p1) counts as using everything under that disk.
 *
 * Each side's stack is found from the top down. For each disk D found so far, the
 * devices under it are those named in D's "slaves" directory; every block device (the
 * class of the device itself: block_class is not exported) is looked up there by
 * name. D->slave_dir is read under D->open_mutex while D is live: del_gendisk unhashes
 * the disk under that mutex before it puts slave_dir, as bd_link_disk_holder relies
 * on. Only disks of the two stacks are locked (killably: a disk whose open_mutex is held
 * across stuck I/O must not make the table load unkillable), never a lower device's
 * holders directory, which a partition rescan frees under the disk's mutex alone.
 * Every device found is pinned (get_device) until the walk ends.
 */
#define DMR_STACK_MAX 256

struct dmr_stack_dev {
	struct device *pin;		/* a reference on the device, put by dmr_stack_put */
	dev_t whole;
	sector_t start;
	sector_t len;
};

static int dmr_stack_add(struct dmr_stack_dev *set, int n, struct block_device *bdev)
{
	int i;

	for (i = 0; i < n; i++)
		if (dev_to_bdev(set[i].pin) == bdev)
			return n;
	if (n == DMR_STACK_MAX)
		return -E2BIG;
	set[n].pin = get_device(&bdev->bd_device);
	set[n].whole = bdev_whole(bdev)->bd_dev;
	set[n].start = bdev->bd_start_sect;
	set[n].len = bdev_nr_sectors(bdev);
	return n + 1;
}

static void dmr_stack_put(struct dmr_stack_dev *set, int n)
{
	while (n-- > 0)
		put_device(set[n].pin);
}

/*
 * The devices under set[0], set[0] included, into set; returns the count. On an
 * error (-E2BIG: more devices than DMR_STACK_MAX; -EINTR: killed while waiting for a
 * disk) *count still says how many entries hold a reference.
 */
static int dmr_stack(struct dmr_stack_dev *set, int *count)
{
	const struct class *cls = set[0].pin->class;
	int n = *count, i, j, r = 0;

	for (i = 0; i < n && !r; i++) {
		struct gendisk *disk = dev_to_bdev(set[i].pin)->bd_disk;
		struct class_dev_iter iter;
		struct device *dev;
		bool seen = false;

		/* Each disk once: its partitions share its slaves. */
		for (j = 0; j < i; j++)
			seen |= dev_to_bdev(set[j].pin)->bd_disk == disk;
		if (seen)
			continue;
		if (mutex_lock_killable(&disk->open_mutex)) {
			r = -EINTR;
			break;
		}
		if (disk_live(disk) && disk->slave_dir && disk->slave_dir->sd) {
			class_dev_iter_init(&iter, cls, NULL, NULL);
			while (!r && (dev = class_dev_iter_next(&iter))) {
				struct kernfs_node *kn;

				kn = kernfs_find_and_get(disk->slave_dir->sd, dev_name(dev));
				if (!kn)
					continue;
				kernfs_put(kn);
				r = dmr_stack_add(set, n, dev_to_bdev(dev));
				if (r > 0) {
					n = r;
					r = 0;
				}
			}
			class_dev_iter_exit(&iter);
		}
		mutex_unlock(&disk->open_mutex);
	}
	*count = n;
	return r ? r : n;
}

int dmr_bdevs_overlap(struct block_device *a, struct block_device *b)
{
	struct dmr_stack_dev *sa, *sb;
	int na = 0, nb = 0, i, j, ret;

	sa = kcalloc(2 * DMR_STACK_MAX, sizeof(*sa), GFP_KERNEL);
	if (!sa)
		return -ENOMEM;
	sb = sa + DMR_STACK_MAX;
	na = dmr_stack_add(sa, 0, a);
	nb = dmr_stack_add(sb, 0, b);
	ret = dmr_stack(sa, &na);
	if (ret >= 0)
		ret = dmr_stack(sb, &nb);
	if (ret < 0)
		goto out;
	ret = 0;
	for (i = 0; i < na && !ret; i++)
		for (j = 0; j < nb && !ret; j++)
			ret = sa[i].whole == sb[j].whole &&
			      sa[i].start < sb[j].start + sb[j].len &&
			      sb[j].start < sa[i].start + sa[i].len;
out:
	dmr_stack_put(sa, na);
	dmr_stack_put(sb, nb);
	kfree(sa);
	return ret;
}

u64 dmr_now_us(void)
{
	return div_u64(ktime_get_boottime_ns(), NSEC_PER_USEC);
}

u64 dmr_real_seconds(void)
{
	return ktime_get_real_seconds();
}

u64 dmr_now_ns(void)
{
	return ktime_get_ns();
}

struct dmr_lat {
	u64 b[DMR_LAT_BUCKETS];
};

void *dmr_lat_alloc(void)
{
	return (void __force *)alloc_percpu(struct dmr_lat);
}

void dmr_lat_free(void *h)
{
	free_percpu((struct dmr_lat __percpu __force *)h);
}

void dmr_lat_add(void *h, unsigned int b)
{
	struct dmr_lat __percpu *l = (struct dmr_lat __percpu __force *)h;

	this_cpu_inc(l->b[min_t(unsigned int, b, DMR_LAT_BUCKETS - 1)]);
}

/* Adds every CPU's n u64 counters of the per-CPU array p into out[n]. */
static void dmr_pcpu_sum(u64 __percpu *p, unsigned int n, u64 *out)
{
	unsigned int i;
	int cpu;

	memset(out, 0, sizeof(u64) * n);
	for_each_possible_cpu(cpu) {
		const u64 *c = per_cpu_ptr(p, cpu);

		for (i = 0; i < n; i++)
			out[i] += READ_ONCE(c[i]);
	}
}

void dmr_lat_sum(void *h, u64 *out)
{
	struct dmr_lat __percpu *l = (struct dmr_lat __percpu __force *)h;

	dmr_pcpu_sum(l->b, DMR_LAT_BUCKETS, out);
}

struct dmr_iostat {
	u64 v[DMR_IOSTAT_COUNT];
};
/* dmr_iostat_sum's READ_ONCE of a u64 is one load (no torn read) on 64-bit only. */
static_assert(BITS_PER_LONG == 64);

void *dmr_iostat_alloc(void)
{
	return (void __force *)alloc_percpu(struct dmr_iostat);
}

void dmr_iostat_free(void *h)
{
	free_percpu((struct dmr_iostat __percpu __force *)h);
}

u64 dmr_iostat_bio(void *h, bool write, u64 sectors)
{
	struct dmr_iostat __percpu *s = (struct dmr_iostat __percpu __force *)h;

	if (write) {
		this_cpu_inc(s->v[DMR_IOSTAT_WRITES]);
		this_cpu_add(s->v[DMR_IOSTAT_WRITE_SECTORS], sectors);
	} else {
		this_cpu_inc(s->v[DMR_IOSTAT_READS]);
		this_cpu_add(s->v[DMR_IOSTAT_READ_SECTORS], sectors);
	}
	return ktime_get_ns();
}

void dmr_iostat_flush(void *h)
{
	struct dmr_iostat __percpu *s = (struct dmr_iostat __percpu __force *)h;

	this_cpu_inc(s->v[DMR_IOSTAT_FLUSHES]);
}

void dmr_iostat_sum(void *h, u64 *out)
{
	struct dmr_iostat __percpu *s = (struct dmr_iostat __percpu __force *)h;

	dmr_pcpu_sum(s->v, DMR_IOSTAT_COUNT, out);
}

struct dmr_scanner {
	struct delayed_work dw;
	void (*fn)(void *ctx);
	void *ctx;
};

static void dmr_scanner_run(struct work_struct *work)
{
	struct dmr_scanner *s = container_of(to_delayed_work(work), struct dmr_scanner, dw);
	/* The scan takes the mutex the remap worker needs to complete I/O. */
	unsigned int noio = memalloc_noio_save();

	s->fn(s->ctx);
	memalloc_noio_restore(noio);
}

struct dmr_scanner *dmr_scanner_create(void (*fn)(void *), void *ctx)
{
	struct dmr_scanner *s = kzalloc(sizeof(*s), GFP_KERNEL);

	if (!s)
		return NULL;
	INIT_DELAYED_WORK(&s->dw, dmr_scanner_run);
	s->fn = fn;
	s->ctx = ctx;
	return s;
}

void dmr_scanner_destroy(struct dmr_scanner *s)
{
	cancel_delayed_work_sync(&s->dw);
	kfree(s);
}

void dmr_scanner_queue(struct dmr_scanner *s, u64 delay_ms)
{
	unsigned long j = msecs_to_jiffies(min_t(u64, delay_ms, 3600 * MSEC_PER_SEC));

	/*
	 * Replaces a pending run's time (a start during a wait between passes runs now).
	 * While dmr_scanner_cancel runs, the work is disabled and this queues nothing.
	 */
	mod_delayed_work(system_long_wq, &s->dw, j);
}

void dmr_scanner_cancel(struct dmr_scanner *s)
{
	cancel_delayed_work_sync(&s->dw);
}

static unsigned int scan_rate_min_kib = 1024;
static unsigned int scan_rate_max_kib = 65536;
static unsigned int scan_interval_s;
static unsigned int sample_interval_s = 3600;

static int dmr_param_set(const char *val, const struct kernel_param *kp, unsigned int lo,
			 unsigned int hi)
{
	unsigned int v;
	int r = kstrtouint(val, 10, &v);

	/* A refused write leaves the value as it was and says why in the log. */
	if (r || v < lo || v > hi) {
		pr_err("device-mapper: remap: parameter %s: invalid value (a decimal number %u..%u)\n",
		       kp->name, lo, hi);
		return -EINVAL;
	}
	WRITE_ONCE(*(unsigned int *)kp->arg, v);
	return 0;
}

static int dmr_set_rate(const char *val, const struct kernel_param *kp)
{
	return dmr_param_set(val, kp, DMR_SCAN_RATE_LOWEST, DMR_SCAN_RATE_HIGHEST);
}

static int dmr_set_interval(const char *val, const struct kernel_param *kp)
{
	return dmr_param_set(val, kp, 0, DMR_SCAN_INTERVAL_LONGEST);
}

static int dmr_set_sample_interval(const char *val, const struct kernel_param *kp)
{
	return dmr_param_set(val, kp, 1, DMR_SAMPLE_INTERVAL_LONGEST);
}

#define DMR_PARAM_OPS(name, setter)			\
	static const struct kernel_param_ops name = {	\
		.set = setter,				\
		.get = param_get_uint,			\
	}

DMR_PARAM_OPS(dmr_sample_interval_ops, dmr_set_sample_interval);
DMR_PARAM_OPS(dmr_rate_ops, dmr_set_rate);
DMR_PARAM_OPS(dmr_interval_ops, dmr_set_interval);



static unsigned int proactive_reserve_pct = 25;
static unsigned int proactive_region_blocks = 4;
static unsigned int predict_unusable_ppm = 1000;
static unsigned int predict_warning_days = 90;
static unsigned int predict_critical_days = 7;
static unsigned int predict_min_confidence = 600;
static unsigned int predict_raise_hold_s = 7200;
static unsigned int predict_lower_hold_s = 172800;

static int dmr_set_reserve(const char *val, const struct kernel_param *kp)
{
	return dmr_param_set(val, kp, 0, 100);
}

static int dmr_set_region(const char *val, const struct kernel_param *kp)
{
	return dmr_param_set(val, kp, 0, DMR_PROACTIVE_REGION_LARGEST);
}

static int dmr_set_ppm(const char *val, const struct kernel_param *kp)
{
	return dmr_param_set(val, kp, 1, DMR_PREDICT_UNUSABLE_PPM_HIGHEST);
}

static int dmr_set_horizon(const char *val, const struct kernel_param *kp)
{
	return dmr_param_set(val, kp, 1, DMR_PREDICT_DAYS_LONGEST);
}

static int dmr_set_confidence(const char *val, const struct kernel_param *kp)
{
	return dmr_param_set(val, kp, 1, 1000);
}

static int dmr_set_hold(const char *val, const struct kernel_param *kp)
{
	return dmr_param_set(val, kp, 0, DMR_PREDICT_HOLD_LONGEST);
}

DMR_PARAM_OPS(dmr_reserve_ops, dmr_set_reserve);
DMR_PARAM_OPS(dmr_region_ops, dmr_set_region);
DMR_PARAM_OPS(dmr_ppm_ops, dmr_set_ppm);
DMR_PARAM_OPS(dmr_horizon_ops, dmr_set_horizon);
DMR_PARAM_OPS(dmr_confidence_ops, dmr_set_confidence);
DMR_PARAM_OPS(dmr_hold_ops, dmr_set_hold);


/*
 * One row per parameter: registered with its validating ops (writable by root), its
 * description for modinfo, and the getter the Rust side reads it with.
 */
#define DMR_PARAM(name, ops, desc)				\
	module_param_cb(name, &ops, &name, 0644);		\
	MODULE_PARM_DESC(name, desc);				\
	unsigned int dmr_param_##name(void)			\
	{							\
		return READ_ONCE(name);				\
	}

DMR_PARAM(scan_rate_min_kib, dmr_rate_ops,
	  "Background scan rate while a target has other I/O, KiB/s (64..4194304, default 1024)")
DMR_PARAM(scan_rate_max_kib, dmr_rate_ops,
	  "Background scan rate while a target is idle, KiB/s, unless its table sets scan_rate (64..4194304, default 65536)")
DMR_PARAM(scan_interval_s, dmr_interval_ops,
	  "Seconds between background scan passes, unless a table sets scan_interval (0: no periodic passes; default 0)")
DMR_PARAM(sample_interval_s, dmr_sample_interval_ops,
	  "Seconds between statistics samples fed to the failure prediction (1..86400, default 3600); a change applies from the next sample")
DMR_PARAM(proactive_reserve_pct, dmr_reserve_ops,
	  "Percent of the spare pool proactive remaps leave free for failed writes, unless a table sets proactive_reserve (0..100, default 25)")
DMR_PARAM(proactive_region_blocks, dmr_region_ops,
	  "Blocks on either side of a weak block that move to the spare with it while the alert level is warning or above, unless a table sets proactive_region (0..64, default 4)")
DMR_PARAM(predict_unusable_ppm, dmr_ppm_ops,
	  "Failed I/Os per million at which a device counts as failed (1..1000000, default 1000); applies to targets loaded afterwards")
DMR_PARAM(predict_warning_days, dmr_horizon_ops,
	  "A failure forecast within this many days is a warning (1..3650, default 90); applies to targets loaded afterwards")
DMR_PARAM(predict_critical_days, dmr_horizon_ops,
	  "A failure forecast within this many days is critical (1..3650, default 7; at most predict_warning_days is used); applies to targets loaded afterwards")
DMR_PARAM(predict_min_confidence, dmr_confidence_ops,
	  "Confidence, permille, a forecast needs to raise a warning or critical alert (1..1000, default 500); applies to targets loaded afterwards")
DMR_PARAM(predict_raise_hold_s, dmr_hold_ops,
	  "Seconds a higher alert level (below emergency) must hold before it is reported (0..2592000, default 7200); applies to targets loaded afterwards")
DMR_PARAM(predict_lower_hold_s, dmr_hold_ops,
	  "Seconds a lower alert level must hold before the reported level drops (0..2592000, default 172800); applies to targets loaded afterwards")

/*
 * sysfs (include/dm_remap.h). One entry per mapped device, found by md on dmr_sysfs_list.
 *
 * Lifetimes: the entry is a kobject, child of /sys/kernel/dm_remap; the list
 * and each entry's refs are under dmr_sysfs_lock (taken by ctr and dtr only; no file
 * operation takes it, though removing a directory under it waits for the operations
 * in progress on that directory). `active` is the target whose figures the files show, under the entry's
 * rwsem: a read or write of a file holds it for reading while it calls into the target,
 * and dtr takes it for writing to clear `active`, so a target is never used after its
 * dtr has started. dtr drops its reference after releasing the rwsem; the last
 * reference's kobject_put (under dmr_sysfs_lock) removes the directory, which waits for
 * file operations still inside the show/store functions (they see `active` NULL and
 * return -ENODEV). The root is the module's (init to exit). No allocation outside
 * ctr.
 */
struct dmr_sysfs {
	struct kobject kobj;
	struct mapped_device *md;
	unsigned int refs;
	struct list_head node;
	struct rw_semaphore active_lock;
	void *active;
};

struct dmr_sysfs_attr {
	struct kobj_attribute attr;
	unsigned int id;
};

static LIST_HEAD(dmr_sysfs_list);
static DEFINE_MUTEX(dmr_sysfs_lock);
static dmr_sysfs_show_fn dmr_sysfs_show_cb;
static dmr_sysfs_store_fn dmr_sysfs_store_cb;
/* /sys/kernel/dm_remap: the module's, from init to exit. */
static struct kobject *dmr_sysfs_root;

int dmr_sysfs_init(dmr_sysfs_show_fn show, dmr_sysfs_store_fn store)
{
	dmr_sysfs_show_cb = show;
	dmr_sysfs_store_cb = store;
	dmr_sysfs_root = kobject_create_and_add("dm_remap", kernel_kobj);
	return dmr_sysfs_root ? 0 : -ENOMEM;
}

void dmr_sysfs_exit(void)
{
	/*
	 * Every target is gone (dm holds a module reference while one exists). With
	 * CONFIG_DEBUG_KOBJECT_RELEASE a release may still run later, after the module
	 * is gone: the usual limitation of that debug option.
	 */
	kobject_put(dmr_sysfs_root);
	dmr_sysfs_root = NULL;
}

static ssize_t dmr_sysfs_show(struct kobject *kobj, struct kobj_attribute *attr, char *buf)
{
	struct dmr_sysfs *s = container_of(kobj, struct dmr_sysfs, kobj);
	struct dmr_sysfs_attr *a = container_of(attr, struct dmr_sysfs_attr, attr);
	ssize_t r = -ENODEV;

	down_read(&s->active_lock);
	if (s->active && dmr_sysfs_show_cb)
		r = dmr_sysfs_show_cb(s->active, a->id, buf);
	up_read(&s->active_lock);
	return r;
}

static ssize_t dmr_sysfs_store(struct kobject *kobj, struct kobj_attribute *attr,
			       const char *buf, size_t len)
{
	struct dmr_sysfs *s = container_of(kobj, struct dmr_sysfs, kobj);
	struct dmr_sysfs_attr *a = container_of(attr, struct dmr_sysfs_attr, attr);
	ssize_t r = -ENODEV;

	down_read(&s->active_lock);
	if (s->active && dmr_sysfs_store_cb)
		r = dmr_sysfs_store_cb(s->active, a->id, buf, len);
	up_read(&s->active_lock);
	return r;
}

#define DMR_RO(var, name, field) \
	static struct dmr_sysfs_attr var = { __ATTR(name, 0444, dmr_sysfs_show, NULL), field }
#define DMR_RW(var, name, knob) \
	static struct dmr_sysfs_attr var = { __ATTR(name, 0644, dmr_sysfs_show, dmr_sysfs_store), knob }

/* The INFO status fields (Documentation/admin-guide.md, "Status"). */
DMR_RO(dmr_a_block_size, block_size, 0);
DMR_RO(dmr_a_mode, mode, 16);
DMR_RO(dmr_a_spare_blocks, blocks, 1);
DMR_RO(dmr_a_reads, reads, 2);
DMR_RO(dmr_a_writes, writes, 3);
DMR_RO(dmr_a_flushes, flushes, 4);
DMR_RO(dmr_a_read_sectors, read_sectors, 5);
DMR_RO(dmr_a_write_sectors, write_sectors, 6);
DMR_RO(dmr_a_read_errors, read_errors, 7);
DMR_RO(dmr_a_write_errors, write_errors, 8);
DMR_RO(dmr_a_remapped, remapped, 9);
DMR_RO(dmr_a_pending, pending, 10);
DMR_RO(dmr_a_spare_used, used, 11);
DMR_RO(dmr_a_spare_free, free, 12);
DMR_RO(dmr_a_remaps, remaps, 13);
DMR_RO(dmr_a_meta_version, metadata_version, 14);
DMR_RO(dmr_a_last_commit, last_commit, 15);
DMR_RO(dmr_a_scan_cursor, cursor, 18);
DMR_RO(dmr_a_scan_passes, passes, 19);
DMR_RO(dmr_a_scan_unreadable, unreadable, 20);
DMR_RO(dmr_a_scan_weak, weak, 21);
DMR_RO(dmr_a_scan_proactive, proactive_remaps, 22);
DMR_RO(dmr_a_fenced, fenced, 23);
DMR_RO(dmr_a_score, score, 24);
DMR_RO(dmr_a_alert, alert, 25);
DMR_RO(dmr_a_ttf, ttf_s, 26);
DMR_RO(dmr_a_samples, samples, 27);
DMR_RW(dmr_a_scan_action, action, DMR_SYSFS_SCAN_ACTION);
DMR_RW(dmr_a_scan_rate_max, rate_max_kibs, DMR_SYSFS_SCAN_RATE_MAX_KIBS);

/* The device-mapper name (it can change: dmsetup rename), read when the file is. */
static ssize_t dmr_sysfs_name_show(struct kobject *kobj, struct kobj_attribute *attr, char *buf)
{
	struct dmr_sysfs *s = container_of(kobj, struct dmr_sysfs, kobj);
	char name[DM_NAME_LEN];

	/*
	 * The md outlives every table of it, so as long as this entry has a reference
	 * (the last dtr's kobject_del waits for this read); dm-ioctl's
	 * dm_hash_cells_mutex, which this takes, is held only briefly and never around a
	 * table's dtr.
	 */
	if (dm_copy_name_and_uuid(s->md, name, NULL))
		return -ENODEV;
	return sysfs_emit(buf, "%s\n", name);
}
static struct kobj_attribute dmr_a_name = __ATTR(name, 0444, dmr_sysfs_name_show, NULL);

static struct attribute *dmr_top_attrs[] = {
	&dmr_a_name.attr, &dmr_a_mode.attr.attr, &dmr_a_block_size.attr.attr, NULL,
};
static struct attribute *dmr_health_attrs[] = {
	&dmr_a_score.attr.attr, &dmr_a_alert.attr.attr, &dmr_a_ttf.attr.attr,
	&dmr_a_samples.attr.attr, NULL,
};
static struct attribute *dmr_scan_attrs[] = {
	&dmr_a_scan_action.attr.attr, &dmr_a_scan_cursor.attr.attr,
	&dmr_a_scan_passes.attr.attr, &dmr_a_scan_unreadable.attr.attr,
	&dmr_a_scan_weak.attr.attr, &dmr_a_scan_proactive.attr.attr,
	&dmr_a_scan_rate_max.attr.attr, NULL,
};
static struct attribute *dmr_stats_attrs[] = {
	&dmr_a_reads.attr.attr, &dmr_a_writes.attr.attr, &dmr_a_flushes.attr.attr,
	&dmr_a_read_sectors.attr.attr, &dmr_a_write_sectors.attr.attr,
	&dmr_a_read_errors.attr.attr, &dmr_a_write_errors.attr.attr,
	&dmr_a_remaps.attr.attr, NULL,
};
static struct attribute *dmr_spares_attrs[] = {
	&dmr_a_spare_blocks.attr.attr, &dmr_a_spare_used.attr.attr,
	&dmr_a_spare_free.attr.attr, &dmr_a_remapped.attr.attr, &dmr_a_pending.attr.attr,
	&dmr_a_fenced.attr.attr, &dmr_a_meta_version.attr.attr,
	&dmr_a_last_commit.attr.attr, NULL,
};
static const struct attribute_group dmr_top_group = { .attrs = dmr_top_attrs };
static const struct attribute_group dmr_health_group = { .name = "health", .attrs = dmr_health_attrs };
static const struct attribute_group dmr_scan_group = { .name = "scan", .attrs = dmr_scan_attrs };
static const struct attribute_group dmr_stats_group = { .name = "stats", .attrs = dmr_stats_attrs };
static const struct attribute_group dmr_spares_group = { .name = "spares", .attrs = dmr_spares_attrs };
static const struct attribute_group *dmr_sysfs_groups[] = {
	&dmr_top_group, &dmr_health_group, &dmr_scan_group, &dmr_stats_group,
	&dmr_spares_group, NULL,
};

static void dmr_sysfs_release(struct kobject *kobj)
{
	kfree(container_of(kobj, struct dmr_sysfs, kobj));
}

static const struct kobj_type dmr_sysfs_ktype = {
	.release = dmr_sysfs_release,
	.sysfs_ops = &kobj_sysfs_ops,
	.default_groups = dmr_sysfs_groups,
};

void *dmr_sysfs_get(struct dm_target *ti)
{
	struct mapped_device *md = dm_table_get_md(ti->table);
	struct dmr_sysfs *s;
	int r;

	mutex_lock(&dmr_sysfs_lock);
	list_for_each_entry(s, &dmr_sysfs_list, node) {
		if (s->md == md) {
			s->refs++;
			mutex_unlock(&dmr_sysfs_lock);
			return s;
		}
	}
	s = kzalloc(sizeof(*s), GFP_KERNEL);
	if (!s) {
		mutex_unlock(&dmr_sysfs_lock);
		return NULL;
	}
	s->md = md;
	s->refs = 1;
	init_rwsem(&s->active_lock);
	/*
	 * Under /sys/kernel/dm_remap, named as the disk ("dm-N", set when the md is
	 * allocated): the disk's own sysfs directory does not exist yet when the first
	 * table's ctr runs (dm adds the disk after that table is built).
	 */
	r = kobject_init_and_add(&s->kobj, &dmr_sysfs_ktype, dmr_sysfs_root, "%s",
				 dm_disk(md)->disk_name);
	if (r) {
		/* kobject_init_and_add's documented error path: put (release frees s). */
		kobject_put(&s->kobj);
		mutex_unlock(&dmr_sysfs_lock);
		return NULL;
	}
	list_add(&s->node, &dmr_sysfs_list);
	mutex_unlock(&dmr_sysfs_lock);
	return s;
}

void dmr_sysfs_activate(void *h, void *target)
{
	struct dmr_sysfs *s = h;

	down_write(&s->active_lock);
	s->active = target;
	up_write(&s->active_lock);
}

void dmr_sysfs_put(void *h, void *target)
{
	struct dmr_sysfs *s = h;
	bool mine, last;

	/*
	 * Only a dtr of the active target needs the rwsem for writing (to wait for the
	 * files' operations on it). `active` becomes this target only in its own resume,
	 * which dm core never runs concurrently with (or after) its dtr.
	 */
	down_read(&s->active_lock);
	mine = s->active == target;
	up_read(&s->active_lock);
	if (mine) {
		down_write(&s->active_lock);
		s->active = NULL;
		up_write(&s->active_lock);
	}
	/*
	 * The directory goes under the lock, so that a ctr of a new table of this md (a
	 * load racing the clear of the last inactive table) cannot find the name still
	 * taken: kobject_del removes it now (kobject_put alone may delay that, with
	 * CONFIG_DEBUG_KOBJECT_RELEASE), draining the files' operations in progress; they
	 * hold only the rwsem (and find `active` NULL), never dmr_sysfs_lock, and the
	 * `name` file reads the md, which is alive until every table's dtr has returned.
	 */
	mutex_lock(&dmr_sysfs_lock);
	last = --s->refs == 0;
	if (last) {
		list_del(&s->node);
		kobject_del(&s->kobj);
		kobject_put(&s->kobj);
	}
	mutex_unlock(&dmr_sysfs_lock);
}
