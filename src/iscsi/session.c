/* Full feature phase: SCSI commands, Data-Out assembly with R2T, Data-In with
 * status, NOP, Logout, task management; and the registry of live sessions.
 *
 * A task goes FREE -> (DATA_WAIT while Data-Out is outstanding) -> QUEUED
 * (on a worker) -> FREE after its response is sent.  The receiving thread owns
 * every task in DATA_WAIT; a worker owns a QUEUED task.  task_lock guards the
 * free list and state changes; task_cond is signalled when a task is freed.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "iscsi/iscsi.h"
#include "util/log.h"

/* ---- session registry ---- */

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct iscsi_session *reg_head;
static uint16_t next_tsih = 1;

int iscsi_session_register(struct iscsi_session *s)
{
  if (!s->discovery) { /* the I_T nexus joins its LUs (persistent reservations, UAs) */
    struct pr_id *id = &s->nexus.id;
    snprintf(id->initiator, sizeof id->initiator, "%s", s->initiator);
    snprintf(id->target, sizeof id->target, "%s", s->target->iqn);
    memcpy(id->isid, s->isid, 6);
    id->tpgt = s->tpg->tag;
    if (scsi_nexus_attach(&s->nexus) < 0)
      return -1;
  }
  pthread_mutex_lock(&reg_lock);
  /* Reinstatement: same initiator, ISID and target replaces the old session. */
  for (struct iscsi_session *o = reg_head; o; o = o->next)
    if (!o->discovery && !s->discovery && !strcasecmp(o->target->iqn, s->target->iqn) &&
        !memcmp(o->isid, s->isid, 6) && !strcasecmp(o->initiator, s->initiator)) {
      lg_kv(LG_INFO, "session reinstatement: the old session closes", "initiator=%s peer=%s "
            "old_peer=%s old_tsih=%u", s->initiator_log, s->conn->peer, o->conn->peer, o->tsih);
      o->end_reason = "reinstated";
      iscsi_conn_shutdown(o->conn);
    }
  s->since = time(NULL);
  s->tsih = next_tsih++;
  if (next_tsih == 0)
    next_tsih = 1;
  s->next = reg_head;
  reg_head = s;
  pthread_mutex_unlock(&reg_lock);
  return 0;
}

void iscsi_session_unregister(struct iscsi_session *s)
{
  pthread_mutex_lock(&reg_lock);
  for (struct iscsi_session **pp = &reg_head; *pp; pp = &(*pp)->next)
    if (*pp == s) {
      *pp = s->next;
      break;
    }
  pthread_mutex_unlock(&reg_lock);
}

void iscsi_sessions_foreach(void (*fn)(struct iscsi_session *, void *), void *arg)
{
  pthread_mutex_lock(&reg_lock);
  for (struct iscsi_session *s = reg_head; s; s = s->next)
    fn(s, arg);
  pthread_mutex_unlock(&reg_lock);
}

/* The session lets go of what it holds: it leaves the registry, its
 * reservations and unit attentions go (I_T nexus loss) and its per-initiator
 * disks are released (the last session of a client closes its layer, and an
 * RBD clone's lock goes with it).  At a logout this comes before the Logout
 * Response: an initiator that has the response may log in at once at
 * another gateway of the cluster (a drain moved it), and must find its disk
 * free there, not still held here.  Once; the session's end skips it then. */
static void session_let_go(struct iscsi_session *s)
{
  if (s->let_go)
    return;
  s->let_go = true;
  if (s->tsih)
    iscsi_session_unregister(s);
  scsi_release_nexus(&s->nexus, s->luns, s->n_luns); /* I_T nexus loss */
  scsi_nexus_detach(&s->nexus);
  if (s->overlays_held)
    lg_overlays_release(s->luns, s->n_luns, s->target->iqn, s->initiator,
                        s->end_reason && !strcmp(s->end_reason, "logout"));
}

void iscsi_session_free(struct iscsi_session *s)
{
  session_let_go(s);
  free(s->initiator);
  free(s->initiator_log);
  free(s->alias);
  free(s->luns);
  free(s);
}

/* ---- tasks ---- */

static struct iscsi_task *task_alloc(struct iscsi_conn *c)
{
  struct iscsi_task *t = NULL;
  pthread_mutex_lock(&c->task_lock);
  if (c->free_tasks) {
    t = c->free_tasks;
    c->free_tasks = t->next;
  } else if (c->n_tasks_alloc < ISCSI_MAX_TASKS) {
    t = calloc(1, sizeof *t);
    if (t) {
      t->index = (uint16_t)c->n_tasks_alloc;
      c->tasks[c->n_tasks_alloc++] = t;
      t->conn = c;
    }
  }
  if (t) {
    t->gen++;
    t->state = TASK_DATA_WAIT;
    atomic_fetch_add(&c->active, 1);
  }
  pthread_mutex_unlock(&c->task_lock);
  if (!t)
    return NULL;
  uint8_t *buf = t->scsi.buf;
  memset(&t->scsi, 0, sizeof t->scsi);
  t->scsi.buf = buf;
  atomic_store(&t->fate, TASK_OPEN);
  t->next = NULL;
  t->received = t->xfer = t->unsol_end = t->unsol_limit = t->r2t_next = 0;
  t->r2t_outstanding = t->r2tsn = t->unsol_datasn = t->overflow = 0;
  memset(t->r2t, 0, sizeof t->r2t);
  t->failed = t->task_set_full = t->send_rest = false;
  return t;
}

