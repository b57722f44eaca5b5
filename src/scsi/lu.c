/* The SCSI state of a logical unit shared by all its I_T nexuses: which
 * nexuses are attached and their unit attention queues, persistent
 * reservations (PERSISTENT RESERVE IN/OUT, the APTPL file), the changeable
 * mode page values (MODE SELECT), and task management across nexuses.
 *
 * Locking: lu->lock guards the nexus list, the UA queues and the PR state.
 * Hot paths look at atomics first (ua_n, pr_active) and take the lock only
 * when something is pending.  Aborting another nexus's commands never touches
 * its tasks: its epoch on the LU is bumped, and a command whose epoch is old
 * when it is about to run ends with TASK ABORTED instead (scsi_exec).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "scsi/scsi_int.h"
#include "util/log.h"

struct scsi_lu *scsi_lu_get(struct lg_storage *so)
{
  struct scsi_lu *lu = atomic_load(&so->lu);
  if (lu)
    return lu;
  lu = calloc(1, sizeof *lu);
  if (!lu)
    return NULL;
  pthread_mutex_init(&lu->lock, NULL);
  atomic_init(&lu->wce, true);
  if (so->pr_file) {
    int r = pr_load(&lu->pr, so->pr_file);
    if (r < 0)
      lg_warn("storage=%s: cannot load the persistent reservations from %s (%s); starting "
              "with none", so->name, so->pr_file, r == -EINVAL ? "not a state file" : strerror(-r));
    else if (lu->pr.n_regs)
      lg_info("storage=%s: %zu persistent registrations%s loaded from %s", so->name,
              lu->pr.n_regs, lu->pr.reserved ? " and a reservation" : "", so->pr_file);
    atomic_store(&lu->pr_active, lu->pr.n_regs || lu->pr.reserved);
  }
  struct scsi_lu *none = NULL;
  if (!atomic_compare_exchange_strong(&so->lu, &none, lu)) {
    pr_state_clear(&lu->pr);
    pthread_mutex_destroy(&lu->lock);
    free(lu);
    return none;
  }
  return lu;
}

void scsi_lu_free(struct lg_storage *so)
{
  struct scsi_lu *lu = atomic_exchange(&so->lu, NULL);
  if (!lu)
    return;
  while (lu->nexuses) {
    struct scsi_lu_nexus *e = lu->nexuses;
    lu->nexuses = e->next;
    free(e);
  }
  pr_state_clear(&lu->pr);
  pthread_mutex_destroy(&lu->lock);
  free(lu);
}

/* ---- nexuses and unit attentions ---- */

static void ua_add(struct scsi_lu_nexus *e, uint16_t asc)
{
  ua_push(&e->ua, asc);
  atomic_store(&e->ua_n, e->ua.n);
}

int scsi_nexus_attach(struct scsi_nexus *nx)
{
  nx->ent = calloc(nx->n_luns ? nx->n_luns : 1, sizeof *nx->ent);
  if (!nx->ent)
    return -ENOMEM;
  for (size_t i = 0; i < nx->n_luns; i++) {
    struct scsi_lu *lu = scsi_lu_get(nx->luns[i].so);
    struct scsi_lu_nexus *e = calloc(1, sizeof *e);
    if (!lu || !e) {
      free(e);
      scsi_nexus_detach(nx);
      return -ENOMEM;
    }
    e->nx = nx;
    ua_add(e, UA_POWER_ON_RESET);   /* a new I_T nexus: SAM-5 6.3.1 */
    pthread_mutex_lock(&lu->lock);
    e->next = lu->nexuses;
    lu->nexuses = e;
    pthread_mutex_unlock(&lu->lock);
    nx->ent[i] = e;
  }
  return 0;
}

