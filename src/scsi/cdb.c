/* The opcode table and CDB dispatch (tgt sbc.c style: one const table). */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "scsi/scsi_int.h"

#define CTL 0x07  /* control byte bits we accept (NACA, obsolete LINK/FLAG) */

const struct scsi_op scsi_ops[] = {
  { 0x00, 0, "TEST UNIT READY", 6, OP_NEEDS_LUN, NULL, spc_test_unit_ready,
    { 0x00, 0, 0, 0, 0, CTL } },
  { 0x03, 0, "REQUEST SENSE", 6, OP_RES_OK, spc_parse_alloc, spc_request_sense,
    { 0x03, 0x01, 0, 0, 0xff, CTL } },
  { 0x08, 0, "READ(6)", 6, OP_NEEDS_LUN, sbc_parse_rw, sbc_read,
    { 0x08, 0x1f, 0xff, 0xff, 0xff, CTL } },
  { 0x0a, 0, "WRITE(6)", 6, OP_NEEDS_LUN | OP_WRITES, sbc_parse_rw, sbc_write,
    { 0x0a, 0x1f, 0xff, 0xff, 0xff, CTL } },
  { 0x15, 0, "MODE SELECT(6)", 6, OP_NEEDS_LUN, lu_parse_mode_select, lu_mode_select,
    { 0x15, 0x11, 0, 0, 0xff, CTL } },
  { 0x16, 0, "RESERVE(6)", 6, OP_NEEDS_LUN | OP_RES_OK, NULL, spc_reserve,
    { 0x16, 0, 0, 0, 0, CTL } },
  { 0x17, 0, "RELEASE(6)", 6, OP_NEEDS_LUN | OP_RES_OK, NULL, spc_release,
    { 0x17, 0, 0, 0, 0, CTL } },
  { 0x12, 0, "INQUIRY", 6, OP_RES_OK, spc_parse_alloc, spc_inquiry,
    { 0x12, 0x01, 0xff, 0xff, 0xff, CTL } },
  { 0x1a, 0, "MODE SENSE(6)", 6, OP_NEEDS_LUN, spc_parse_alloc, spc_mode_sense,
    { 0x1a, 0x08, 0xff, 0xff, 0xff, CTL } },
  { 0x1b, 0, "START STOP UNIT", 6, OP_NEEDS_LUN, NULL, spc_start_stop,
    { 0x1b, 0x01, 0, 0x0f, 0xf7, CTL } },
  { 0x1e, 0, "PREVENT ALLOW MEDIUM REMOVAL", 6, OP_NEEDS_LUN, NULL, spc_prevent_allow,
    { 0x1e, 0, 0, 0, 0x03, CTL } },
  { 0x25, 0, "READ CAPACITY(10)", 10, OP_NEEDS_LUN, spc_parse_alloc, sbc_read_capacity10,
    { 0x25, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 0x01, CTL } },
  { 0x28, 0, "READ(10)", 10, OP_NEEDS_LUN, sbc_parse_rw, sbc_read,
    { 0x28, 0x18, 0xff, 0xff, 0xff, 0xff, 0x1f, 0xff, 0xff, CTL } },
  { 0x2a, 0, "WRITE(10)", 10, OP_NEEDS_LUN | OP_WRITES, sbc_parse_rw, sbc_write,
    { 0x2a, 0x18, 0xff, 0xff, 0xff, 0xff, 0x1f, 0xff, 0xff, CTL } },
  { 0x2f, 0, "VERIFY(10)", 10, OP_NEEDS_LUN, sbc_parse_verify, sbc_verify,
    { 0x2f, 0x16, 0xff, 0xff, 0xff, 0xff, 0x1f, 0xff, 0xff, CTL } },
  { 0x2e, 0, "WRITE AND VERIFY(10)", 10, OP_NEEDS_LUN | OP_WRITES, sbc_parse_rw, sbc_write,
    { 0x2e, 0x12, 0xff, 0xff, 0xff, 0xff, 0x1f, 0xff, 0xff, CTL } },
  { 0x34, 0, "PRE-FETCH(10)", 10, OP_NEEDS_LUN, sbc_parse_sync, spc_test_unit_ready,
    { 0x34, 0x02, 0xff, 0xff, 0xff, 0xff, 0x1f, 0xff, 0xff, CTL } },
  { 0x35, 0, "SYNCHRONIZE CACHE(10)", 10, OP_NEEDS_LUN, sbc_parse_sync, sbc_sync_cache,
    { 0x35, 0x02, 0xff, 0xff, 0xff, 0xff, 0x1f, 0xff, 0xff, CTL } },
  { 0x37, 0, "READ DEFECT DATA(10)", 10, OP_NEEDS_LUN, spc_parse_alloc, sbc_read_defect_data,
    { 0x37, 0, 0x1f, 0, 0, 0, 0, 0xff, 0xff, CTL } },
  { 0x41, 0, "WRITE SAME(10)", 10, OP_NEEDS_LUN | OP_WRITES, lbp_parse_write_same, lbp_write_same,
    { 0x41, 0x08, 0xff, 0xff, 0xff, 0xff, 0x1f, 0xff, 0xff, CTL } },
  { 0x42, 0, "UNMAP", 10, OP_NEEDS_LUN | OP_WRITES, lbp_parse_unmap, lbp_unmap,
    { 0x42, 0x00, 0, 0, 0, 0, 0x1f, 0xff, 0xff, CTL } },
  { 0x55, 0, "MODE SELECT(10)", 10, OP_NEEDS_LUN, lu_parse_mode_select, lu_mode_select,
    { 0x55, 0x11, 0, 0, 0, 0, 0, 0xff, 0xff, CTL } },
  { 0x56, 0, "RESERVE(10)", 10, OP_NEEDS_LUN | OP_RES_OK, NULL, spc_reserve,
    { 0x56, 0, 0, 0, 0, 0, 0, 0, 0, CTL } },
  { 0x57, 0, "RELEASE(10)", 10, OP_NEEDS_LUN | OP_RES_OK, NULL, spc_release,
    { 0x57, 0, 0, 0, 0, 0, 0, 0, 0, CTL } },
  { 0x5a, 0, "MODE SENSE(10)", 10, OP_NEEDS_LUN, spc_parse_alloc, spc_mode_sense,
    { 0x5a, 0x18, 0xff, 0xff, 0, 0, 0, 0xff, 0xff, CTL } },
  { 0x5e, 0, "PERSISTENT RESERVE IN", 10, OP_NEEDS_LUN | OP_HAS_SA, lu_parse_pr_in, lu_pr_in,
    { 0x5e, 0x1f, 0, 0, 0, 0, 0, 0xff, 0xff, CTL } },
  { 0x5e, 1, "PERSISTENT RESERVE IN", 10, OP_NEEDS_LUN | OP_HAS_SA, lu_parse_pr_in, lu_pr_in,
    { 0x5e, 0x1f, 0, 0, 0, 0, 0, 0xff, 0xff, CTL } },
  { 0x5e, 2, "PERSISTENT RESERVE IN", 10, OP_NEEDS_LUN | OP_HAS_SA, lu_parse_pr_in, lu_pr_in,
    { 0x5e, 0x1f, 0, 0, 0, 0, 0, 0xff, 0xff, CTL } },
  { 0x5e, 3, "PERSISTENT RESERVE IN", 10, OP_NEEDS_LUN | OP_HAS_SA, lu_parse_pr_in, lu_pr_in,
    { 0x5e, 0x1f, 0, 0, 0, 0, 0, 0xff, 0xff, CTL } },
  { 0x5f, 0, "PERSISTENT RESERVE OUT", 10, OP_NEEDS_LUN | OP_HAS_SA, lu_parse_pr_out, lu_pr_out,
    { 0x5f, 0x1f, 0xff, 0, 0, 0xff, 0xff, 0xff, 0xff, CTL } },
  { 0x5f, 1, "PERSISTENT RESERVE OUT", 10, OP_NEEDS_LUN | OP_HAS_SA, lu_parse_pr_out, lu_pr_out,
    { 0x5f, 0x1f, 0xff, 0, 0, 0xff, 0xff, 0xff, 0xff, CTL } },
  { 0x5f, 2, "PERSISTENT RESERVE OUT", 10, OP_NEEDS_LUN | OP_HAS_SA, lu_parse_pr_out, lu_pr_out,
    { 0x5f, 0x1f, 0xff, 0, 0, 0xff, 0xff, 0xff, 0xff, CTL } },
  { 0x5f, 3, "PERSISTENT RESERVE OUT", 10, OP_NEEDS_LUN | OP_HAS_SA, lu_parse_pr_out, lu_pr_out,
    { 0x5f, 0x1f, 0xff, 0, 0, 0xff, 0xff, 0xff, 0xff, CTL } },
  { 0x5f, 4, "PERSISTENT RESERVE OUT", 10, OP_NEEDS_LUN | OP_HAS_SA, lu_parse_pr_out, lu_pr_out,
    { 0x5f, 0x1f, 0xff, 0, 0, 0xff, 0xff, 0xff, 0xff, CTL } },
  { 0x5f, 5, "PERSISTENT RESERVE OUT", 10, OP_NEEDS_LUN | OP_HAS_SA, lu_parse_pr_out, lu_pr_out,
    { 0x5f, 0x1f, 0xff, 0, 0, 0xff, 0xff, 0xff, 0xff, CTL } },
  { 0x5f, 6, "PERSISTENT RESERVE OUT", 10, OP_NEEDS_LUN | OP_HAS_SA, lu_parse_pr_out, lu_pr_out,
    { 0x5f, 0x1f, 0xff, 0, 0, 0xff, 0xff, 0xff, 0xff, CTL } },
  { 0x83, 0x00, "EXTENDED COPY(LID1)", 16, OP_NEEDS_LUN | OP_HAS_SA, xcopy_parse, xcopy_exec,
    { 0x83, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, CTL } },
  { 0x84, 0x00, "RECEIVE COPY RESULTS(COPY STATUS)", 16, OP_NEEDS_LUN | OP_HAS_SA,
    xcopy_parse_results, xcopy_results,
    { 0x84, 0x00, 0xff, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, CTL } },
  { 0x84, 0x03, "RECEIVE COPY RESULTS(OPERATING PARAMETERS)", 16, OP_NEEDS_LUN | OP_HAS_SA,
    xcopy_parse_results, xcopy_results,
    { 0x84, 0x03, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, CTL } },
  { 0x88, 0, "READ(16)", 16, OP_NEEDS_LUN, sbc_parse_rw, sbc_read,
    { 0x88, 0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x1f, CTL } },
  { 0x8a, 0, "WRITE(16)", 16, OP_NEEDS_LUN | OP_WRITES, sbc_parse_rw, sbc_write,
    { 0x8a, 0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x1f, CTL } },
  { 0x89, 0, "COMPARE AND WRITE", 16, OP_NEEDS_LUN | OP_WRITES, sbc_parse_caw, sbc_compare_and_write,
    { 0x89, 0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0xff, 0x1f, CTL } },
  { 0x8b, 0, "ORWRITE(16)", 16, OP_NEEDS_LUN | OP_WRITES, sbc_parse_rw, sbc_orwrite,
    { 0x8b, 0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x1f, CTL } },
  { 0x8e, 0, "WRITE AND VERIFY(16)", 16, OP_NEEDS_LUN | OP_WRITES, sbc_parse_rw, sbc_write,
    { 0x8e, 0x12, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x1f, CTL } },
  { 0x8f, 0, "VERIFY(16)", 16, OP_NEEDS_LUN, sbc_parse_verify, sbc_verify,
    { 0x8f, 0x16, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x1f, CTL } },
  { 0x90, 0, "PRE-FETCH(16)", 16, OP_NEEDS_LUN, sbc_parse_sync, spc_test_unit_ready,
    { 0x90, 0x02, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x1f, CTL } },
  { 0x91, 0, "SYNCHRONIZE CACHE(16)", 16, OP_NEEDS_LUN, sbc_parse_sync, sbc_sync_cache,
    { 0x91, 0x02, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x1f, CTL } },
  { 0x93, 0, "WRITE SAME(16)", 16, OP_NEEDS_LUN | OP_WRITES, lbp_parse_write_same, lbp_write_same,
    { 0x93, 0x09, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x1f, CTL } },
  { 0x9c, 0, "WRITE ATOMIC(16)", 16, OP_NEEDS_LUN | OP_WRITES, sbc_parse_write_atomic, sbc_write_atomic,
    { 0x9c, 0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0xff, 0xff, 0x1f, CTL } },
  { 0x9e, 0x10, "READ CAPACITY(16)", 16, OP_NEEDS_LUN | OP_HAS_SA, spc_parse_alloc, sbc_read_capacity16,
    { 0x9e, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x01, CTL } },
  { 0x9e, 0x12, "GET LBA STATUS", 16, OP_NEEDS_LUN | OP_HAS_SA, spc_parse_alloc, lbp_get_lba_status,
    { 0x9e, 0x12, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, CTL } },
  { 0xa0, 0, "REPORT LUNS", 12, OP_RES_OK, spc_parse_alloc, spc_report_luns,
    { 0xa0, 0, 0xff, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, CTL } },
  { 0xa3, 0x0c, "REPORT SUPPORTED OPERATION CODES", 12, OP_HAS_SA | OP_RES_OK, spc_parse_alloc, spc_report_opcodes,
    { 0xa3, 0x0c, 0x87, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, CTL } },
  { 0xa8, 0, "READ(12)", 12, OP_NEEDS_LUN, sbc_parse_rw, sbc_read,
    { 0xa8, 0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x1f, CTL } },
  { 0xaa, 0, "WRITE(12)", 12, OP_NEEDS_LUN | OP_WRITES, sbc_parse_rw, sbc_write,
    { 0xaa, 0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x1f, CTL } },
  { 0xae, 0, "WRITE AND VERIFY(12)", 12, OP_NEEDS_LUN | OP_WRITES, sbc_parse_rw, sbc_write,
    { 0xae, 0x12, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x1f, CTL } },
  { 0xaf, 0, "VERIFY(12)", 12, OP_NEEDS_LUN, sbc_parse_verify, sbc_verify,
    { 0xaf, 0x16, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x1f, CTL } },
  { 0xb7, 0, "READ DEFECT DATA(12)", 12, OP_NEEDS_LUN, spc_parse_alloc, sbc_read_defect_data,
    { 0xb7, 0x1f, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, CTL } },
};
const size_t scsi_n_ops = sizeof scsi_ops / sizeof scsi_ops[0];