static void task_free(struct iscsi_task *t)
{
  struct iscsi_conn *c = t->conn;
  if (t->cap > ISCSI_TASK_BUF_KEEP) {
    free(t->scsi.buf);
    t->scsi.buf = NULL;
    t->cap = 0;
  }
  pthread_mutex_lock(&c->task_lock);
  t->state = TASK_FREE;
  t->next = c->free_tasks;
  c->free_tasks = t;
  atomic_fetch_sub(&c->active, 1);
  pthread_cond_broadcast(&c->task_cond);
  pthread_mutex_unlock(&c->task_lock);
}

/* Make the task's buffer hold n bytes (contents need not survive). */
static int task_buf(struct iscsi_task *t, uint32_t n)
{
  if (n > t->cap) {
    free(t->scsi.buf);
    t->scsi.buf = NULL;
    t->cap = 0;
    void *p;
    if (posix_memalign(&p, 4096, n))
      return -ENOMEM;
    t->scsi.buf = p;
    t->cap = n;
  }
  t->scsi.bufcap = n;
  return 0;
}

static struct iscsi_task *task_by_ttt(struct iscsi_conn *c, uint32_t ttt, uint32_t itt)
{
  unsigned idx = ttt & 0xffff;
  if (idx >= c->n_tasks_alloc)
    return NULL;
  struct iscsi_task *t = c->tasks[idx];
  if (t->state != TASK_DATA_WAIT || t->gen != (ttt >> 16) || t->itt != itt)
    return NULL;
  return t;
}

static struct iscsi_task *task_by_itt(struct iscsi_conn *c, uint32_t itt, bool data_wait_only)
{
  for (unsigned i = 0; i < c->n_tasks_alloc; i++) {
    struct iscsi_task *t = c->tasks[i];
    if (t->state != TASK_FREE && t->itt == itt &&
        (!data_wait_only || t->state == TASK_DATA_WAIT))
      return t;
  }
  return NULL;
}

static const struct lg_lun_view *find_lun(const struct iscsi_session *s, uint64_t lun)
{
  for (size_t i = 0; i < s->n_luns; i++)
    if (s->luns[i].index == lun)
      return &s->luns[i];
  return NULL;
}

/* ---- responses ---- */

/* Residual flags and count for a finished command. */
static void residual(const struct iscsi_task *t, uint32_t sent, uint8_t *flags, uint32_t *count)
{
  uint32_t wanted = t->scsi.dir == SCSI_DIR_IN ? t->scsi.data_in_len
                                               : t->scsi.spdtl + t->overflow;
  if (t->scsi.dir == SCSI_DIR_IN && t->scsi.status != SCSI_STATUS_GOOD)
    wanted = 0;
  *flags = 0;
  *count = 0;
  if (wanted > t->edtl) {
    *flags = ISCSI_FLAG_RSP_OVERFLOW;
    *count = wanted - t->edtl;
  } else if (t->edtl > sent) {
    *flags = ISCSI_FLAG_RSP_UNDERFLOW;
    *count = t->edtl - sent;
  }
}

static int send_scsi_response(struct iscsi_task *t, uint32_t sent)
{
  struct iscsi_conn *c = t->conn;
  uint8_t bhs[ISCSI_BHS_LEN] = { ISCSI_OP_SCSI_RSP, ISCSI_FLAG_FINAL, 0x00, t->scsi.status };
  uint8_t rflags;
  uint32_t count;
  residual(t, sent, &rflags, &count);
  bhs[1] |= rflags;
  bhs_put32(bhs, BHS_ITT, t->itt);
  bhs_put32(bhs, BHS_RESIDUAL, count);
  uint8_t sense[2 + SCSI_SENSE_MAX];
  uint32_t len = 0;
  if (t->scsi.sense_len) {
    sense[0] = 0;
    sense[1] = t->scsi.sense_len;
    memcpy(sense + 2, t->scsi.sense, t->scsi.sense_len);
    len = 2u + t->scsi.sense_len;
  }
  return iscsi_send(c, bhs, sense, len, SN_STAT);
}

/* Data sent from the backstore's mapping (scsi.data_in) keeps the LU locked
 * against atomic writes until the kernel has it; rather than wait for a
 * full socket, or for another sender, with the LU locked: copy what is left
 * into the task's buffer and send from there.  iov[0..n) is moved over. */
static int data_in_to_buf(struct iscsi_task *t, struct iovec *iov, int n, uint32_t total)
{
  uintptr_t src = (uintptr_t)t->scsi.data_in;
  lg_kv(LG_DEBUG, "socket full or busy; the rest of a cached read is sent from a copy",
        "peer=%s itt=0x%08x", t->conn->peer, t->itt);
  int r = scsi_data_in_release(&t->scsi, true);
  if (r < 0) {
    lg_kv(LG_ERROR, "read failed after it was found cached; closing the connection",
          "peer=%s err=%s", t->conn->peer, LG_Q(strerror(-r)));
    iscsi_conn_fail(t->conn);
    return -1;
  }
  for (int i = 0; i < n; i++) {
    uintptr_t b = (uintptr_t)iov[i].iov_base;
    if (b >= src && b < src + total)
      iov[i].iov_base = t->scsi.buf + (b - src);
  }
  return 0;
}

