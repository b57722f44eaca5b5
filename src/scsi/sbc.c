/* SBC-3 block commands: READ/WRITE 6/10/12/16, VERIFY, SYNCHRONIZE CACHE,
 * READ CAPACITY.  Ranges are checked here, once, so backstores never are. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <pthread.h>
#include <time.h>

#include "scsi/scsi_int.h"

static uint64_t lun_blocks(const struct scsi_task *t)
{
  return t->lun->so->size / t->lun->so->block_size;
}

/* LBA and block count checks shared by every medium command. */
static int check_range(struct scsi_task *t, uint64_t lba, uint64_t nblocks)
{
  uint64_t cap = lun_blocks(t);
  if (lba > cap || nblocks > cap - lba) { /* written so it cannot overflow */
    scsi_sense(t, SCSI_SENSE_ILLEGAL_REQUEST, ASC_LBA_OUT_OF_RANGE);
    return -1;
  }
  return 0;
}

/* Decode LBA and length of the READ/WRITE/VERIFY family by CDB size. */
static void decode_lba_len(const uint8_t *cdb, uint64_t *lba, uint32_t *len)
{
  switch (cdb[0] >> 5) {
  case 0: /* 6-byte */
    *lba = get24(cdb + 1) & 0x1fffff;
    *len = cdb[4] ? cdb[4] : 256;
    break;
  case 1: /* 10-byte */
  case 2:
    *lba = get32(cdb + 2);
    *len = get16(cdb + 7);
    break;
  case 4: /* 16-byte */
    *lba = get64(cdb + 2);
    *len = get32(cdb + 10);
    break;
  case 5: /* 12-byte */
    *lba = get32(cdb + 2);
    *len = get32(cdb + 6);
    break;
  default:
    *lba = 0;
    *len = 0;
  }
}

static int set_blocks(struct scsi_task *t, uint64_t lba, uint32_t len, enum scsi_dir dir)
{
  if (check_range(t, lba, len) < 0)
    return -1;
  uint64_t bytes = (uint64_t)len * t->lun->so->block_size;
  if (bytes > SCSI_MAX_XFER_BYTES) {
    scsi_sense(t, SCSI_SENSE_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB);
    return -1;
  }
  t->lba = lba;
  t->nblocks = len;
  t->spdtl = (uint32_t)bytes;
  t->dir = bytes ? dir : SCSI_DIR_NONE;
  return 0;
}

int sbc_parse_rw(struct scsi_task *t)
{
  uint64_t lba;
  uint32_t len;
  decode_lba_len(t->cdb, &lba, &len);
  if (t->cdb[0] != 0x08 && t->cdb[0] != 0x0a && (t->cdb[1] & 0x08))
    t->bs_flags |= LG_BS_FUA;
  return set_blocks(t, lba, len, (t->op->flags & OP_WRITES) ? SCSI_DIR_OUT : SCSI_DIR_IN);
}

int sbc_parse_verify(struct scsi_task *t)
{
  uint64_t lba;
  uint32_t len;
  decode_lba_len(t->cdb, &lba, &len);
  unsigned bytchk = (t->cdb[1] >> 1) & 3;
  if (bytchk == 2) {
    scsi_sense(t, SCSI_SENSE_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB);
    return -1;
  }
  if (set_blocks(t, lba, len, SCSI_DIR_OUT) < 0)
    return -1;
  if (bytchk == 0)               /* medium check only: no data */
    t->spdtl = 0, t->dir = SCSI_DIR_NONE;
  else if (bytchk == 3 && len)   /* one block, compared with every block */
    t->spdtl = t->lun->so->block_size;
  return 0;
}

int sbc_parse_sync(struct scsi_task *t)
{
  uint64_t lba;
  uint32_t len;
  decode_lba_len(t->cdb, &lba, &len);
  if (check_range(t, lba, len) < 0)
    return -1;
  t->lba = lba;
  t->nblocks = len;
  return 0;
}

void sbc_read(struct scsi_task *t)
{
  uint32_t bs = t->lun->so->block_size;
  uint32_t n = t->spdtl < t->bufcap ? t->spdtl : t->bufcap;
  t->data_in_len = t->spdtl;
  if (n == 0)
    return;
  struct lg_storage *so = t->lun->so;
  /* shared with other reads and writes; an atomic write is seen whole or not */
  pthread_rwlock_rdlock(&so->io_lock);
  int r = so->ops->pread(so->h, t->buf, n, t->lba * bs);
  pthread_rwlock_unlock(&so->io_lock);
  if (r < 0) {
    t->data_in_len = 0;
    scsi_sense_errno(t, r, false);
  }
}