/* The rows each device type answers, in opcode (then service action)
 * order, and opcode -> first row + 1 (0: unsupported); built on first use. */
static struct scsi_optable disk_table, cd_table;

static int row_cmp(const void *a, const void *b)
{
  const struct scsi_op *x = *(const struct scsi_op *const *)a, *y = *(const struct scsi_op *const *)b;
  return x->opcode != y->opcode ? x->opcode - y->opcode : x->sa - y->sa;
}

static void add_row(struct scsi_optable *tb, const struct scsi_op *op)
{
  if (tb->n < sizeof tb->rows / sizeof tb->rows[0])
    tb->rows[tb->n++] = op;
}

static void build_tables(void)
{
  for (size_t i = 0; i < scsi_n_ops; i++) {
    add_row(&disk_table, &scsi_ops[i]);
    if (memchr(mmc_shared_opcodes, scsi_ops[i].opcode, mmc_n_shared))
      add_row(&cd_table, &scsi_ops[i]);
  }
  for (size_t i = 0; i < mmc_n_ops; i++)
    add_row(&cd_table, &mmc_ops[i]);
  qsort(cd_table.rows, cd_table.n, sizeof cd_table.rows[0], row_cmp);
  struct scsi_optable *tables[] = { &disk_table, &cd_table };
  for (size_t k = 0; k < 2; k++)
    for (size_t i = tables[k]->n; i-- > 0;)
      tables[k]->index[tables[k]->rows[i]->opcode] = (uint8_t)(i + 1);
}

