/* iSCSI connection: the PDU receive state machine and the transmit side.
 *
 * Receive: iscsi_rx_feed() takes bytes as they come and walks
 * BHS -> AHS -> header digest -> data (+padding) -> data digest, handling any
 * partial read.  When a header is complete, the full-feature code decides where
 * the data goes (a task's buffer at the right offset, scratch, or nowhere), so
 * large data segments are received straight into the buffer the backstore
 * writes from.  The socket loop recv()s directly into that destination when a
 * large part of it is still missing.
 *
 * Transmit: iscsi_tx_add() lays out BHS, digests, data and padding as iovecs
 * and iscsi_tx_locked() writes them with sendmsg(); payload is never copied.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "iscsi/iscsi.h"
#include "util/log.h"

#define RX_BUF 16384
#define RX_DIRECT_MIN 2048           /* recv straight into the destination above this */
#define LOGIN_TIMEOUT_SEC 30

static void set_recv_timeout(int fd, int sec)
{
  struct timeval tv = { .tv_sec = sec };
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
}

struct iscsi_conn *iscsi_conn_new(int fd, struct lg_model *model)
{
  struct iscsi_conn *c = calloc(1, sizeof *c);
  if (!c)
    return NULL;
  c->login = calloc(1, sizeof *c->login);
  if (!c->login) {
    free(c);
    return NULL;
  }
  c->fd = fd;
  c->accepted = time(NULL);
  c->model = model;
  lg_model_ref(model);
  c->phase = PHASE_LOGIN;
  pthread_mutex_init(&c->task_lock, NULL);
  pthread_cond_init(&c->task_cond, NULL);
  pthread_mutex_init(&c->send_mu, NULL);
  pthread_cond_init(&c->send_cv, NULL);
  lg_params_default(&c->offer);
  iscsi_params_init(&c->params, &c->offer);

  struct sockaddr_storage peer;
  socklen_t plen = sizeof peer;
  char host[48] = "?";
  unsigned port = 0;
  if (getpeername(fd, (struct sockaddr *)&peer, &plen) == 0) {
    if (peer.ss_family == AF_INET) {
      struct sockaddr_in *a = (struct sockaddr_in *)&peer;
      inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
      port = ntohs(a->sin_port);
    } else if (peer.ss_family == AF_INET6) {
      struct sockaddr_in6 *a = (struct sockaddr_in6 *)&peer;
      inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
      port = ntohs(a->sin6_port);
    }
  }
  snprintf(c->peer, sizeof c->peer, peer.ss_family == AF_INET6 ? "[%s]:%u" : "%s:%u",
           host, port);
  snprintf(c->peer_ip, sizeof c->peer_ip, "%s", host);
  c->local_len = sizeof c->local;
  getsockname(fd, (struct sockaddr *)&c->local, &c->local_len);

  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
  struct timeval stv = { .tv_sec = 60 }; /* a peer that stops reading is dropped */
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &stv, sizeof stv);
  set_recv_timeout(fd, LOGIN_TIMEOUT_SEC);
  return c;
}

void iscsi_conn_free(struct iscsi_conn *c)
{
  for (unsigned i = 0; i < c->n_tasks_alloc; i++) {
    free(c->tasks[i]->scsi.buf);
    free(c->tasks[i]);
  }
  if (c->sess)
    iscsi_session_free(c->sess);
  iscsi_login_free(c);
  iscsi_text_free(&c->text_pending);
  free(c->scratch);
  lg_model_unref(c->model);
  pthread_mutex_destroy(&c->task_lock);
  pthread_cond_destroy(&c->task_cond);
  pthread_mutex_destroy(&c->send_mu);
  pthread_cond_destroy(&c->send_cv);
  close(c->fd);
  free(c);
}

void iscsi_conn_shutdown(struct iscsi_conn *c)
{
  shutdown(c->fd, SHUT_RDWR);
}

/* ---- transmit ---- */