bool sbc_read_nowait(struct scsi_task *t)
{
  struct lg_storage *so = t->lun->so;
  uint32_t n = t->spdtl < t->bufcap ? t->spdtl : t->bufcap;
  bool map = t->may_map && so->ops->map_cached;
  if (n && !so->ops->pread_nowait && !map)
    return false;
  if (n) {
    /* as sbc_read, but never wait here: a held or awaited exclusive lock
     * (an atomic write) sends the read to a worker */
    if (pthread_rwlock_tryrdlock(&so->io_lock))
      return false;
    /* no copy at all: the data is sent from the page cache, and io_lock
     * stays held until it is (scsi_data_in_release) */
    t->data_in = map ? so->ops->map_cached(so->h, n, t->lba * so->block_size) : NULL;
    if (t->data_in) {
      t->data_in_len = t->spdtl;
      return true;
    }
    if (!so->ops->pread_nowait) {
      pthread_rwlock_unlock(&so->io_lock);
      return false;
    }
    int r = so->ops->pread_nowait(so->h, t->buf, n, t->lba * so->block_size);
    pthread_rwlock_unlock(&so->io_lock);
    if (r < 0)
      return false; /* not cached, or an error: sbc_read on a worker reports it */
  }
  t->data_in_len = t->spdtl;
  return true;
}

int scsi_data_in_release(struct scsi_task *t, bool into_buf)
{
  if (!t->data_in)
    return 0;
  struct lg_storage *so = t->lun->so;
  uint32_t n = t->spdtl < t->bufcap ? t->spdtl : t->bufcap;
  int r = into_buf ? so->ops->pread(so->h, t->buf, n, t->lba * so->block_size) : 0;
  pthread_rwlock_unlock(&so->io_lock);
  t->data_in = NULL;
  return r;
}

static void read_async_done(void *arg, int r)
{
  struct scsi_task *t = arg;
  struct lg_storage *so = t->lun->so;
  if (r < 0) {
    t->data_in_len = 0;
    scsi_sense_errno(t, r, false);
  } else {
    t->data_in_len = t->spdtl;
  }
  atomic_fetch_sub(&so->async_reads, 1);
  t->async_done(t);
}

bool sbc_read_async(struct scsi_task *t, void (*done)(struct scsi_task *t))
{
  struct lg_storage *so = t->lun->so;
  uint32_t n = t->spdtl < t->bufcap ? t->spdtl : t->bufcap;
  if (!n || !so->ops->pread_async)
    return false;
  /* the read holds io_lock shared in spirit until it completes: it counts
   * in async_reads, which an exclusive holder waits to see drained */
  if (pthread_rwlock_tryrdlock(&so->io_lock))
    return false;
  atomic_fetch_add(&so->async_reads, 1);
  t->async_done = done;
  int r = so->ops->pread_async(so->h, t->buf, n, t->lba * so->block_size, read_async_done, t);
  pthread_rwlock_unlock(&so->io_lock);
  if (r < 0) {
    atomic_fetch_sub(&so->async_reads, 1);
    t->async_done = NULL;
    return false; /* sbc_read on a worker tries again and reports it */
  }
  return true;
}

/* ---- writes, flushes, discards and write-zeroes without a worker waiting ---- */

void scsi_io_async_done(void *arg, int r)
{
  struct scsi_task *t = arg;
  struct lg_storage *so = t->lun->so;
  if (r < 0)
    scsi_sense_errno(t, r, true);
  atomic_fetch_sub(&so->async_reads, 1);
  t->async_done(t);
}

bool scsi_io_async(struct scsi_task *t, void (*done)(struct scsi_task *t),
                   int (*start)(struct scsi_task *t, struct lg_storage *so))
{
  struct lg_storage *so = t->lun->so;
  /* as sbc_read_async: shared with other commands until it completes, an
   * exclusive holder (WRITE ATOMIC, COMPARE AND WRITE) waits for it */
  if (pthread_rwlock_tryrdlock(&so->io_lock))
    return false;
  atomic_fetch_add(&so->async_reads, 1);
  t->async_done = done;
  int r = start(t, so);
  pthread_rwlock_unlock(&so->io_lock);
  if (r < 0) {
    atomic_fetch_sub(&so->async_reads, 1);
    t->async_done = NULL;
    return false; /* the synchronous call on a worker instead */
  }
  return true;
}

static int write_start(struct scsi_task *t, struct lg_storage *so)
{
  return so->ops->pwrite_async(so->h, t->buf, t->spdtl, t->lba * so->block_size, t->bs_flags,
                               scsi_io_async_done, t);
}