void scsi_nexus_detach(struct scsi_nexus *nx)
{
  if (!nx->ent)
    return;
  for (size_t i = 0; i < nx->n_luns; i++) {
    struct scsi_lu_nexus *e = nx->ent[i];
    struct scsi_lu *lu = atomic_load(&nx->luns[i].so->lu);
    if (!e || !lu)
      continue;
    pthread_mutex_lock(&lu->lock);
    for (struct scsi_lu_nexus **pp = &lu->nexuses; *pp; pp = &(*pp)->next)
      if (*pp == e) {
        *pp = e->next;
        break;
      }
    pthread_mutex_unlock(&lu->lock);
    free(e);
  }
  free(nx->ent);
  nx->ent = NULL;
}

/* The nexus entry of a task's LUN, or NULL. */
static struct scsi_lu_nexus *task_entry(const struct scsi_task *t)
{
  const struct scsi_nexus *nx = t->nexus;
  if (!nx || !nx->ent || !t->lun || t->lun < nx->luns || t->lun >= nx->luns + nx->n_luns)
    return NULL;
  return nx->ent[t->lun - nx->luns];
}

bool lu_take_ua(struct scsi_task *t, uint16_t *asc)
{
  struct scsi_lu_nexus *e = task_entry(t);
  struct scsi_lu *lu = t->lun ? atomic_load(&t->lun->so->lu) : NULL;
  if (!e || !lu || !atomic_load(&e->ua_n))
    return false;
  pthread_mutex_lock(&lu->lock);
  bool got = ua_pop(&e->ua, asc);
  atomic_store(&e->ua_n, e->ua.n);
  pthread_mutex_unlock(&lu->lock);
  return got;
}

int lu_enter(struct scsi_task *t)
{
  struct scsi_lu_nexus *e = task_entry(t);
  t->lun_nexus = e;
  if (!e)
    return 0;
  t->epoch = atomic_load(&e->epoch);
  /* SPC-4 5.14: INQUIRY, REPORT LUNS and REQUEST SENSE neither report nor
   * clear a unit attention (REQUEST SENSE returns it as its data) */
  uint8_t op = t->cdb[0];
  if (op == 0x12 || op == 0xa0 || op == 0x03)
    return 0;
  uint16_t asc;
  if (!lu_take_ua(t, &asc))
    return 0;
  scsi_sense(t, SCSI_SENSE_UNIT_ATTENTION, asc);
  return -1;
}

bool lu_pr_conflict(const struct scsi_task *t)
{
  struct scsi_lu *lu = t->lun ? atomic_load(&t->lun->so->lu) : NULL;
  if (!lu || !t->nexus || !atomic_load(&lu->pr_active))
    return false;
  pthread_mutex_lock(&lu->lock);
  bool c = pr_conflict(&lu->pr, &t->nexus->id, t->cdb, t->op->flags & OP_WRITES);
  pthread_mutex_unlock(&lu->lock);
  return c;
}

bool lu_pr_blocks(struct lg_storage *so, const struct scsi_nexus *nx, bool write)
{
  struct scsi_lu *lu = atomic_load(&so->lu);
  if (!lu || !nx || !atomic_load(&lu->pr_active))
    return false;
  /* judged as the READ(16) or WRITE(16) the copy amounts to on that LU */
  const uint8_t cdb[16] = { write ? 0x8a : 0x88 };
  pthread_mutex_lock(&lu->lock);
  bool c = pr_conflict(&lu->pr, &nx->id, cdb, write);
  pthread_mutex_unlock(&lu->lock);
  return c;
}

/* Unit attention for every nexus on the LU but one (NULL: all).  Under lock. */
static void ua_others(struct scsi_lu *lu, const struct scsi_nexus *except, uint16_t asc)
{
  for (struct scsi_lu_nexus *e = lu->nexuses; e; e = e->next)
    if (e->nx != except)
      ua_add(e, asc);
}