void iscsi_fill_sn(struct iscsi_conn *c, uint8_t *bhs, enum iscsi_sn_mode mode)
{
  uint32_t exp = atomic_load(&c->exp_cmdsn);
  unsigned active = atomic_load(&c->active);
  uint32_t window = active < ISCSI_QUEUE_DEPTH ? ISCSI_QUEUE_DEPTH - active : 0;
  uint32_t max = exp - 1 + window;
  if (sn_lt(c->max_cmdsn, max))
    c->max_cmdsn = max;
  if (mode != SN_NONE)
    bhs_put32(bhs, BHS_STATSN, c->statsn);
  if (mode == SN_STAT)
    c->statsn++;
  bhs_put32(bhs, BHS_EXPCMDSN, exp);
  bhs_put32(bhs, BHS_MAXCMDSN, c->max_cmdsn);
}

static const uint8_t zero_pad[4];

int iscsi_tx_add(struct iscsi_conn *c, struct iovec *iov, int n, unsigned slot,
                 uint8_t *bhs, const void *data, uint32_t len)
{
  bhs_set_data_len(bhs, len);
  iov[n++] = (struct iovec){ bhs, ISCSI_BHS_LEN };
  if (c->params.header_digest) {
    c->tx_hdig[slot] = iscsi_crc32c_final(iscsi_crc32c(bhs, ISCSI_BHS_LEN, ISCSI_CRC32C_INIT));
    iov[n++] = (struct iovec){ &c->tx_hdig[slot], 4 };
  }
  if (len) {
    uint32_t pad = (4 - (len & 3)) & 3;
    iov[n++] = (struct iovec){ (void *)data, len };
    if (pad)
      iov[n++] = (struct iovec){ (void *)zero_pad, pad };
    if (c->params.data_digest) {
      uint32_t crc = iscsi_crc32c(data, len, ISCSI_CRC32C_INIT);
      if (pad)
        crc = iscsi_crc32c(zero_pad, pad, crc);
      c->tx_ddig[slot] = iscsi_crc32c_final(crc);
      iov[n++] = (struct iovec){ &c->tx_ddig[slot], 4 };
    }
  }
  return n;
}

/* Send the rest of a handed-off answer; called with send_mu held, and
 * returns with it held and the lock this thread's. */
static void send_rest(struct iscsi_conn *c)
{
  struct iscsi_task *t = c->rest_task;
  c->rest_task = NULL;
  pthread_mutex_unlock(&c->send_mu);
  iscsi_tx_locked(c, c->tx_rest, c->tx_rest_n);
  pthread_mutex_lock(&c->send_mu);
  t->send_rest = false;
  pthread_cond_broadcast(&c->send_cv);
}

void iscsi_send_lock(struct iscsi_conn *c)
{
  pthread_mutex_lock(&c->send_mu);
  while (c->send_held && !c->rest_task)
    pthread_cond_wait(&c->send_cv, &c->send_mu);
  if (c->rest_task)
    send_rest(c);
  c->send_held = true;
  pthread_mutex_unlock(&c->send_mu);
}

bool iscsi_send_trylock(struct iscsi_conn *c)
{
  pthread_mutex_lock(&c->send_mu);
  bool got = !c->send_held;
  if (got)
    c->send_held = true;
  pthread_mutex_unlock(&c->send_mu);
  return got;
}

/* Let go of the lock, once the answers queued meanwhile are sent; with
 * send_mu held, and returns with it let go. */
static void unlock_mu_held(struct iscsi_conn *c)
{
  for (;;) {
    struct iscsi_task *t = c->answers;
    if (!t) {
      c->send_held = false;
      pthread_cond_broadcast(&c->send_cv);
      pthread_mutex_unlock(&c->send_mu);
      return;
    }
    c->answers = t->next;
    if (!c->answers)
      c->answers_tail = NULL;
    pthread_mutex_unlock(&c->send_mu);
    if (!iscsi_answer_locked(t))
      return; /* the lock went with an unfinished answer */
    pthread_mutex_lock(&c->send_mu);
  }
}

