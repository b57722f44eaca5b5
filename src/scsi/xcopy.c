/* EXTENDED COPY (LID1) and RECEIVE COPY RESULTS (SPC-4 §6.4, §6.18): the
 * gateway as copy manager, block to block between the LUNs the I_T nexus
 * sees, named by the NAA designator of VPD page 83h.
 *
 * The whole parameter list is checked before a block moves.  The copy runs
 * in chunks, each holding only its LU's io_lock (shared) for one read or one
 * write, so a long copy never stalls other commands for more than a chunk.
 * Segments: block to block (02h) and block with offset to block with offset
 * (0Ah).  Bounds: XCOPY_MAX_TARGETS target and XCOPY_MAX_SEGMENTS segment
 * descriptors, XCOPY_MAX_SEGMENT_BYTES per segment. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "scsi/scsi_int.h"

#define XCOPY_MAX_TARGETS 8
#define XCOPY_MAX_SEGMENTS 32
#define XCOPY_MAX_SEGMENT_BYTES (16u << 20)
#define XCOPY_HDR 16
#define XCOPY_TARGET_LEN 32                /* identification descriptor (E4h) */
#define XCOPY_B2B_LEN 28                   /* block to block segment (02h) */
#define XCOPY_B2B_OFF_LEN 32               /* block with offset to block with offset (0Ah) */
#define XCOPY_MAX_DESC_LIST (XCOPY_MAX_TARGETS * XCOPY_TARGET_LEN + \
                             XCOPY_MAX_SEGMENTS * XCOPY_B2B_OFF_LEN)
#define XCOPY_CHUNK (1u << 20)

/* COPY MANAGER STATUS values of COPY STATUS */
#define COPY_DONE_OK 0x01
#define COPY_DONE_ERRORS 0x02

struct copy_target {
  struct lg_storage *so;             /* NULL: not a LUN of this nexus */
  bool write_protect;
  uint32_t block_len;                /* DISK BLOCK LENGTH of the descriptor */
};

struct segment {
  const struct copy_target *from, *to;
  uint64_t src, dst;                 /* byte offsets */
  uint64_t bytes;
};

int xcopy_parse(struct scsi_task *t)
{
  uint32_t len = get32(t->cdb + 10);
  if (len > XCOPY_HDR + XCOPY_MAX_DESC_LIST) {
    scsi_sense(t, SCSI_SENSE_ILLEGAL_REQUEST, ASC_PARAM_LIST_LENGTH_ERROR);
    return -1;
  }
  t->spdtl = len;
  t->dir = len ? SCSI_DIR_OUT : SCSI_DIR_NONE;
  return 0;
}

static void copy_aborted(struct scsi_task *t, uint16_t asc)
{
  scsi_sense(t, SCSI_SENSE_COPY_ABORTED, asc);
}

/* The LUN of this nexus an identification descriptor names (by NAA). */
static void resolve_target(const struct scsi_task *t, const uint8_t *d, struct copy_target *ct)
{
  ct->so = NULL;
  ct->block_len = get24(d + 29);
  unsigned code_set = d[4] & 0x0f, type = d[5] & 0x0f, dlen = d[7];
  if ((d[1] & 0x1f) != 0 || code_set != 1 || type != 3 || dlen != 16)
    return;                          /* not a disk, or not a 16-byte NAA */
  const struct scsi_nexus *nx = t->nexus;
  for (size_t i = 0; i < nx->n_luns; i++)
    if (!memcmp(nx->luns[i].so->naa, d + 8, 16)) {
      ct->so = nx->luns[i].so;
      ct->write_protect = nx->luns[i].write_protect || ct->so->readonly;
      return;
    }
}

/* Is [lba * block + off, + bytes) inside the LU?  (no overflow) */
static bool range_ok(const struct lg_storage *so, uint64_t lba, uint32_t off, uint64_t bytes)
{
  uint64_t cap = so->size / so->block_size;
  if (lba > cap)
    return false;
  uint64_t left = (cap - lba) * so->block_size;
  return off <= left && bytes <= left - off;
}

/* Does another I_T nexus hold the LU (RESERVE 6/10)? */
static bool reserved_by_other(const struct scsi_task *t, struct lg_storage *so)
{
  uintptr_t holder = atomic_load(&so->reserved_by);
  return holder && holder != (uintptr_t)t->nexus;
}

/* Check the targets and segments of the parameter list; 0, or -1 with the
 * answer in the task. */