/* WRITE 6/10/12/16 (FUA: the backstore flushes after the write). */
bool sbc_write_async(struct scsi_task *t, void (*done)(struct scsi_task *t))
{
  if (t->spdtl == 0 || !t->lun->so->ops->pwrite_async)
    return false;
  return scsi_io_async(t, done, write_start);
}

static int flush_start(struct scsi_task *t, struct lg_storage *so)
{
  return so->ops->flush_async(so->h, scsi_io_async_done, t);
}

/* SYNCHRONIZE CACHE: every write answered before it came is covered, since
 * a write is answered only once the backstore has completed it. */
bool sbc_sync_cache_async(struct scsi_task *t, void (*done)(struct scsi_task *t))
{
  const struct lg_storage *so = t->lun->so;
  if (!so->ops->flush_async || !so->ops->flush || !so->ops->can_flush(so->h))
    return false;
  return scsi_io_async(t, done, flush_start);
}

/* io_lock, exclusively: also wait for the reads started asynchronously to
 * complete (no new one starts while a writer holds or awaits the lock). */
static void io_lock_exclusive(struct lg_storage *so)
{
  /* (async_reads counts every request started asynchronously, writes too) */
  pthread_rwlock_wrlock(&so->io_lock);
  while (atomic_load(&so->async_reads))
    nanosleep(&(struct timespec){ .tv_nsec = 50000 }, NULL);
}

/* Write the data-out buffer; exclusive: no other command touches the LU
 * meanwhile (WRITE ATOMIC). */
static void write_buf(struct scsi_task *t, bool exclusive)
{
  if (t->spdtl == 0)
    return;
  struct lg_storage *so = t->lun->so;
  if (exclusive)
    io_lock_exclusive(so);
  else
    pthread_rwlock_rdlock(&so->io_lock);
  int r = so->ops->pwrite(so->h, t->buf, t->spdtl, t->lba * so->block_size, t->bs_flags);
  pthread_rwlock_unlock(&so->io_lock);
  if (r < 0)
    scsi_sense_errno(t, r, true);
}

void sbc_write(struct scsi_task *t)
{
  write_buf(t, false);
}

uint32_t sbc_max_atomic_blocks(uint32_t block_size)
{
  uint32_t n = SBC_MAX_ATOMIC_BYTES / block_size, max = SCSI_MAX_XFER_BYTES / block_size;
  n = n < 256 ? 256 : n;
  return n < max ? n : max;
}

/* WRITE ATOMIC(16): LBA, ATOMIC BOUNDARY (must be 0: no boundaries are
 * offered), TRANSFER LENGTH in bytes 12-13. */
int sbc_parse_write_atomic(struct scsi_task *t)
{
  uint32_t len = get16(t->cdb + 12);
  if (t->cdb[1] & 0x08)
    t->bs_flags |= LG_BS_FUA;
  if (set_blocks(t, get64(t->cdb + 2), len, SCSI_DIR_OUT) < 0)
    return -1;
  if (len > sbc_max_atomic_blocks(t->lun->so->block_size)) {
    scsi_sense_field(t, 12, -1);
    return -1;
  }
  return 0;
}

/* Atomic against every other command on the LU: reads and writes hold the
 * LU's io_lock shared, this one exclusively. */
void sbc_write_atomic(struct scsi_task *t)
{
  write_buf(t, true);
}

/* Read the blocks of the command, let fn turn them into the blocks to write
 * (fn < 0: write nothing, the task holds the answer), write them, all under
 * the exclusive io_lock: no other command sees or changes the blocks between. */
static void read_modify_write(struct scsi_task *t, int (*fn)(struct scsi_task *t, uint8_t *cur))
{
  if (t->nblocks == 0)
    return;
  struct lg_storage *so = t->lun->so;
  size_t len = (size_t)t->nblocks * so->block_size;
  uint64_t off = t->lba * so->block_size;
  uint8_t *cur = malloc(len);
  if (!cur) {
    scsi_sense_errno(t, -ENOMEM, true);
    return;
  }
  io_lock_exclusive(so);
  int r = so->ops->pread(so->h, cur, len, off);
  if (r == 0 && fn(t, cur) == 0)
    r = so->ops->pwrite(so->h, cur, len, off, t->bs_flags);
  pthread_rwlock_unlock(&so->io_lock);
  free(cur);
  if (r < 0)
    scsi_sense_errno(t, r, true);
}

static int or_blocks(struct scsi_task *t, uint8_t *cur)
{
  for (uint32_t i = 0; i < t->spdtl; i++)
    cur[i] |= t->buf[i];
  return 0;
}

/* ORWRITE(16): the new blocks are the old ones OR the data sent. */
void sbc_orwrite(struct scsi_task *t)
{
  read_modify_write(t, or_blocks);
}