void iscsi_send_unlock(struct iscsi_conn *c)
{
  pthread_mutex_lock(&c->send_mu);
  unlock_mu_held(c);
}

bool iscsi_send_lock_or_queue(struct iscsi_conn *c, struct iscsi_task *t)
{
  pthread_mutex_lock(&c->send_mu);
  bool got = !c->send_held;
  if (got) {
    c->send_held = true;
  } else {
    t->next = NULL;
    if (c->answers_tail)
      c->answers_tail->next = t;
    else
      c->answers = t;
    c->answers_tail = t;
  }
  pthread_mutex_unlock(&c->send_mu);
  return got;
}

void iscsi_send_handoff(struct iscsi_conn *c, struct iscsi_task *t, const struct iovec *iov,
                        int n)
{
  memcpy(c->tx_rest, iov, (size_t)n * sizeof *iov);
  c->tx_rest_n = n;
  pthread_mutex_lock(&c->send_mu);
  t->send_rest = true;
  c->rest_task = t;
  pthread_cond_broadcast(&c->send_cv);
  pthread_mutex_unlock(&c->send_mu);
}

void iscsi_send_finish(struct iscsi_conn *c, struct iscsi_task *t)
{
  pthread_mutex_lock(&c->send_mu);
  if (c->rest_task == t) {
    send_rest(c);
    unlock_mu_held(c);
    return;
  }
  while (t->send_rest)
    pthread_cond_wait(&c->send_cv, &c->send_mu);
  pthread_mutex_unlock(&c->send_mu);
}

/* sendmsg until *np iovecs are sent, or with MSG_DONTWAIT until the socket
 * is full (1: *iovp and *np say what is left). */
static int tx(struct iscsi_conn *c, struct iovec **iovp, int *np, int flags)
{
  struct iovec *iov = *iovp;
  int n = *np, ret = 0;
  if (c->send_failed)
    return -1;
  while (n > 0) {
    struct msghdr mh = { .msg_iov = iov, .msg_iovlen = (size_t)n };
    ssize_t r = sendmsg(c->fd, &mh, MSG_NOSIGNAL | flags);
    if (r < 0) {
      if (errno == EINTR)
        continue;
      if ((flags & MSG_DONTWAIT) && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        ret = 1;
        break;
      }
      lg_kv(LG_INFO, "send failed; closing the connection", "peer=%s err=%s", c->peer,
            LG_Q(strerror(errno)));
      iscsi_conn_fail(c);
      return -1;
    }
    while (n > 0 && (size_t)r >= iov->iov_len) {
      r -= (ssize_t)iov->iov_len;
      iov++;
      n--;
    }
    if (n > 0) {
      iov->iov_base = (char *)iov->iov_base + r;
      iov->iov_len -= (size_t)r;
    }
  }
  *iovp = iov;
  *np = n;
  return ret;
}

void iscsi_conn_fail(struct iscsi_conn *c)
{
  c->send_failed = true;
  iscsi_conn_shutdown(c);
}

int iscsi_tx_locked(struct iscsi_conn *c, struct iovec *iov, int n)
{
  return tx(c, &iov, &n, 0);
}

int iscsi_tx_nowait(struct iscsi_conn *c, struct iovec **iov, int *n)
{
  return tx(c, iov, n, MSG_DONTWAIT);
}

int iscsi_send(struct iscsi_conn *c, uint8_t *bhs, const void *data, uint32_t len,
               enum iscsi_sn_mode mode)
{
  struct iovec iov[5];
  iscsi_send_lock(c);
  iscsi_fill_sn(c, bhs, mode);
  int n = iscsi_tx_add(c, iov, 0, 0, bhs, data, len);
  int r = iscsi_tx_locked(c, iov, n);
  iscsi_send_unlock(c);
  return r;
}

