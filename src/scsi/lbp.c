/* Logical block provisioning (SBC-3 §4.7): UNMAP, WRITE SAME 10/16 (with
 * UNMAP and NDOB), GET LBA STATUS, on the backstores' trim, zero and extents.
 *
 * WRITE SAME of zeroes with UNMAP becomes a backstore zero with MAY_TRIM, so
 * the blocks read back as zeroes whatever the backstore does underneath (a
 * file punches a hole; a cow overlay, where a trimmed block would show its
 * base again, writes zeroes).  UNMAP itself is advisory: it trims (the
 * file's holes read as zeroes, a cow block returns to its base) and LBPRZ is
 * not claimed. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "scsi/scsi_int.h"


bool lbp_can_unmap(const struct lg_storage *so)
{
  return so->ops->trim && so->ops->can_trim(so->h) && !so->readonly;
}

static uint64_t lun_blocks(const struct scsi_task *t)
{
  return t->lun->so->size / t->lun->so->block_size;
}

static int range_ok(struct scsi_task *t, uint64_t lba, uint64_t n)
{
  uint64_t cap = lun_blocks(t);
  if (lba > cap || n > cap - lba) {
    scsi_sense(t, SCSI_SENSE_ILLEGAL_REQUEST, ASC_LBA_OUT_OF_RANGE);
    return -1;
  }
  return 0;
}

int lbp_parse_unmap(struct scsi_task *t)
{
  if (!lbp_can_unmap(t->lun->so)) {
    scsi_sense(t, SCSI_SENSE_ILLEGAL_REQUEST, ASC_INVALID_OPCODE);
    return -1;
  }
  if (t->cdb[1] & 1) { /* ANCHOR: we do not anchor */
    scsi_sense_field(t, 1, 0);
    return -1;
  }
  t->spdtl = get16(t->cdb + 7);
  t->dir = t->spdtl ? SCSI_DIR_OUT : SCSI_DIR_NONE;
  return 0;
}

/* The block descriptor data length of an UNMAP parameter list whose every
 * descriptor is valid; -1 with the sense set when one is not (nothing may
 * be unmapped then), 0 for nothing to do. */
static int unmap_check(struct scsi_task *t)
{
  uint32_t len = t->spdtl;
  if (len == 0)
    return 0;
  if (len < 8) {
    scsi_sense(t, SCSI_SENSE_ILLEGAL_REQUEST, ASC_PARAM_LIST_LENGTH_ERROR);
    return -1;
  }
  const uint8_t *p = t->buf;
  uint32_t bdl = get16(p + 2);
  if (bdl > len - 8)
    bdl = (len - 8) & ~15u;
  if (bdl / 16 > LBP_MAX_UNMAP_DESCRIPTORS) {
    scsi_sense(t, SCSI_SENSE_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_PARAM);
    return -1;
  }
  for (uint32_t off = 8; off + 16 <= 8 + bdl; off += 16) {
    uint64_t lba = get64(p + off);
    uint32_t n = get32(p + off + 8);
    if (n > LBP_MAX_UNMAP_BLOCKS) {
      scsi_sense(t, SCSI_SENSE_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_PARAM);
      return -1;
    }
    if (range_ok(t, lba, n) < 0)
      return -1;
  }
  return (int)bdl;
}

void lbp_unmap(struct scsi_task *t)
{
  struct lg_storage *so = t->lun->so;
  const uint8_t *p = t->buf;
  int check = unmap_check(t); /* every descriptor before unmapping anything */
  if (check <= 0)
    return;
  uint32_t bdl = (uint32_t)check;
  for (uint32_t off = 8; off + 16 <= 8 + bdl; off += 16) {
    uint64_t lba = get64(p + off);
    uint32_t n = get32(p + off + 8);
    if (!n)
      continue;
    pthread_rwlock_rdlock(&so->io_lock);
    int r = so->ops->trim(so->h, (uint64_t)n * so->block_size, lba * so->block_size);
    pthread_rwlock_unlock(&so->io_lock);
    if (r < 0) {
      scsi_sense_errno(t, r, true);
      return;
    }
  }
}

/* UNMAP's descriptors as trims in flight together; the command is done when
 * the last one completes, with the first failure. */