const struct scsi_optable *scsi_optable(const struct scsi_task *t)
{
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  pthread_once(&once, build_tables);
  return t->lun && t->lun->so->device_type == LG_DEV_CD ? &cd_table : &disk_table;
}

static const struct scsi_op *find_op(const struct scsi_task *t, bool *bad_sa)
{
  const struct scsi_optable *tb = scsi_optable(t);
  const uint8_t *cdb = t->cdb;
  *bad_sa = false;
  unsigned i = tb->index[cdb[0]];
  if (!i)
    return NULL;
  if (!(tb->rows[i - 1]->flags & OP_HAS_SA))
    return tb->rows[i - 1];
  for (i--; i < tb->n && tb->rows[i]->opcode == cdb[0]; i++)
    if (tb->rows[i]->sa == (cdb[1] & 0x1f))
      return tb->rows[i];
  *bad_sa = true;
  return NULL;
}

const char *scsi_op_name(uint8_t opcode)
{
  for (size_t i = 0; i < scsi_n_ops; i++)
    if (scsi_ops[i].opcode == opcode)
      return scsi_ops[i].name;
  for (size_t i = 0; i < mmc_n_ops; i++)
    if (mmc_ops[i].opcode == opcode)
      return mmc_ops[i].name;
  return NULL;
}