int iscsi_send_reject(struct iscsi_conn *c, uint8_t reason, const uint8_t *bhs)
{
  uint8_t rsp[ISCSI_BHS_LEN] = { ISCSI_OP_REJECT, ISCSI_FLAG_FINAL, reason };
  uint8_t copy[ISCSI_BHS_LEN];
  memcpy(copy, bhs, sizeof copy);
  bhs_put32(rsp, BHS_ITT, ISCSI_RSVD_TAG);
  lg_kv(LG_DEBUG, "reject", "peer=%s opcode=0x%02x reason=0x%02x", c->peer, bhs_opcode(bhs),
        reason);
  return iscsi_send(c, rsp, copy, sizeof copy, SN_STAT);
}

/* ---- receive ---- */

/* Ensure the scratch buffer holds n bytes (login/text/NOP data). */
static uint8_t *scratch_get(struct iscsi_conn *c, uint32_t n)
{
  if (c->scratch_len < n) {
    uint8_t *p = realloc(c->scratch, n);
    if (!p)
      return NULL;
    c->scratch = p;
    c->scratch_len = n;
  }
  return c->scratch;
}

/* A header is complete: check lengths and choose the data destination. */
static int rx_header_done(struct iscsi_conn *c)
{
  struct iscsi_rx *rx = &c->rx;
  rx->dest = NULL;
  rx->dest_len = 0;
  rx->task = NULL;
  rx->crc = ISCSI_CRC32C_INIT;
  if (c->phase == PHASE_LOGIN) {
    if (bhs_opcode(rx->bhs) != ISCSI_OP_LOGIN_REQ) {
      lg_kv(LG_WARN, "login refused", "peer=%s reason=\"opcode 0x%02x before login "
            "completed\"", c->peer, bhs_opcode(rx->bhs));
      return -1;
    }
    if (rx->data_len > ISCSI_LOGIN_TEXT_MAX) {
      lg_kv(LG_WARN, "login refused", "peer=%s reason=\"login data segment of %u bytes is "
            "too large\"", c->peer, rx->data_len);
      return -1;
    }
    rx->dest = scratch_get(c, rx->data_len + 1);
    if (!rx->dest && rx->data_len)
      return -1;
    rx->dest_len = rx->data_len;
    return 0;
  }
  return iscsi_ffp_header(c);
}

static int rx_pdu_done(struct iscsi_conn *c)
{
  if (c->phase == PHASE_LOGIN)
    return iscsi_login_pdu(c, c->rx.dest, c->rx.data_len);
  return iscsi_ffp_pdu(c);
}

/* Move to the state after the current one and run completion handlers. */
static int rx_next(struct iscsi_conn *c)
{
  struct iscsi_rx *rx = &c->rx;
  bool digests = c->phase != PHASE_LOGIN;
  rx->got = 0;
  switch (rx->state) {
  case RX_BHS:
    rx->ahs_len = bhs_ahs_len(rx->bhs);
    rx->data_len = bhs_data_len(rx->bhs);
    rx->data_total = (rx->data_len + 3) & ~3u;
    if (rx->ahs_len) {
      rx->state = RX_AHS;
      return 0;
    }
    /* fall through */
  case RX_AHS:
    if (digests && c->params.header_digest) {
      rx->state = RX_HEADER_DIGEST;
      return 0;
    }
    /* fall through */
  case RX_HEADER_DIGEST:
    if (rx->state == RX_HEADER_DIGEST) {
      uint32_t crc = iscsi_crc32c(rx->bhs, ISCSI_BHS_LEN, ISCSI_CRC32C_INIT);
      crc = iscsi_crc32c_final(iscsi_crc32c(rx->ahs, rx->ahs_len, crc));
      uint32_t got;
      memcpy(&got, rx->digest, 4);
      if (got != crc) {
        lg_kv(LG_WARN, "header digest error; closing (ErrorRecoveryLevel 0)", "peer=%s",
              c->peer);
        return -1;
      }
    }
    if (rx_header_done(c) < 0)
      return -1;
    if (rx->data_total) {
      rx->state = RX_DATA;
      return 0;
    }
    /* fall through */
  case RX_DATA:
    if (rx->data_total && digests && c->params.data_digest) {
      rx->state = RX_DATA_DIGEST;
      return 0;
    }
    /* fall through */
  case RX_DATA_DIGEST:
    if (rx->state == RX_DATA_DIGEST) {
      uint32_t got, want = iscsi_crc32c_final(rx->crc);
      memcpy(&got, rx->digest, 4);
      if (got != want) {
        lg_kv(LG_WARN, "data digest error; closing (ErrorRecoveryLevel 0)", "peer=%s", c->peer);
        return -1;
      }
    }
    rx->state = RX_BHS;
    return rx_pdu_done(c);
  }
  return -1;
}