/* Lay out t's next Data-In PDUs, at most max of them, from *off on (the
 * status goes in the last one: phase collapse); returns the iovec count.
 * Under the send lock. */
static int data_in_batch(struct iscsi_task *t, struct iovec *iov, unsigned max, uint32_t *off,
                         uint32_t *datasn, uint32_t total)
{
  struct iscsi_conn *c = t->conn;
  uint32_t mrdsl = c->params.max_recv_dsl_initiator;
  uint32_t burst = c->params.max_burst_length;
  uint8_t rflags;
  uint32_t count;
  residual(t, total, &rflags, &count);
  const uint8_t *src = t->scsi.data_in ? t->scsi.data_in : t->scsi.buf;
  int n = 0;
  for (unsigned k = 0; k < max && *off < total; k++) {
    uint32_t in_burst = burst - (*off % burst);
    uint32_t len = total - *off;
    if (len > mrdsl)
      len = mrdsl;
    if (len > in_burst)
      len = in_burst;
    bool last = *off + len == total;
    uint8_t *bhs = c->tx_bhs[k];
    memset(bhs, 0, ISCSI_BHS_LEN);
    bhs[0] = ISCSI_OP_DATA_IN;
    if (last || len == in_burst)
      bhs[1] |= ISCSI_FLAG_FINAL;
    if (last) {
      bhs[1] |= ISCSI_FLAG_DATA_STATUS | rflags;
      bhs[3] = t->scsi.status;
      bhs_put32(bhs, BHS_RESIDUAL, count);
    }
    bhs_put32(bhs, BHS_ITT, t->itt);
    bhs_put32(bhs, BHS_TTT, ISCSI_RSVD_TAG);
    bhs_put32(bhs, BHS_DATASN, (*datasn)++);
    bhs_put32(bhs, BHS_BUFFER_OFFSET, *off);
    iscsi_fill_sn(c, bhs, last ? SN_STAT : SN_NONE);
    n = iscsi_tx_add(c, iov, n, k, bhs, src + *off, len);
    *off += len;
  }
  return n;
}

/* Send t's Data-In PDUs. */
static int send_data_in(struct iscsi_task *t, uint32_t total)
{
  struct iscsi_conn *c = t->conn;
  struct iovec iov[ISCSI_TX_BATCH * 5];
  uint32_t off = 0, datasn = 0;
  int r = 0;

  if (!t->scsi.data_in) {
    iscsi_send_lock(c);
  } else if (!iscsi_send_trylock(c)) {
    if (data_in_to_buf(t, NULL, 0, total) < 0)
      return -1;
    iscsi_send_lock(c);
  }
  while (off < total && r == 0) {
    int n = data_in_batch(t, iov, ISCSI_TX_BATCH, &off, &datasn, total);
    struct iovec *left = iov;
    if (t->scsi.data_in && iscsi_tx_nowait(c, &left, &n) > 0)
      r = data_in_to_buf(t, left, n, total);
    if (r == 0 && n > 0)
      r = iscsi_tx_locked(c, left, n);
  }
  scsi_data_in_release(&t->scsi, false);
  iscsi_send_unlock(c);
  return r;
}

/* Bytes of Data-In t answers with (0: a status-only response). */
static uint32_t data_in_bytes(const struct iscsi_task *t)
{
  if (t->scsi.dir != SCSI_DIR_IN || t->scsi.status != SCSI_STATUS_GOOD)
    return 0;
  uint32_t sent = t->scsi.data_in_len;
  if (sent > t->scsi.bufcap)
    sent = t->scsi.bufcap;
  return sent < t->edtl ? sent : t->edtl;
}

/* The response of t may go out (true), or task management aborted it
 * (false): from here on an ABORT TASK finds no task. */
static bool task_claim_answer(struct iscsi_task *t)
{
  int open = TASK_OPEN;
  return atomic_compare_exchange_strong(&t->fate, &open, TASK_ANSWERING) || open == TASK_ANSWERING;
}

/* Task management aborts t (true), unless its response is going out already. */
static bool task_claim_abort(struct iscsi_task *t)
{
  int open = TASK_OPEN;
  return atomic_compare_exchange_strong(&t->fate, &open, TASK_ABORTED) || open == TASK_ABORTED;
}

static bool task_aborted(struct iscsi_task *t)
{
  return atomic_load(&t->fate) == TASK_ABORTED;
}

/* Count an answered command and free it. */
static void task_answered(struct iscsi_task *t, uint32_t sent, uint32_t written)
{
  struct iscsi_session *s = t->conn->sess;
  if (sent)
    atomic_fetch_add(&s->bytes_read, sent);
  if (written)
    atomic_fetch_add(&s->bytes_written, written);
  lg_stats_command(t->scsi.lun ? t->scsi.lun->stats : NULL, t->scsi.cdb[0], t->scsi.status,
                   sent, written, t->start_ns);
  scsi_data_in_release(&t->scsi, false);
  task_free(t);
}