int scsi_parse(struct scsi_task *t)
{
  bool bad_sa;
  t->status = SCSI_STATUS_GOOD;
  t->sense_len = 0;
  t->dir = SCSI_DIR_NONE;
  t->spdtl = 0;
  t->lba = 0;
  t->nblocks = 0;
  t->bs_flags = 0;
  t->data_in_len = 0;
  t->op = find_op(t, &bad_sa);
  t->lun_nexus = NULL;
  if (lu_enter(t) < 0) /* a pending unit attention comes first */
    return -1;
  if (!t->op) {
    if (bad_sa)
      scsi_sense_field(t, 1, 4);
    else
      scsi_sense(t, SCSI_SENSE_ILLEGAL_REQUEST, ASC_INVALID_OPCODE);
    return -1;
  }
  if (!t->lun && (t->op->flags & OP_NEEDS_LUN)) {
    scsi_sense(t, SCSI_SENSE_ILLEGAL_REQUEST, ASC_LUN_NOT_SUPPORTED);
    return -1;
  }
  /* a disk a forced action took from a running OS: failing until it boots again */
  if (t->lun && t->lun->so->fenced && (t->op->flags & OP_NEEDS_LUN)) {
    scsi_sense(t, SCSI_SENSE_NOT_READY, ASC_NOT_READY_MANUAL);
    return -1;
  }
  /* a LU reserved by another I_T nexus (RESERVE 6/10) */
  uintptr_t holder = t->lun ? atomic_load(&t->lun->so->reserved_by) : 0;
  if (holder && holder != (uintptr_t)t->nexus && !(t->op->flags & OP_RES_OK)) {
    t->status = SCSI_STATUS_RESERVATION_CONFLICT;
    return -1;
  }
  if (lu_pr_conflict(t)) { /* a persistent reservation */
    t->status = SCSI_STATUS_RESERVATION_CONFLICT;
    return -1;
  }
  /* reserved bits set in the CDB (outside the usage map) are invalid */
  for (unsigned i = 1; i < t->op->cdb_len; i++)
    if (t->cdb[i] & ~t->op->usage[i]) {
      scsi_sense_field(t, i, 31 - __builtin_clz((unsigned)(t->cdb[i] & ~t->op->usage[i])));
      return -1;
    }
  if (t->op->parse && t->op->parse(t) < 0)
    return -1;
  if ((t->op->flags & OP_WRITES) && t->lun &&
      (t->lun->write_protect || t->lun->so->readonly)) {
    scsi_sense(t, SCSI_SENSE_DATA_PROTECT, ASC_WRITE_PROTECTED);
    return -1;
  }
  if ((t->op->flags & OP_WRITES) && t->lun && lu_swp(t->lun->so)) {
    scsi_sense(t, SCSI_SENSE_DATA_PROTECT, ASC_WRITE_PROTECTED_SW);
    return -1;
  }
  if (t->op->exec == sbc_write && !lu_wce(t->lun->so)) /* caching page WCE=0: write through */
    t->bs_flags |= LG_BS_FUA;
  return 0;
}