/* Account n data bytes that are already at their destination (or discarded). */
static void rx_data_account(struct iscsi_rx *rx, const uint8_t *src, uint32_t n, bool digest)
{
  if (digest)
    rx->crc = iscsi_crc32c(src, n, rx->crc);
  rx->got += n;
}

int iscsi_rx_feed(struct iscsi_conn *c, const uint8_t *p, size_t n)
{
  struct iscsi_rx *rx = &c->rx;
  bool ddig = c->phase != PHASE_LOGIN && c->params.data_digest;
  while (n > 0) {
    uint8_t *dst;
    uint32_t need;
    switch (rx->state) {
    case RX_BHS: dst = rx->bhs + rx->got; need = ISCSI_BHS_LEN - rx->got; break;
    case RX_AHS: dst = rx->ahs + rx->got; need = rx->ahs_len - rx->got; break;
    case RX_HEADER_DIGEST:
    case RX_DATA_DIGEST: dst = rx->digest + rx->got; need = 4 - rx->got; break;
    case RX_DATA:
      need = rx->data_total - rx->got;
      if (rx->got < rx->dest_len) {
        need = rx->dest_len - rx->got;
        dst = rx->dest + rx->got;
      } else {
        dst = NULL; /* discarded, or padding */
        if (rx->got < rx->data_len)
          need = rx->data_len - rx->got;
      }
      {
        uint32_t k = n < need ? (uint32_t)n : need;
        if (dst)
          memcpy(dst, p, k);
        rx_data_account(rx, p, k, ddig);
        p += k;
        n -= k;
        rx->more = n > 0;
        if (rx->got == rx->data_total && rx_next(c) < 0)
          return -1;
      }
      continue;
    default:
      return -1;
    }
    uint32_t k = n < need ? (uint32_t)n : need;
    memcpy(dst, p, k);
    rx->got += k;
    p += k;
    n -= k;
    rx->more = n > 0;
    if (k == need && rx_next(c) < 0)
      return -1;
  }
  return 0;
}

/* Where the socket may receive directly: the missing part of the destination. */
static bool rx_direct(struct iscsi_conn *c, uint8_t **ptr, size_t *len)
{
  struct iscsi_rx *rx = &c->rx;
  if (rx->state != RX_DATA || rx->got >= rx->dest_len)
    return false;
  *ptr = rx->dest + rx->got;
  *len = rx->dest_len - rx->got;
  return *len >= RX_DIRECT_MIN;
}

static int rx_direct_done(struct iscsi_conn *c, uint8_t *ptr, size_t n)
{
  struct iscsi_rx *rx = &c->rx;
  rx->more = false;
  rx_data_account(rx, ptr, (uint32_t)n, c->params.data_digest);
  if (rx->got == rx->data_total)
    return rx_next(c);
  return 0;
}

/* ---- NOP-In pings ----
 * With the TPG's nopin_timeout set, the receive timeout is the idle time
 * before a ping; once one is out, the time left for its answer
 * (nopin_response_timeout), however much else arrives meanwhile. */