/* Answer a finished command and free it. */
static void task_respond(struct iscsi_task *t)
{
  if (t->task_set_full) {
    t->scsi.status = SCSI_STATUS_TASK_SET_FULL;
    t->scsi.sense_len = 0;
  }
  if (!task_claim_answer(t)) {
    scsi_data_in_release(&t->scsi, false);
    task_free(t);
    return;
  }
  uint32_t sent = data_in_bytes(t);
  uint32_t taken = t->scsi.dir == SCSI_DIR_OUT && !t->failed ? t->xfer : 0;
  if (sent)
    send_data_in(t, sent);
  else
    send_scsi_response(t, taken);
  task_answered(t, sent, t->scsi.status == SCSI_STATUS_GOOD ? taken : 0);
}

void iscsi_task_run(struct iscsi_task *t)
{
  if (t->send_rest) { /* begun by a backstore's thread (task_async_done) */
    iscsi_send_finish(t->conn, t);
    task_answered(t, data_in_bytes(t), 0);
    return;
  }
  if (!t->scsi.async_done) /* else it has run already (task_async_done) */
    scsi_exec(&t->scsi);
  task_respond(t);
}

bool iscsi_answer_locked(struct iscsi_task *t)
{
  struct iscsi_conn *c = t->conn;
  if (!task_claim_answer(t)) {
    task_free(t);
    return true;
  }
  uint32_t total = data_in_bytes(t);
  struct iovec iov[ISCSI_TX_REST_PDUS * 5];
  uint32_t off = 0, datasn = 0;
  int n = data_in_batch(t, iov, ISCSI_TX_REST_PDUS, &off, &datasn, total);
  if (off < total) { /* too many PDUs: none was sent, nor StatSN taken */
    iscsi_workq_push(t);
    return true;
  }
  struct iovec *left = iov;
  if (iscsi_tx_nowait(c, &left, &n) > 0) {
    lg_kv(LG_DEBUG, "socket full; a worker sends the rest of a read's answer", "peer=%s itt=0x%08x",
          c->peer, t->itt);
    iscsi_send_handoff(c, t, left, n);
    iscsi_workq_push(t);
    return false;
  }
  task_answered(t, total, 0);
  return true;
}

/* A read started with scsi_exec_async has run, on the backstore's thread,
 * which must not wait for the initiator: answer it here if the socket takes
 * the answer at once (no worker woken: on this VM a wake-up costs about as
 * much as the copy), or leave it to whoever holds the send lock now; a
 * send the socket cannot take whole goes on in a worker
 * (iscsi_send_handoff). */
static void task_async_done(struct scsi_task *st)
{
  struct iscsi_task *t = (struct iscsi_task *)((char *)st - offsetof(struct iscsi_task, scsi));
  struct iscsi_conn *c = t->conn;
  if (!data_in_bytes(t) || task_aborted(t) || t->scsi.data_in) {
    iscsi_workq_push(t);
    return;
  }
  if (iscsi_send_lock_or_queue(c, t) && iscsi_answer_locked(t))
    iscsi_send_unlock(c);
}

/* Run a complete command on the receiving thread when it is a read the
 * page cache answers at once (no waiting for a device, so deep queues of
 * cached reads need no hand-off either; sent straight from the page cache
 * where the backstore maps it), or when it is the connection's only one and
 * nothing else has arrived behind it (one command at a time, as iPXE and
 * QD1 clients send: no hand-off to a worker and back); else on the worker
 * pool, so that a deep queue runs in parallel and a task management request
 * right behind a command still finds it.  A read the backstore can run
 * without a thread waiting on it (NBD, qcow2) is started here and answered
 * by a worker when it completes, so a deep queue of them holds no worker;
 * so are writes, flushes, UNMAP and WRITE SAME of zeroes on a backstore
 * with ->*_async (rbd), and those even when alone. */
static void task_queue(struct iscsi_task *t)
{
  struct iscsi_conn *c = t->conn;
  pthread_mutex_lock(&c->task_lock);
  t->state = TASK_QUEUED;
  bool alone = atomic_load(&c->active) == 1 && !c->rx.more;
  pthread_mutex_unlock(&c->task_lock);
  if (scsi_exec_nowait(&t->scsi))
    task_respond(t);
  else if ((!alone || t->scsi.dir != SCSI_DIR_IN) && scsi_exec_async(&t->scsi, task_async_done))
    ; /* started; a write even alone: a stalled store must not stop this
       * connection's receiving (a read alone runs here, as it always has) */
  else if (alone)
    iscsi_task_run(t);
  else
    iscsi_workq_push(t);
}

/* Solicit the next bursts of a write, as MaxOutstandingR2T allows. */
static int issue_r2ts(struct iscsi_task *t)
{
  struct iscsi_conn *c = t->conn;
  while (t->r2t_outstanding < c->params.max_outstanding_r2t && t->r2t_next < t->xfer) {
    uint32_t len = t->xfer - t->r2t_next;
    if (len > c->params.max_burst_length)
      len = c->params.max_burst_length;
    uint8_t bhs[ISCSI_BHS_LEN] = { ISCSI_OP_R2T, ISCSI_FLAG_FINAL };
    iscsi_lun_encode(bhs, t->scsi.lun_id);
    bhs_put32(bhs, BHS_ITT, t->itt);
    bhs_put32(bhs, BHS_TTT, (uint32_t)t->gen << 16 | t->index);
    bhs_put32(bhs, BHS_DATASN, t->r2tsn++);
    bhs_put32(bhs, BHS_BUFFER_OFFSET, t->r2t_next);
    bhs_put32(bhs, BHS_DESIRED_LEN, len);
    unsigned k = 0;
    while (k < ISCSI_MAX_R2T - 1 && t->r2t[k].used)
      k++;
    t->r2t[k].offset = t->r2t_next;
    t->r2t[k].len = len;
    t->r2t[k].next_datasn = 0;
    t->r2t[k].used = true;
    if (iscsi_send(c, bhs, NULL, 0, SN_PEEK) < 0)
      return -1;
    t->r2t_next += len;
    t->r2t_outstanding++;
  }
  return 0;
}