void scsi_lu_reset(struct lg_storage *so, enum scsi_reset kind)
{
  struct scsi_lu *lu = scsi_lu_get(so);
  if (kind != SCSI_CLEAR_TASK_SET)
    atomic_store(&so->reserved_by, 0); /* a reset releases RESERVE(6/10) */
  if (!lu)
    return;
  pthread_mutex_lock(&lu->lock);
  for (struct scsi_lu_nexus *e = lu->nexuses; e; e = e->next) {
    atomic_fetch_add(&e->epoch, 1);
    if (kind == SCSI_LU_RESET)
      ua_add(e, UA_BUS_DEVICE_RESET);
    else if (kind == SCSI_TARGET_RESET)
      ua_add(e, UA_POWER_ON_RESET);
  }
  pthread_mutex_unlock(&lu->lock);
}

bool lu_wce(struct lg_storage *so)
{
  struct scsi_lu *lu = atomic_load(&so->lu);
  return lu ? atomic_load(&lu->wce) : true;
}

bool lu_swp(struct lg_storage *so)
{
  struct scsi_lu *lu = atomic_load(&so->lu);
  return lu && atomic_load(&lu->swp);
}

void scsi_sense_param(struct scsi_task *t, unsigned byte, int bit)
{
  scsi_sense(t, SCSI_SENSE_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_PARAM);
  t->sense[15] = (uint8_t)(0x80 | (bit >= 0 ? 0x08 | (bit & 7) : 0)); /* SKSV, C/D = 0 */
  t->sense[16] = (uint8_t)(byte >> 8);
  t->sense[17] = (uint8_t)byte;
}

/* ---- PERSISTENT RESERVE IN / OUT ---- */

#define PR_OUT_MAX 4096              /* longest parameter list we take */

int lu_parse_pr_in(struct scsi_task *t)
{
  uint32_t alloc = get16(t->cdb + 7);
  t->spdtl = alloc;
  t->dir = alloc ? SCSI_DIR_IN : SCSI_DIR_NONE;
  return 0;
}

int lu_parse_pr_out(struct scsi_task *t)
{
  uint32_t len = get32(t->cdb + 5);
  if (len > PR_OUT_MAX) {
    scsi_sense(t, SCSI_SENSE_ILLEGAL_REQUEST, ASC_PARAM_LIST_LENGTH_ERROR);
    return -1;
  }
  t->spdtl = len;
  t->dir = len ? SCSI_DIR_OUT : SCSI_DIR_NONE;
  return 0;
}

void lu_pr_in(struct scsi_task *t)
{
  struct lg_storage *so = t->lun->so;
  struct scsi_lu *lu = scsi_lu_get(so);
  if (!lu) {
    scsi_sense_errno(t, -ENOMEM, false);
    return;
  }
  uint32_t alloc = get16(t->cdb + 7);
  pthread_mutex_lock(&lu->lock);
  size_t n = pr_in(&lu->pr, t->cdb[1] & 0x1f, so->pr_file != NULL, t->buf, t->bufcap);
  pthread_mutex_unlock(&lu->lock);
  t->data_in_len = (uint32_t)(n < alloc ? n : alloc);
}

/* Copy of a PR state (to undo a change the APTPL file could not keep). */
static int pr_copy(struct pr_state *dst, const struct pr_state *src)
{
  *dst = *src;
  dst->regs = malloc((src->n_regs ? src->n_regs : 1) * sizeof *src->regs);
  if (!dst->regs)
    return -ENOMEM;
  if (src->n_regs)
    memcpy(dst->regs, src->regs, src->n_regs * sizeof *src->regs);
  return 0;
}