static void rcv_timeout(struct iscsi_conn *c, int sec)
{
  if (sec != c->rcv_timeout) {
    set_recv_timeout(c->fd, sec);
    c->rcv_timeout = sec;
  }
}

/* Seconds until the ping's deadline, rounded up; <= 0 once it passed. */
static int ping_left(const struct iscsi_conn *c)
{
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  time_t s = c->ping_deadline.tv_sec - now.tv_sec;
  long ns = c->ping_deadline.tv_nsec - now.tv_nsec;
  if (ns > 0)
    s++;
  return s < 0 ? 0 : (int)s;
}

/* Login done: take the TPG's ping settings. */
static void ping_start(struct iscsi_conn *c)
{
  const struct lg_tpg *tpg = c->sess && !c->sess->discovery ? c->sess->tpg : NULL;
  c->nopin_idle = tpg ? tpg->nopin_timeout : 0;
  c->nopin_wait = tpg ? tpg->nopin_response_timeout : 0;
  c->rcv_timeout = LOGIN_TIMEOUT_SEC;
  rcv_timeout(c, (int)c->nopin_idle);
}

/* After input: keep the timeout in step with the ping state; -1 to close. */
static int ping_update(struct iscsi_conn *c)
{
  if (!c->ping_out) {
    rcv_timeout(c, (int)c->nopin_idle);
    return 0;
  }
  int left = ping_left(c);
  if (left <= 0) {
    lg_kv(LG_WARN, "the initiator did not answer a NOP-In ping (nopin_response_timeout); "
          "closing the connection", "initiator=%s peer=%s wait_s=%u", c->sess->initiator_log, c->peer,
          c->nopin_wait);
    return -1;
  }
  rcv_timeout(c, left);
  return 0;
}

/* The receive timeout expired in full feature phase; -1 to close. */
static int ping_timer(struct iscsi_conn *c)
{
  if (c->ping_out)
    return ping_update(c);
  if (iscsi_send_ping(c) < 0)
    return -1;
  lg_kv(LG_DEBUG, "NOP-In ping sent", "peer=%s idle_s=%u", c->peer, c->nopin_idle);
  if (!c->nopin_wait)
    return 0; /* ping again after the next idle spell; never close for it */
  c->ping_out = true;
  clock_gettime(CLOCK_MONOTONIC, &c->ping_deadline);
  c->ping_deadline.tv_sec += c->nopin_wait;
  rcv_timeout(c, (int)c->nopin_wait);
  return 0;
}

void iscsi_conn_run(struct iscsi_conn *c)
{
  uint8_t *buf = malloc(RX_BUF);
  if (!buf)
    return;
  for (;;) {
    uint8_t *ptr;
    size_t len;
    bool direct = rx_direct(c, &ptr, &len);
    if (!direct) {
      ptr = buf;
      len = RX_BUF;
    }
    ssize_t r = recv(c->fd, ptr, len, 0);
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (c->phase == PHASE_FULL_FEATURE && !c->login) {
        if (ping_timer(c) < 0)
          break;
        continue;
      }
      lg_kv(LG_WARN, "login refused", "peer=%s reason=\"no login within %d s\"", c->peer,
            LOGIN_TIMEOUT_SEC);
      break;
    }
    if (r <= 0)
      break;
    if ((direct ? rx_direct_done(c, ptr, (size_t)r) : iscsi_rx_feed(c, ptr, (size_t)r)) < 0)
      break;
    if (c->phase == PHASE_CLOSING)
      break;
    if (c->phase == PHASE_FULL_FEATURE && c->login) {
      iscsi_login_free(c);       /* login finished: no more login timeout */
      ping_start(c);
    } else if (c->nopin_idle && ping_update(c) < 0) {
      break;
    }
  }
  free(buf);
  c->phase = PHASE_CLOSING;
  iscsi_conn_drain_tasks(c);
}