/* ---- receiving ---- */

/* CmdSN rules for PDUs that carry one; false: drop it (outside the window). */
static bool accept_cmdsn(struct iscsi_conn *c, const uint8_t *bhs)
{
  uint32_t sn = bhs_get32(bhs, BHS_CMDSN);
  uint32_t exp = atomic_load(&c->exp_cmdsn);
  atomic_store(&c->exp_statsn, bhs_get32(bhs, BHS_EXPSTATSN));
  if (bhs_immediate(bhs))
    return true;
  if (sn == exp) {
    atomic_store(&c->exp_cmdsn, exp + 1);
    return true;
  }
  /* One connection per session delivers commands in order: a CmdSN ahead of
   * ExpCmdSN would wait forever for the gap, one behind it is a duplicate. */
  lg_kv(LG_DEBUG, "CmdSN outside the window; dropped", "peer=%s cmdsn=%u expected=%u",
        c->peer, sn, exp);
  return false;
}

/* The header of a SCSI Command: decode, and place its immediate data. */
static int scsi_cmd_header(struct iscsi_conn *c)
{
  struct iscsi_rx *rx = &c->rx;
  const uint8_t *bhs = rx->bhs;
  struct iscsi_session *s = c->sess;
  if (s->discovery) {
    rx->reject = ISCSI_REJECT_PROTOCOL_ERROR;
    return 0;
  }
  /* the task counts as active before ExpCmdSN moves: a response sent in
   * between must not see the window one command wider than it is */
  struct iscsi_task *t = task_alloc(c);
  if (!accept_cmdsn(c, bhs)) {
    if (t)
      task_free(t);
    rx->drop = true;
    return 0;
  }
  if (!t) {
    rx->reject = ISCSI_REJECT_OUT_OF_RESOURCES;
    return 0;
  }
  rx->task = t;
  t->itt = bhs_itt(bhs);
  t->cmdsn = bhs_get32(bhs, BHS_CMDSN);
  t->immediate = bhs_immediate(bhs);
  t->edtl = bhs_get32(bhs, BHS_EDTL);
  t->start_ns = lg_now_ns();
  memcpy(t->scsi.cdb, bhs + BHS_CDB, 16);
  t->scsi.edtl = t->edtl;
  t->scsi.nexus = &s->nexus;
  uint64_t lun;
  t->scsi.lun = iscsi_lun_decode(bhs, &lun) ? find_lun(s, lun) : NULL;
  t->scsi.lun_id = t->scsi.lun ? lun : 0;
  if (atomic_load(&c->active) > ISCSI_QUEUE_DEPTH && !t->immediate) {
    t->task_set_full = t->failed = true;
    return 0;
  }
  if (scsi_parse(&t->scsi) < 0) {
    t->failed = true;
    return 0;
  }
  struct scsi_task *st = &t->scsi;
  if (st->dir == SCSI_DIR_OUT) {
    if (t->edtl < st->spdtl) { /* the command wants more data than the initiator sends */
      if (!scsi_write_truncatable(st)) {
        scsi_sense(st, SCSI_SENSE_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_IU);
        t->failed = true;
        return 0;
      }
      /* FCP-4's choice (a): write what comes, report the rest as overflow */
      t->overflow = st->spdtl - t->edtl;
      st->spdtl = t->edtl;
    }
    t->xfer = st->spdtl;
    if (task_buf(t, t->xfer) < 0) {
      scsi_sense_errno(st, -ENOMEM, true);
      t->failed = true;
      return 0;
    }
    rx->dest = st->buf;
    rx->dest_len = rx->data_len < t->xfer ? rx->data_len : t->xfer;
    /* unsolicited data: immediate, then Data-Out up to FirstBurstLength */
    uint32_t unsol = rx->data_len;
    if (!c->params.initial_r2t) {
      uint32_t fb = c->params.first_burst_length < t->edtl ? c->params.first_burst_length : t->edtl;
      if (fb > unsol)
        unsol = fb;
    }
    t->unsol_limit = unsol;
    t->unsol_end = unsol < t->xfer ? unsol : t->xfer;
    t->r2t_next = t->unsol_end;
  } else if (st->dir == SCSI_DIR_IN) {
    st->may_map = !c->params.data_digest; /* the digest would read the mapping */
    uint32_t n = st->spdtl < t->edtl ? st->spdtl : t->edtl;
    if (task_buf(t, n) < 0) {
      scsi_sense_errno(st, -ENOMEM, false);
      t->failed = true;
    }
  } else {
    st->bufcap = 0;
  }
  return 0;
}