static int check_list(struct scsi_task *t, struct copy_target *tg, size_t *ntg,
                      struct segment *seg, size_t *nseg)
{
  const uint8_t *p = t->buf;
  uint32_t len = t->spdtl;
  if (len < XCOPY_HDR) {
    scsi_sense(t, SCSI_SENSE_ILLEGAL_REQUEST, ASC_PARAM_LIST_LENGTH_ERROR);
    return -1;
  }
  uint32_t tdl = get16(p + 2), sdl = get32(p + 8), inl = get32(p + 12);
  if ((uint64_t)tdl + sdl + inl > len - XCOPY_HDR || (uint64_t)tdl + sdl > XCOPY_MAX_DESC_LIST) {
    scsi_sense(t, SCSI_SENSE_ILLEGAL_REQUEST, ASC_PARAM_LIST_LENGTH_ERROR);
    return -1;
  }
  if (((p[1] >> 3) & 3) == 1 || inl) { /* reserved LIST ID USAGE; no inline data */
    scsi_sense(t, SCSI_SENSE_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_PARAM);
    return -1;
  }
  /* target descriptors: 32 bytes, or 64 for the IPv6 and IP copy service ones */
  const uint8_t *d = p + XCOPY_HDR, *tend = d + tdl;
  size_t n = 0;
  for (const uint8_t *q = d; q < tend; q += (q[0] == 0xea || q[0] == 0xeb) ? 64 : 32)
    n++;
  if (n > XCOPY_MAX_TARGETS) {
    scsi_sense(t, SCSI_SENSE_ILLEGAL_REQUEST, ASC_TOO_MANY_TARGET_DESCRIPTORS);
    return -1;
  }
  for (n = 0; d < tend; d += XCOPY_TARGET_LEN, n++) {
    if (d[0] != 0xe4) {
      scsi_sense(t, SCSI_SENSE_ILLEGAL_REQUEST, ASC_UNSUPPORTED_TARGET_DESCRIPTOR);
      return -1;
    }
    if (tend - d < XCOPY_TARGET_LEN) {
      scsi_sense(t, SCSI_SENSE_ILLEGAL_REQUEST, ASC_PARAM_LIST_LENGTH_ERROR);
      return -1;
    }
    resolve_target(t, d, &tg[n]);
  }
  *ntg = n;
  /* segment descriptors: 4-byte header, DESCRIPTOR LENGTH bytes more */
  const uint8_t *send = tend + sdl;
  n = 0;
  for (const uint8_t *q = tend; send - q >= 4; q += 4 + get16(q + 2))
    n++;
  if (n > XCOPY_MAX_SEGMENTS) {
    scsi_sense(t, SCSI_SENSE_ILLEGAL_REQUEST, ASC_TOO_MANY_SEGMENT_DESCRIPTORS);
    return -1;
  }
  /* Block to block (02h): a count of blocks.  Block with offset to block
   * with offset (0Ah): a count of bytes from a byte offset into the first
   * source block to one into the first destination block; the copy is byte
   * for byte, the rest of a partly written destination block kept (the
   * backstores take writes at any byte offset). */
  for (n = 0, d = tend; d < send; d += 4 + get16(d + 2), n++) {
    size_t dl = d[0] == 0x02 ? XCOPY_B2B_LEN : d[0] == 0x0a ? XCOPY_B2B_OFF_LEN : 0;
    if (!dl) {
      scsi_sense(t, SCSI_SENSE_ILLEGAL_REQUEST, ASC_UNSUPPORTED_SEGMENT_DESCRIPTOR);
      return -1;
    }
    if ((size_t)(send - d) < dl || get16(d + 2) != dl - 4) {
      scsi_sense(t, SCSI_SENSE_ILLEGAL_REQUEST, ASC_PARAM_LIST_LENGTH_ERROR);
      return -1;
    }
    uint16_t si = get16(d + 4), di = get16(d + 6);
    if (si >= *ntg || di >= *ntg || !tg[si].so || !tg[di].so) {
      copy_aborted(t, ASC_COPY_TARGET_NOT_REACHABLE);
      return -1;
    }
    struct segment *s = &seg[n];
    s->from = &tg[si];
    s->to = &tg[di];
    uint32_t bs = s->from->so->block_size;
    uint64_t src_lba = get64(d + 12), dst_lba = get64(d + 20);
    uint32_t src_off = 0, dst_off = 0;
    if (d[0] == 0x02) {
      s->bytes = (uint64_t)get16(d + 10) * bs;
    } else {
      s->bytes = get32(d + 8);
      src_off = get16(d + 28);
      dst_off = get16(d + 30);
    }
    if (s->to->so->block_size != bs || (s->from->block_len && s->from->block_len != bs) ||
        (s->to->block_len && s->to->block_len != bs) || src_off >= bs || dst_off >= bs ||
        s->bytes > XCOPY_MAX_SEGMENT_BYTES) {
      scsi_sense(t, SCSI_SENSE_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_PARAM);
      return -1;
    }
    if (!range_ok(s->from->so, src_lba, src_off, s->bytes) ||
        !range_ok(s->to->so, dst_lba, dst_off, s->bytes)) {
      copy_aborted(t, ASC_NO_ADDITIONAL_SENSE);
      return -1;
    }
    s->src = src_lba * bs + src_off;
    s->dst = dst_lba * bs + dst_off;
    if (s->bytes && s->to->write_protect) {
      scsi_sense(t, SCSI_SENSE_DATA_PROTECT, ASC_WRITE_PROTECTED);
      return -1;
    }
    if (reserved_by_other(t, s->from->so) || reserved_by_other(t, s->to->so) ||
        lu_pr_blocks(s->from->so, t->nexus, false) || lu_pr_blocks(s->to->so, t->nexus, true)) {
      t->status = SCSI_STATUS_RESERVATION_CONFLICT;
      return -1;
    }
  }
  *nseg = n;
  return 0;
}