int sbc_parse_caw(struct scsi_task *t)
{
  uint64_t lba = get64(t->cdb + 2);
  uint32_t n = t->cdb[13];
  /* data with a count of 0: an initiator that meant 256 (the field's byte wrapped) */
  if (n > SBC_MAX_CAW_BLOCKS || (n == 0 && t->edtl)) {
    scsi_sense_field(t, 13, -1);
    return -1;
  }
  if (check_range(t, lba, n) < 0)
    return -1;
  if (t->cdb[1] & 0x08)
    t->bs_flags |= LG_BS_FUA;
  t->lba = lba;
  t->nblocks = n;
  t->spdtl = 2 * n * t->lun->so->block_size; /* the data to compare, then to write */
  t->dir = n ? SCSI_DIR_OUT : SCSI_DIR_NONE;
  return 0;
}

static int compare_then_write(struct scsi_task *t, uint8_t *cur)
{
  uint32_t len = t->nblocks * t->lun->so->block_size;
  for (uint32_t i = 0; i < len; i++)
    if (cur[i] != t->buf[i]) {
      scsi_sense(t, SCSI_SENSE_MISCOMPARE, ASC_MISCOMPARE_DURING_VERIFY);
      t->sense[0] |= 0x80;               /* VALID: INFORMATION is the offset */
      put32(t->sense + 3, i);
      return -1;
    }
  memcpy(cur, t->buf + len, len);
  return 0;
}

/* COMPARE AND WRITE: atomic against every other command on the LU. */
void sbc_compare_and_write(struct scsi_task *t)
{
  read_modify_write(t, compare_then_write);
}

void sbc_verify(struct scsi_task *t)
{
  if (t->spdtl == 0 || t->nblocks == 0)
    return;
  const struct lg_storage *so = t->lun->so;
  uint32_t bs = so->block_size;
  size_t chunk = 256 * 1024;
  uint8_t *tmp = malloc(chunk);
  if (!tmp) {
    scsi_sense_errno(t, -ENOMEM, false);
    return;
  }
  uint64_t total = (uint64_t)t->nblocks * bs, done = 0;
  bool repeat = t->spdtl == bs && t->nblocks > 1;
  while (done < total) {
    size_t n = total - done < chunk ? (size_t)(total - done) : chunk;
    int r = so->ops->pread(so->h, tmp, n, t->lba * bs + done);
    if (r < 0) {
      scsi_sense_errno(t, r, false);
      break;
    }
    for (size_t off = 0; off < n; off += bs) {
      const uint8_t *want = repeat ? t->buf : t->buf + done + off;
      if (memcmp(tmp + off, want, bs)) {
        scsi_sense(t, SCSI_SENSE_MISCOMPARE, ASC_MISCOMPARE_DURING_VERIFY);
        goto out;
      }
    }
    done += n;
  }
out:
  free(tmp);
}

void sbc_sync_cache(struct scsi_task *t)
{
  const struct lg_storage *so = t->lun->so;
  if (!so->ops->flush || !so->ops->can_flush(so->h))
    return;
  int r = so->ops->flush(so->h);
  if (r < 0)
    scsi_sense_errno(t, r, true);
}

void sbc_read_capacity10(struct scsi_task *t)
{
  uint8_t d[8];
  if (!(t->cdb[8] & 1) && get32(t->cdb + 2)) { /* LBA without PMI */
    scsi_sense(t, SCSI_SENSE_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB);
    return;
  }
  uint64_t last = lun_blocks(t) - 1;
  put32(d, last > 0xffffffffull ? 0xffffffffu : (uint32_t)last);
  put32(d + 4, t->lun->so->block_size);
  scsi_reply(t, d, sizeof d, sizeof d);
}

void sbc_read_capacity16(struct scsi_task *t)
{
  uint8_t d[32] = { 0 };
  put64(d, lun_blocks(t) - 1);
  put32(d + 8, t->lun->so->block_size);
  if (lbp_can_unmap(t->lun->so))
    d[14] = 0x80;                                     /* LBPME */
  scsi_reply(t, d, sizeof d, get32(t->cdb + 10));
}

/* READ DEFECT DATA 10/12: an image has no defects; an empty list in the
 * format asked for. */
void sbc_read_defect_data(struct scsi_task *t)
{
  uint8_t d[8] = { 0 };
  bool twelve = t->cdb[0] == 0xb7;
  uint8_t req = twelve ? t->cdb[1] : t->cdb[2];
  d[1] = req & 0x1f;                  /* PLISTV, GLISTV, the list format */
  scsi_reply(t, d, twelve ? 8 : 4, twelve ? get32(t->cdb + 6) : get16(t->cdb + 7));
}