struct unmap_async {
  struct scsi_task *t;
  atomic_uint pending;
  atomic_int err;
};

static void unmap_one_done(void *arg, int r)
{
  struct unmap_async *u = arg;
  int none = 0;
  if (r < 0)
    atomic_compare_exchange_strong(&u->err, &none, r);
  if (atomic_fetch_sub(&u->pending, 1) != 1)
    return;
  struct scsi_task *t = u->t;
  r = atomic_load(&u->err);
  free(u);
  scsi_io_async_done(t, r);
}

static int unmap_start(struct scsi_task *t, struct lg_storage *so)
{
  uint32_t bdl = (uint32_t)unmap_check(t); /* checked in lbp_unmap_async */
  const uint8_t *p = t->buf;
  struct unmap_async *u = malloc(sizeof *u);
  if (!u)
    return -ENOMEM;
  u->t = t;
  atomic_init(&u->pending, 1); /* this call's own, dropped at the end */
  atomic_init(&u->err, 0);
  bool started = false;
  for (uint32_t off = 8; off + 16 <= 8 + bdl; off += 16) {
    uint64_t lba = get64(p + off);
    uint32_t n = get32(p + off + 8);
    if (!n)
      continue;
    atomic_fetch_add(&u->pending, 1);
    int r = so->ops->trim_async(so->h, (uint64_t)n * so->block_size, lba * so->block_size,
                                unmap_one_done, u);
    if (r < 0) {
      atomic_fetch_sub(&u->pending, 1);
      if (!started) { /* nothing in flight: the synchronous path instead */
        free(u);
        return r;
      }
      int none = 0;
      atomic_compare_exchange_strong(&u->err, &none, r);
      break;
    }
    started = true;
  }
  unmap_one_done(u, 0);
  return 0;
}

bool lbp_unmap_async(struct scsi_task *t, void (*done)(struct scsi_task *t))
{
  if (!t->lun->so->ops->trim_async || unmap_check(t) <= 0)
    return false; /* nothing to do, or refused: scsi_exec answers at once */
  return scsi_io_async(t, done, unmap_start);
}

int lbp_parse_write_same(struct scsi_task *t)
{
  const uint8_t *c = t->cdb;
  bool sixteen = c[0] == 0x93;
  uint64_t lba = sixteen ? get64(c + 2) : get32(c + 2);
  uint32_t n = sixteen ? get32(c + 10) : get16(c + 7);
  if (c[1] & 0x10) { /* ANCHOR */
    scsi_sense_field(t, 1, 4);
    return -1;
  }
  if (n == 0 || (uint64_t)n * t->lun->so->block_size > SCSI_MAX_XFER_BYTES) {
    /* WSNZ: 0 blocks is not "the rest of the disk"; longer than the limit */
    scsi_sense_field(t, sixteen ? 10 : 7, -1);
    return -1;
  }
  if (range_ok(t, lba, n) < 0)
    return -1;
  t->lba = lba;
  t->nblocks = n;
  bool ndob = sixteen && (c[1] & 1);
  t->spdtl = ndob ? 0 : t->lun->so->block_size;
  t->dir = ndob ? SCSI_DIR_NONE : SCSI_DIR_OUT;
  return 0;
}

/* Is the block WRITE SAME repeats all zeroes (or is there none: NDOB)? */
static bool write_same_zeroes(const struct scsi_task *t)
{
  uint32_t bs = t->lun->so->block_size;
  return t->spdtl == 0 || (t->buf[0] == 0 && !memcmp(t->buf, t->buf + 1, bs - 1));
}