/* Copy one segment in chunks; backwards when it overlaps itself forwards. */
static int copy_segment(const struct segment *s, uint8_t *buf, uint64_t *moved)
{
  struct lg_storage *src = s->from->so, *dst = s->to->so;
  uint64_t total = s->bytes, so = s->src, dof = s->dst;
  bool backwards = src == dst && dof > so && dof < so + total;
  for (uint64_t done = 0; done < total;) {
    size_t n = total - done < XCOPY_CHUNK ? (size_t)(total - done) : XCOPY_CHUNK;
    uint64_t at = backwards ? total - done - n : done;
    pthread_rwlock_rdlock(&src->io_lock);
    int r = src->ops->pread(src->h, buf, n, so + at);
    pthread_rwlock_unlock(&src->io_lock);
    if (r < 0)
      return r;
    pthread_rwlock_rdlock(&dst->io_lock);
    r = dst->ops->pwrite(dst->h, buf, n, dof + at, 0);
    pthread_rwlock_unlock(&dst->io_lock);
    if (r < 0)
      return r;
    done += n;
    *moved += n;
  }
  return 0;
}

/* Keep the outcome for RECEIVE COPY RESULTS, replacing the oldest entry. */
static void record(struct scsi_task *t, uint8_t list_id, uint8_t status, uint16_t segs,
                   uint64_t bytes)
{
  struct scsi_nexus *nx = t->nexus;
  pthread_mutex_lock(&nx->copies_lock);
  struct scsi_copy_result *slot = NULL;
  for (size_t i = 0; i < SCSI_COPY_RESULTS && !slot; i++)
    if (nx->copies[i].used && nx->copies[i].list_id == list_id)
      slot = &nx->copies[i];
  if (!slot) {
    slot = &nx->copies[nx->copies_next];
    nx->copies_next = (nx->copies_next + 1) % SCSI_COPY_RESULTS;
  }
  *slot = (struct scsi_copy_result){ true, list_id, status, segs,
                                     bytes > 0xffffffffu ? 0xffffffffu : (uint32_t)bytes };
  pthread_mutex_unlock(&nx->copies_lock);
}

void xcopy_exec(struct scsi_task *t)
{
  if (t->spdtl == 0)                 /* no parameter list: nothing to do */
    return;
  struct copy_target tg[XCOPY_MAX_TARGETS];
  struct segment seg[XCOPY_MAX_SEGMENTS];
  size_t ntg = 0, nseg = 0;
  if (check_list(t, tg, &ntg, seg, &nseg) < 0)
    return;
  uint8_t list_id = t->buf[0];
  bool keep = ((t->buf[1] >> 3) & 3) != 3; /* 11b: no status kept */
  uint8_t *buf = malloc(XCOPY_CHUNK);
  if (!buf) {
    scsi_sense_errno(t, -ENOMEM, true);
    return;
  }
  uint64_t moved = 0;
  size_t i;
  int r = 0;
  for (i = 0; i < nseg && r == 0; i++)
    r = copy_segment(&seg[i], buf, &moved);
  free(buf);
  if (r < 0) {
    i--;                             /* the segment that failed was not processed */
    scsi_sense_errno(t, r, true);
    if (t->sense_len) {
      t->sense[2] = SCSI_SENSE_COPY_ABORTED;
      t->sense[0] |= 0x80;           /* VALID: INFORMATION is the failed segment */
      put32(t->sense + 3, (uint32_t)i);
    }
  }
  if (keep)
    record(t, list_id, r < 0 ? COPY_DONE_ERRORS : COPY_DONE_OK, (uint16_t)i, moved);
}

/* The Third-party Copy VPD page (SPC-4 §7.8.17), written to d (page header
 * included): what xcopy_exec and xcopy_results above really do, as the
 * descriptors a copy initiator (Windows ODX, libiscsi, sg3_utils) looks for.
 * Each descriptor's length is a multiple of 4.  Returns the page's length. */