static int data_out_header(struct iscsi_conn *c)
{
  struct iscsi_rx *rx = &c->rx;
  const uint8_t *bhs = rx->bhs;
  uint32_t ttt = bhs_get32(bhs, BHS_TTT), itt = bhs_itt(bhs);
  struct iscsi_task *t = ttt == ISCSI_RSVD_TAG ? task_by_itt(c, itt, true)
                                              : task_by_ttt(c, ttt, itt);
  if (!t) { /* e.g. unsolicited data of a command already answered */
    rx->drop = true;
    return 0;
  }
  uint32_t off = bhs_get32(bhs, BHS_BUFFER_OFFSET);
  uint32_t datasn = bhs_get32(bhs, BHS_DATASN), *expect = NULL;
  if (ttt == ISCSI_RSVD_TAG) {
    if (off < t->unsol_limit)
      expect = &t->unsol_datasn;
  } else {
    for (unsigned k = 0; k < ISCSI_MAX_R2T; k++)
      if (t->r2t[k].used && off - t->r2t[k].offset < t->r2t[k].len) {
        expect = &t->r2t[k].next_datasn;
        rx->r2t_slot = k;
      }
  }
  rx->task = t;
  if (!expect || datasn != *expect) {
    /* a lost or reordered Data-Out: at ErrorRecoveryLevel 0 the command fails
     * (its data is dropped) and the session goes on */
    lg_kv(LG_WARN, "Data-Out out of sequence; failing the command", "peer=%s itt=0x%08x "
          "offset=%u datasn=%u expected=%d", c->peer, itt, off, datasn,
          expect ? (int)*expect : -1);
    scsi_sense(&t->scsi, SCSI_SENSE_ABORTED_COMMAND, ASC_DATA_PHASE_ERROR);
    t->failed = true;
    return 0;
  }
  (*expect)++;
  if (off < t->xfer) {
    rx->dest = t->scsi.buf + off;
    rx->dest_len = t->xfer - off < rx->data_len ? t->xfer - off : rx->data_len;
  }
  return 0;
}

int iscsi_ffp_header(struct iscsi_conn *c)
{
  struct iscsi_rx *rx = &c->rx;
  rx->drop = false;
  rx->reject = 0;
  uint8_t op = bhs_opcode(rx->bhs);
  if (rx->data_len > c->params.max_recv_dsl_target) {
    lg_kv(LG_WARN, "data segment exceeds MaxRecvDataSegmentLength; rejected",
          "peer=%s bytes=%u limit=%u", c->peer, rx->data_len, c->params.max_recv_dsl_target);
    rx->reject = ISCSI_REJECT_PROTOCOL_ERROR;
    return 0;
  }
  switch (op) {
  case ISCSI_OP_SCSI_CMD:
    return scsi_cmd_header(c);
  case ISCSI_OP_DATA_OUT:
    return data_out_header(c);
  case ISCSI_OP_NOP_OUT:
  case ISCSI_OP_TEXT_REQ:
    rx->dest = c->scratch_len >= rx->data_len + 1 ? c->scratch : NULL;
    if (!rx->dest && rx->data_len) {
      uint8_t *p = realloc(c->scratch, rx->data_len + 1);
      if (!p)
        return -1;
      c->scratch = p;
      c->scratch_len = rx->data_len + 1;
      rx->dest = p;
    }
    rx->dest_len = rx->data_len;
    return 0;
  case ISCSI_OP_LOGOUT_REQ:
  case ISCSI_OP_TMF_REQ:
    return 0;
  case ISCSI_OP_LOGIN_REQ:
    rx->reject = ISCSI_REJECT_PROTOCOL_ERROR;
    return 0;
  default:
    rx->reject = ISCSI_REJECT_CMD_NOT_SUPPORTED;
    return 0;
  }
}

static int scsi_cmd_done(struct iscsi_conn *c)
{
  struct iscsi_task *t = c->rx.task;
  if (t->failed) {
    task_respond(t);
    return 0;
  }
  if (t->scsi.dir == SCSI_DIR_OUT) {
    t->received = c->rx.dest_len;
    if (t->received < t->xfer)
      return issue_r2ts(t);
  }
  task_queue(t);
  return 0;
}

static int data_out_done(struct iscsi_conn *c)
{
  struct iscsi_task *t = c->rx.task;
  const uint8_t *bhs = c->rx.bhs;
  if (t->failed) { /* a DataSN error: answer now; later Data-Out finds no task */
    task_respond(t);
    return 0;
  }
  t->received += c->rx.dest_len;
  if ((bhs[1] & ISCSI_FLAG_FINAL) && bhs_get32(bhs, BHS_TTT) != ISCSI_RSVD_TAG &&
      t->r2t_outstanding) {
    t->r2t[c->rx.r2t_slot].used = false;
    t->r2t_outstanding--;
  }
  if (t->received >= t->xfer) {
    task_queue(t);
    return 0;
  }
  return issue_r2ts(t);
}