void scsi_release_nexus(const struct scsi_nexus *nx, const struct lg_lun_view *luns,
                        size_t n)
{
  for (size_t i = 0; i < n; i++) {
    uintptr_t mine = (uintptr_t)nx;
    atomic_compare_exchange_strong(&luns[i].so->reserved_by, &mine, 0);
  }
}

bool scsi_write_truncatable(const struct scsi_task *t)
{
  return t->op && t->op->exec == sbc_write;
}

void scsi_exec(struct scsi_task *t)
{
  /* aborted by another nexus's task management or PREEMPT AND ABORT */
  if (t->lun_nexus && atomic_load(&t->lun_nexus->epoch) != t->epoch) {
    t->status = SCSI_STATUS_TASK_ABORTED;
    t->sense_len = 0;
    t->data_in_len = 0;
    return;
  }
  t->op->exec(t);
}

bool scsi_exec_nowait(struct scsi_task *t)
{
  return t->op->exec == sbc_read && sbc_read_nowait(t);
}

bool scsi_exec_async(struct scsi_task *t, void (*done)(struct scsi_task *t))
{
  if (t->lun_nexus && atomic_load(&t->lun_nexus->epoch) != t->epoch) /* scsi_exec's */
    return false;
  void (*exec)(struct scsi_task *) = t->op->exec;
  if (exec == sbc_read)
    return sbc_read_async(t, done);
  if (exec == sbc_write)
    return sbc_write_async(t, done);
  if (exec == sbc_sync_cache)
    return sbc_sync_cache_async(t, done);
  if (exec == lbp_write_same)
    return lbp_write_same_async(t, done);
  if (exec == lbp_unmap)
    return lbp_unmap_async(t, done);
  return false;
}

void scsi_reply(struct scsi_task *t, const void *data, size_t n, uint32_t alloc_len)
{
  if (n > alloc_len)
    n = alloc_len;
  t->data_in_len = (uint32_t)n;
  if (n && t->bufcap) /* an allocation length of 0 leaves no buffer at all */
    memcpy(t->buf, data, n < t->bufcap ? n : t->bufcap);
}