void lbp_write_same(struct scsi_task *t)
{
  struct lg_storage *so = t->lun->so;
  uint32_t bs = so->block_size;
  uint64_t off = t->lba * bs, total = (uint64_t)t->nblocks * bs;
  pthread_rwlock_rdlock(&so->io_lock);
  bool zero = write_same_zeroes(t);
  int r;
  if (zero && so->ops->zero && so->ops->can_zero(so->h)) {
    r = so->ops->zero(so->h, total, off, (t->cdb[1] & 0x08) ? LG_BS_MAY_TRIM : 0);
  } else {
    size_t chunk = total < (1u << 20) ? (size_t)total : (1u << 20);
    uint8_t *buf = malloc(chunk);
    if (!buf) {
      pthread_rwlock_unlock(&so->io_lock);
      scsi_sense_errno(t, -ENOMEM, true);
      return;
    }
    for (size_t i = 0; i < chunk; i += bs) {
      if (zero)
        memset(buf + i, 0, bs);
      else
        memcpy(buf + i, t->buf, bs);
    }
    r = 0;
    for (uint64_t done = 0; done < total && r == 0; done += chunk) {
      size_t n = total - done < chunk ? (size_t)(total - done) : chunk;
      r = so->ops->pwrite(so->h, buf, n, off + done, 0);
    }
    free(buf);
  }
  pthread_rwlock_unlock(&so->io_lock);
  if (r < 0)
    scsi_sense_errno(t, r, true);
}

static int write_same_start(struct scsi_task *t, struct lg_storage *so)
{
  uint32_t bs = so->block_size;
  return so->ops->zero_async(so->h, (uint64_t)t->nblocks * bs, t->lba * bs,
                             (t->cdb[1] & 0x08) ? LG_BS_MAY_TRIM : 0, scsi_io_async_done, t);
}

/* WRITE SAME of zeroes: one write-zeroes in flight. */
bool lbp_write_same_async(struct scsi_task *t, void (*done)(struct scsi_task *t))
{
  const struct lg_storage *so = t->lun->so;
  if (!so->ops->zero_async || !so->ops->zero || !so->ops->can_zero(so->h) ||
      !write_same_zeroes(t))
    return false;
  return scsi_io_async(t, done, write_same_start);
}

void lbp_get_lba_status(struct scsi_task *t)
{
  const struct lg_storage *so = t->lun->so;
  uint64_t lba = get64(t->cdb + 2), cap = lun_blocks(t);
  uint32_t alloc = get32(t->cdb + 10);
  if (lba >= cap) {
    scsi_sense(t, SCSI_SENSE_ILLEGAL_REQUEST, ASC_LBA_OUT_OF_RANGE);
    return;
  }
  uint8_t d[8 + 16 * 64];
  size_t nd = 0;
  uint32_t bs = so->block_size;
  size_t max = alloc >= 24 ? (alloc - 8) / 16 : 1;
  if (max > 64)
    max = 64;
  struct lg_extent ext[64];
  size_t n = max;
  uint64_t span = (cap - lba) * bs;
  if (span > (1ull << 30))
    span = 1ull << 30; /* a window is enough: the initiator asks again */
  if (so->ops->extents && so->ops->can_extents(so->h) &&
      so->ops->extents(so->h, span, lba * bs, ext, &n) == 0 && n > 0) {
    for (size_t i = 0; i < n && nd < max; i++) {
      uint64_t first = ext[i].offset / bs;
      uint64_t last = (ext[i].offset + ext[i].length + bs - 1) / bs; /* exclusive */
      if (nd && d[8 + 16 * (nd - 1) + 12] == ((ext[i].flags & LG_EXTENT_HOLE) ? 1 : 0)) {
        uint8_t *prev = d + 8 + 16 * (nd - 1); /* same state: extend */
        uint64_t plba = get64(prev);
        put32(prev + 8, (uint32_t)(last - plba));
        continue;
      }
      uint8_t *e = d + 8 + 16 * nd++;
      memset(e, 0, 16);
      put64(e, first);
      put32(e + 8, (uint32_t)(last - first > 0xffffffffu ? 0xffffffffu : last - first));
      e[12] = (ext[i].flags & LG_EXTENT_HOLE) ? 1 : 0; /* deallocated : mapped */
    }
  } else { /* no allocation information: all mapped */
    uint8_t *e = d + 8;
    memset(e, 0, 16);
    put64(e, lba);
    put32(e + 8, (uint32_t)(cap - lba > 0xffffffffu ? 0xffffffffu : cap - lba));
    nd = 1;
  }
  memset(d, 0, 8);
  put32(d, (uint32_t)(4 + 16 * nd));
  scsi_reply(t, d, 8 + 16 * nd, alloc);
}