void lu_pr_out(struct scsi_task *t)
{
  struct lg_storage *so = t->lun->so;
  struct scsi_lu *lu = scsi_lu_get(so);
  struct pr_effects *fx = malloc(sizeof *fx);
  struct pr_state undo;
  if (!lu || !fx) {
    free(fx);
    scsi_sense_errno(t, -ENOMEM, false);
    return;
  }
  uint32_t len = t->spdtl < t->bufcap ? t->spdtl : t->bufcap;
  pthread_mutex_lock(&lu->lock);
  if (pr_copy(&undo, &lu->pr) < 0) {
    pthread_mutex_unlock(&lu->lock);
    free(fx);
    scsi_sense_errno(t, -ENOMEM, false);
    return;
  }
  bool was_aptpl = lu->pr.aptpl;
  struct pr_out_result r = pr_out(&lu->pr, &t->nexus->id, t->cdb, t->buf, len,
                                  so->pr_file != NULL, fx);
  if (r.rc == PR_OK && fx->changed && so->pr_file && (was_aptpl || lu->pr.aptpl)) {
    int e = pr_save(&lu->pr, so->pr_file);
    if (e < 0) {
      lg_err("storage=%s: cannot write the persistent reservations to %s: %s; the "
               "command fails and changes nothing", so->name, so->pr_file, strerror(-e));
      pr_state_clear(&lu->pr);
      lu->pr = undo;
      undo.regs = NULL;
      fx->n_ua = 0;
      r.rc = PR_NO_SPACE;
    }
  }
  free(undo.regs);
  for (size_t i = 0; i < fx->n_ua; i++)
    for (struct scsi_lu_nexus *e = lu->nexuses; e; e = e->next)
      if (pr_id_equal(&e->nx->id, &fx->ua[i].id)) {
        ua_add(e, fx->ua[i].asc);
        if (fx->ua[i].abort)
          atomic_fetch_add(&e->epoch, 1);
      }
  atomic_store(&lu->pr_active, lu->pr.n_regs || lu->pr.reserved);
  pthread_mutex_unlock(&lu->lock);
  free(fx);
  switch (r.rc) {
  case PR_OK:
    break;
  case PR_CONFLICT:
    t->status = SCSI_STATUS_RESERVATION_CONFLICT;
    break;
  case PR_BAD_CDB:
    scsi_sense_field(t, r.bad_byte, r.bad_bit);
    break;
  case PR_BAD_PARAM:
    scsi_sense_param(t, r.bad_byte, r.bad_bit);
    break;
  case PR_BAD_LENGTH:
    scsi_sense(t, SCSI_SENSE_ILLEGAL_REQUEST, ASC_PARAM_LIST_LENGTH_ERROR);
    break;
  case PR_BAD_RELEASE:
    scsi_sense(t, SCSI_SENSE_ILLEGAL_REQUEST, ASC_INVALID_RELEASE_PR);
    break;
  case PR_NO_SPACE:
    scsi_sense(t, SCSI_SENSE_ILLEGAL_REQUEST, ASC_INSUFFICIENT_REG_RES);
    break;
  }
}

/* ---- MODE SELECT(6/10) ---- */

int lu_parse_mode_select(struct scsi_task *t)
{
  const uint8_t *c = t->cdb;
  if (c[1] & 0x01) { /* SP: we keep no saved pages */
    scsi_sense(t, SCSI_SENSE_ILLEGAL_REQUEST, ASC_SAVING_PARAMS_UNSUPPORTED);
    return -1;
  }
  t->spdtl = c[0] == 0x55 ? get16(c + 7) : c[4];
  t->dir = t->spdtl ? SCSI_DIR_OUT : SCSI_DIR_NONE;
  return 0;
}

/* Check (apply false) or apply the pages of a MODE SELECT parameter list
 * from off on; 0, or -1 with the sense set.  *changed: a value changed. */