int iscsi_send_ping(struct iscsi_conn *c)
{
  uint8_t bhs[ISCSI_BHS_LEN] = { ISCSI_OP_NOP_IN, ISCSI_FLAG_FINAL };
  if (++c->ping_ttt == ISCSI_RSVD_TAG)
    c->ping_ttt = 1;
  iscsi_lun_encode(bhs, 0); /* echoed in the answer */
  bhs_put32(bhs, BHS_ITT, ISCSI_RSVD_TAG);
  bhs_put32(bhs, BHS_TTT, c->ping_ttt);
  return iscsi_send(c, bhs, NULL, 0, SN_PEEK); /* StatSN does not advance */
}

int iscsi_send_logout_request(struct iscsi_conn *c, unsigned secs)
{
  uint8_t bhs[ISCSI_BHS_LEN] = { ISCSI_OP_ASYNC, ISCSI_FLAG_FINAL };
  bhs_put32(bhs, BHS_ITT, ISCSI_RSVD_TAG);
  bhs[36] = 1; /* AsyncEvent: the target requests a logout */
  bhs_put16(bhs, 42, (uint16_t)(secs > 3600 ? 3600 : secs)); /* Parameter3: within */
  return iscsi_send(c, bhs, NULL, 0, SN_STAT);
}

static int nop_out_done(struct iscsi_conn *c)
{
  const uint8_t *bhs = c->rx.bhs;
  if (bhs_itt(bhs) == ISCSI_RSVD_TAG) { /* the answer to a ping of ours */
    if (c->ping_out && bhs_get32(bhs, BHS_TTT) == c->ping_ttt) {
      c->ping_out = false;
      lg_kv(LG_DEBUG, "NOP-In ping answered", "peer=%s", c->peer);
    }
    accept_cmdsn(c, bhs);
    return 0;
  }
  if (!accept_cmdsn(c, bhs))
    return 0; /* dropped */
  uint8_t rsp[ISCSI_BHS_LEN] = { ISCSI_OP_NOP_IN, ISCSI_FLAG_FINAL };
  memcpy(rsp + BHS_LUN, bhs + BHS_LUN, 8);
  bhs_put32(rsp, BHS_ITT, bhs_itt(bhs));
  bhs_put32(rsp, BHS_TTT, ISCSI_RSVD_TAG);
  return iscsi_send(c, rsp, c->rx.dest, c->rx.data_len, SN_STAT);
}

/* Abort the tasks of the connection (all, those of one LUN, or only one) and
 * wait until each of them a worker (or a backstore) holds has ended, so that
 * the task management response follows every response of theirs; a task
 * whose response is already going out is not aborted (it answers).  False
 * when "only" was such a task: it no longer exists for task management. */
static bool abort_tasks(struct iscsi_conn *c, bool all, uint64_t lun, struct iscsi_task *only)
{
  bool only_aborted = false;
  pthread_mutex_lock(&c->task_lock);
  for (unsigned i = 0; i < c->n_tasks_alloc; i++) {
    struct iscsi_task *t = c->tasks[i];
    if (t->state == TASK_FREE || (only && t != only) ||
        (!only && !all && t->scsi.lun_id != lun))
      continue;
    t->tmf_wait = true;
    if (!task_claim_abort(t))
      continue; /* answering: its response goes out */
    only_aborted = only_aborted || t == only;
    if (t->state == TASK_DATA_WAIT) { /* never started: just drop it */
      t->tmf_wait = false;
      pthread_mutex_unlock(&c->task_lock);
      task_free(t);
      pthread_mutex_lock(&c->task_lock);
    }
  }
  /* the others end on their worker, silently or with their response (no new
   * command can take a freed slot meanwhile: this is the receiving thread) */
  for (;;) {
    bool busy = false;
    for (unsigned i = 0; i < c->n_tasks_alloc; i++)
      if (c->tasks[i]->tmf_wait && c->tasks[i]->state == TASK_QUEUED)
        busy = true;
    if (!busy)
      break;
    pthread_cond_wait(&c->task_cond, &c->task_lock);
  }
  for (unsigned i = 0; i < c->n_tasks_alloc; i++)
    c->tasks[i]->tmf_wait = false;
  pthread_mutex_unlock(&c->task_lock);
  return only_aborted;
}

/* Cold reset: close another session of the same target. */
static void close_target_session(struct iscsi_session *o, void *arg)
{
  struct iscsi_session *s = arg;
  if (o != s && !o->discovery && o->target == s->target)
    iscsi_conn_shutdown(o->conn);
}