size_t xcopy_vpd_page(const struct scsi_task *t, uint8_t *d)
{
  size_t n = 4;
  /* Supported Commands (0001h): EXTENDED COPY (LID1, service action 00h) and
   * RECEIVE COPY RESULTS with COPY STATUS (00h) and OPERATING PARAMETERS (03h) */
  static const uint8_t cmds[] = { 0x83, 1, 0x00, 0x84, 2, 0x00, 0x03 };
  put16(d + n, 0x0001);
  put16(d + n + 2, 8);
  d[n + 4] = sizeof cmds;
  memcpy(d + n + 5, cmds, sizeof cmds);
  n += 4 + 8;
  /* Parameter Data (0004h): the bounds check_list enforces; no inline data */
  put16(d + n, 0x0004);
  put16(d + n + 2, 0x1c);
  put16(d + n + 8, XCOPY_MAX_TARGETS);
  put16(d + n + 10, XCOPY_MAX_SEGMENTS);
  put32(d + n + 12, XCOPY_MAX_DESC_LIST);
  put32(d + n + 16, 0);                             /* maximum inline data length */
  n += 4 + 0x1c;
  /* Supported Descriptors (0008h): block to block segments (02h, and 0Ah
   * with byte offsets) and identification CSCD descriptors (E4h), the only
   * ones check_list takes */
  put16(d + n, 0x0008);
  put16(d + n + 2, 4);
  d[n + 4] = 3;
  d[n + 5] = 0x02;
  d[n + 6] = 0x0a;
  d[n + 7] = 0xe4;
  n += 4 + 4;
  /* Supported CSCD Descriptor IDs (000Ch): none (no CSCD ID above 07FFh) */
  put16(d + n, 0x000c);
  put16(d + n + 2, 4);
  n += 4 + 4;
  /* General Copy Operations (8001h): one copy at a time per command, the
   * segment limit, a granularity of one logical block */
  put16(d + n, 0x8001);
  put16(d + n + 2, 0x20);
  put32(d + n + 4, 1);                              /* total concurrent copies */
  put32(d + n + 8, 1);                              /* maximum identified concurrent copies */
  put32(d + n + 12, XCOPY_MAX_SEGMENT_BYTES);       /* maximum segment length */
  d[n + 16] = (uint8_t)(31 - __builtin_clz(t->lun->so->block_size)); /* data segment granularity */
  d[n + 17] = 0;                                    /* inline data granularity */
  n += 4 + 0x20;
  put16(d + 2, (uint16_t)(n - 4));
  return n;
}

int xcopy_parse_results(struct scsi_task *t)
{
  uint32_t alloc = get32(t->cdb + 10);
  t->spdtl = alloc < 4096 ? alloc : 4096;
  t->dir = t->spdtl ? SCSI_DIR_IN : SCSI_DIR_NONE;
  return 0;
}

/* RECEIVE COPY RESULTS: COPY STATUS and OPERATING PARAMETERS. */
void xcopy_results(struct scsi_task *t)
{
  uint8_t d[48] = { 0 };
  uint32_t alloc = get32(t->cdb + 10);
  if ((t->cdb[1] & 0x1f) == 0x03) { /* OPERATING PARAMETERS */
    d[4] = 0;                                      /* SNLID: list ids are checked */
    put16(d + 8, XCOPY_MAX_TARGETS);
    put16(d + 10, XCOPY_MAX_SEGMENTS);
    put32(d + 12, XCOPY_MAX_DESC_LIST);
    put32(d + 16, XCOPY_MAX_SEGMENT_BYTES);        /* maximum segment length */
    put16(d + 34, 1);                              /* total concurrent copies */
    d[36] = 1;                                     /* maximum concurrent copies */
    d[37] = (uint8_t)(31 - __builtin_clz(t->lun->so->block_size)); /* data segment granularity */
    d[43] = 3;                                     /* implemented descriptor types: */
    d[44] = 0x02;                                  /* block to block segments */
    d[45] = 0x0a;                                  /* the same with byte offsets */
    d[46] = 0xe4;                                  /* identification target descriptors */
    put32(d, 47 - 4);
    scsi_reply(t, d, 47, alloc);
    return;
  }
  /* COPY STATUS of this nexus's list identifier */
  struct scsi_nexus *nx = t->nexus;
  const struct scsi_copy_result *found = NULL;
  pthread_mutex_lock(&nx->copies_lock);
  for (size_t i = 0; i < SCSI_COPY_RESULTS; i++)
    if (nx->copies[i].used && nx->copies[i].list_id == t->cdb[2]) {
      found = &nx->copies[i];
      d[4] = found->status;
      put16(d + 5, found->segments);
      d[7] = 0;                                    /* transfer count in bytes */
      put32(d + 8, found->bytes);
    }
  pthread_mutex_unlock(&nx->copies_lock);
  if (!found) {
    scsi_sense_field(t, 2, -1);
    return;
  }
  put32(d, 12 - 4);
  scsi_reply(t, d, 12, alloc);
}