static int mode_pages(struct scsi_task *t, const uint8_t *d, uint32_t len, uint32_t off,
                      bool apply, bool *changed)
{
  struct lg_storage *so = t->lun->so;
  struct scsi_lu *lu = atomic_load(&so->lu);
  while (off < len) {
    if (len - off < 2) {
      scsi_sense(t, SCSI_SENSE_ILLEGAL_REQUEST, ASC_PARAM_LIST_LENGTH_ERROR);
      return -1;
    }
    uint8_t code = d[off] & 0x3f, cur[64], mask[64];
    if (d[off] & 0x40) { /* SPF: we have no subpages */
      scsi_sense_param(t, off, 6);
      return -1;
    }
    size_t n = spc_mode_page(so, cur, code, 0);
    if (!n) {
      scsi_sense_param(t, off, 5);
      return -1;
    }
    if ((uint32_t)d[off + 1] + 2 != n) {
      scsi_sense_param(t, off + 1, -1);
      return -1;
    }
    if (len - off < n) {
      scsi_sense(t, SCSI_SENSE_ILLEGAL_REQUEST, ASC_PARAM_LIST_LENGTH_ERROR);
      return -1;
    }
    spc_mode_page(so, mask, code, 1);
    for (size_t i = 2; i < n; i++) {
      uint8_t bad = (uint8_t)((d[off + i] ^ cur[i]) & ~mask[i]);
      if (bad) {
        scsi_sense_param(t, off + (unsigned)i, 31 - __builtin_clz((unsigned)bad));
        return -1;
      }
    }
    if (apply) {
      if (code == 0x08) {
        bool wce = d[off + 2] & 0x04;
        *changed |= atomic_exchange(&lu->wce, wce) != wce;
      } else if (code == 0x0a) {
        bool swp = d[off + 4] & 0x08;
        *changed |= atomic_exchange(&lu->swp, swp) != swp;
      }
    }
    off += (uint32_t)n;
  }
  return 0;
}

void lu_mode_select(struct scsi_task *t)
{
  const uint8_t *d = t->buf;
  uint32_t len = t->spdtl < t->bufcap ? t->spdtl : t->bufcap;
  bool ten = t->cdb[0] == 0x55;
  uint32_t hdr = ten ? 8 : 4;
  struct lg_storage *so = t->lun->so;
  struct scsi_lu *lu = scsi_lu_get(so);
  if (!lu) {
    scsi_sense_errno(t, -ENOMEM, false);
    return;
  }
  if (len == 0)
    return;
  if (len < hdr) {
    scsi_sense(t, SCSI_SENSE_ILLEGAL_REQUEST, ASC_PARAM_LIST_LENGTH_ERROR);
    return;
  }
  if (ten ? get16(d) : d[0]) { /* MODE DATA LENGTH is reserved in MODE SELECT */
    scsi_sense_param(t, 0, -1);
    return;
  }
  bool longlba = ten && (d[4] & 0x01);
  uint32_t bdl = ten ? get16(d + 6) : d[3], dlen = longlba ? 16 : 8;
  if (bdl % dlen) {
    scsi_sense_param(t, ten ? 7 : 3, -1);
    return;
  }
  if (hdr + bdl > len) {
    scsi_sense(t, SCSI_SENSE_ILLEGAL_REQUEST, ASC_PARAM_LIST_LENGTH_ERROR);
    return;
  }
  /* block descriptors may only restate the medium as it is */
  uint64_t blocks = so->size / so->block_size;
  for (uint32_t off = hdr; off < hdr + bdl; off += dlen) {
    uint64_t nb = longlba ? get64(d + off) : get32(d + off);
    uint32_t bl = longlba ? get32(d + off + 12) : get24(d + off + 5);
    if (nb != 0 && nb != blocks && !(!longlba && blocks > 0xffffffffu && nb == 0xffffffffu)) {
      scsi_sense_param(t, off, -1);
      return;
    }
    if (bl != so->block_size) {
      scsi_sense_param(t, off + (longlba ? 12 : 5), -1);
      return;
    }
  }
  bool changed = false;
  pthread_mutex_lock(&lu->lock); /* one MODE SELECT at a time; UAs under the lock */
  if (mode_pages(t, d, len, hdr + bdl, false, &changed) == 0) {
    mode_pages(t, d, len, hdr + bdl, true, &changed);
    if (changed) /* SPC-4 5.14: the other nexuses learn of it */
      ua_others(lu, t->nexus, UA_MODE_PARAMS_CHANGED);
  }
  pthread_mutex_unlock(&lu->lock);
}