static int tmf_done(struct iscsi_conn *c)
{
  const uint8_t *bhs = c->rx.bhs;
  struct iscsi_session *s = c->sess;
  uint8_t fn = bhs[1] & 0x7f, response = ISCSI_TMF_RSP_COMPLETE;
  if (!accept_cmdsn(c, bhs))
    return 0;
  uint64_t lun = 0;
  bool lun_ok = iscsi_lun_decode(bhs, &lun) && find_lun(s, lun);
  switch (fn) {
  case ISCSI_TMF_ABORT_TASK: {
    uint32_t rtt = bhs_get32(bhs, BHS_TTT), refcmdsn = bhs_get32(bhs, 32);
    struct iscsi_task *t = task_by_itt(c, rtt, false);
    if (t ? !abort_tasks(c, false, 0, t) : sn_lt(refcmdsn, atomic_load(&c->exp_cmdsn)))
      response = ISCSI_TMF_RSP_NO_TASK; /* received and already answered (or answering) */
    /* else not received yet: on one connection it never will be (complete) */
    break;
  }
  case ISCSI_TMF_ABORT_TASK_SET:
  case ISCSI_TMF_CLEAR_TASK_SET:
  case ISCSI_TMF_LUN_RESET:
    if (!lun_ok) {
      response = ISCSI_TMF_RSP_NO_LUN;
      break;
    }
    abort_tasks(c, false, lun, NULL);
    /* the task set is shared (TST 0): other nexuses' commands end TASK ABORTED */
    if (fn != ISCSI_TMF_ABORT_TASK_SET)
      scsi_lu_reset(find_lun(s, lun)->so,
                    fn == ISCSI_TMF_LUN_RESET ? SCSI_LU_RESET : SCSI_CLEAR_TASK_SET);
    if (fn == ISCSI_TMF_LUN_RESET)
      lg_kv(LG_INFO, "task management: LUN reset", "initiator=%s peer=%s lun=%llu",
            s->initiator_log, c->peer, (unsigned long long)lun);
    break;
  case ISCSI_TMF_TARGET_WARM_RESET:
  case ISCSI_TMF_TARGET_COLD_RESET:
    abort_tasks(c, true, 0, NULL);
    for (size_t i = 0; i < s->n_luns; i++) /* every nexus's commands, UAs, RESERVE(6/10) */
      scsi_lu_reset(s->luns[i].so, SCSI_TARGET_RESET);
    if (fn == ISCSI_TMF_TARGET_COLD_RESET) /* RFC 7143 11.5.1: every session's connections go */
      iscsi_sessions_foreach(close_target_session, s);
    lg_kv(LG_INFO, "task management: target reset", "initiator=%s peer=%s kind=%s",
          s->initiator_log, c->peer, fn == ISCSI_TMF_TARGET_COLD_RESET ? "cold" : "warm");
    break;
  case ISCSI_TMF_TASK_REASSIGN:
    response = ISCSI_TMF_RSP_REASSIGN_UNSUPPORTED;
    break;
  default:
    response = ISCSI_TMF_RSP_NOT_SUPPORTED;
  }
  uint8_t rsp[ISCSI_BHS_LEN] = { ISCSI_OP_TMF_RSP, ISCSI_FLAG_FINAL, response };
  bhs_put32(rsp, BHS_ITT, bhs_itt(bhs));
  int r = iscsi_send(c, rsp, NULL, 0, SN_STAT);
  if (fn == ISCSI_TMF_TARGET_COLD_RESET && response == ISCSI_TMF_RSP_COMPLETE)
    c->phase = PHASE_CLOSING;
  return r;
}

static int logout_done(struct iscsi_conn *c)
{
  const uint8_t *bhs = c->rx.bhs;
  accept_cmdsn(c, bhs);
  iscsi_conn_drain_tasks(c);
  uint8_t rsp[ISCSI_BHS_LEN] = { ISCSI_OP_LOGOUT_RSP, ISCSI_FLAG_FINAL, 0 };
  uint8_t reason = bhs[1] & 0x7f;
  if (reason == 2) /* remove connection for recovery: ERL 2 only */
    rsp[2] = 3;
  bhs_put32(rsp, BHS_ITT, bhs_itt(bhs));
  c->sess->end_reason = "logout"; /* the logout line is written when the session ends */
  if (rsp[2] == 0) /* the session ends (one connection each): its disks are free first */
    session_let_go(c->sess);
  iscsi_send(c, rsp, NULL, 0, SN_STAT);
  c->phase = PHASE_CLOSING;
  return 0;
}

int iscsi_ffp_pdu(struct iscsi_conn *c)
{
  struct iscsi_rx *rx = &c->rx;
  if (rx->reject) {
    if (rx->task) { /* e.g. a SCSI command whose slot was taken */
      task_free(rx->task);
      rx->task = NULL;
    }
    return iscsi_send_reject(c, rx->reject, rx->bhs);
  }
  if (rx->drop)
    return 0;
  switch (bhs_opcode(rx->bhs)) {
  case ISCSI_OP_SCSI_CMD:
    return scsi_cmd_done(c);
  case ISCSI_OP_DATA_OUT:
    return data_out_done(c);
  case ISCSI_OP_NOP_OUT:
    return nop_out_done(c);
  case ISCSI_OP_TEXT_REQ:
    if (!accept_cmdsn(c, rx->bhs))
      return 0;
    return iscsi_text_pdu(c, rx->dest, rx->data_len);
  case ISCSI_OP_TMF_REQ:
    return tmf_done(c);
  case ISCSI_OP_LOGOUT_REQ:
    return logout_done(c);
  }
  return 0;
}

void iscsi_conn_drain_tasks(struct iscsi_conn *c)
{
  pthread_mutex_lock(&c->task_lock);
  for (unsigned i = 0; i < c->n_tasks_alloc; i++) {
    struct iscsi_task *t = c->tasks[i];
    if (t->state == TASK_DATA_WAIT) {
      pthread_mutex_unlock(&c->task_lock);
      task_free(t);
      pthread_mutex_lock(&c->task_lock);
    }
  }
  while (atomic_load(&c->active) > 0)
    pthread_cond_wait(&c->task_cond, &c->task_lock);
  pthread_mutex_unlock(&c->task_lock);
}
