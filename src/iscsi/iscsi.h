/* iSCSI connection, session and task state, shared by conn.c (PDU receive and
 * transmit), login.c (login and text negotiation), session.c (full feature
 * phase: commands, R2T/Data-Out assembly, task management) and portal.c.
 *
 * Threads: one receiving thread per connection parses PDUs and assembles
 * complete commands; complete commands run on the worker pool; responses are
 * sent under the connection's send lock from whichever thread has them.
 */
#ifndef LUNGATE_ISCSI_H
#define LUNGATE_ISCSI_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>

#include "iscsi/chap.h"
#include "iscsi/keys.h"
#include "iscsi/pdu.h"
#include "scsi/scsi.h"
#include "target/model.h"

#define ISCSI_QUEUE_DEPTH 128        /* CmdSN window per session */
#define ISCSI_MAX_TASKS (ISCSI_QUEUE_DEPTH + 16) /* + immediate commands */
#define ISCSI_LOGIN_TEXT_MAX 65536   /* accumulated login/text keys */
#define ISCSI_TX_BATCH 64            /* PDUs per sendmsg */
#define ISCSI_TX_REST_PDUS 4         /* PDUs a backstore's thread sends itself */
#define ISCSI_TASK_BUF_KEEP (1u << 20) /* larger task buffers are freed after use */
#define ISCSI_LOGIN_PDUS_MAX 32      /* login requests per connection */
#define ISCSI_MAX_R2T 8              /* our MaxOutstandingR2T, at most */

struct iscsi_conn;

enum iscsi_task_state {
  TASK_FREE,
  TASK_DATA_WAIT,    /* waiting for Data-Out */
  TASK_QUEUED,       /* complete, on the worker queue or running */
};

enum iscsi_task_fate { TASK_OPEN, TASK_ABORTED, TASK_ANSWERING };

struct iscsi_task {
  struct scsi_task scsi;
  struct iscsi_conn *conn;
  struct iscsi_task *next;           /* free list / work queue link */
  enum iscsi_task_state state;
  uint16_t index;                    /* slot in conn->tasks */
  uint16_t gen;                      /* bumped per use: TTT = index | gen << 16 */
  uint32_t itt;
  uint32_t cmdsn;
  uint32_t edtl;                     /* expected data transfer length */
  uint64_t start_ns;                 /* when the command arrived (metrics) */
  bool immediate;
  /* Who won the race between task management and the response: TASK_OPEN,
   * TASK_ABORTED (the response is suppressed) or TASK_ANSWERING (its
   * response is going out: an ABORT TASK then finds no task). */
  atomic_int fate;
  bool tmf_wait;                     /* task management waits for it (task_lock) */
  /* Data-Out assembly */
  uint32_t xfer;                     /* bytes we take: min(EDTL, SPDTL) */
  uint32_t received;                 /* bytes of [0, xfer) received */
  uint32_t unsol_end;                /* unsolicited data we keep ends here */
  uint32_t unsol_limit;              /* unsolicited data the initiator sends ends here */
  uint32_t r2t_next;                 /* next offset to solicit */
  uint32_t r2t_outstanding;
  uint32_t r2tsn;
  uint32_t unsol_datasn;             /* next DataSN of the unsolicited data */
  struct {                           /* outstanding R2Ts: the bursts asked for */
    uint32_t offset, len, next_datasn;
    bool used;
  } r2t[ISCSI_MAX_R2T];
  uint32_t overflow;                 /* SPDTL - EDTL of a write cut to EDTL */
  bool failed;                       /* answered from scsi_parse: no data, no exec */
  bool send_rest;                    /* its answer is part sent: iscsi_send_handoff */
  bool task_set_full;                /* no task slot: answer TASK SET FULL */
  uint32_t cap;                      /* allocated bytes of scsi.buf */
};

/* Receive state machine (iPXE iscsi_rx style): one state per PDU part. */
enum iscsi_rx_state {
  RX_BHS,
  RX_AHS,
  RX_HEADER_DIGEST,
  RX_DATA,
  RX_DATA_DIGEST,
};

struct iscsi_rx {
  enum iscsi_rx_state state;
  uint32_t got;                      /* bytes of the current part received */
  uint8_t bhs[ISCSI_BHS_LEN];
  uint8_t ahs[1024];                 /* TotalAHSLength is at most 255 words */
  uint8_t digest[4];
  uint32_t ahs_len;
  uint32_t data_len;                 /* DataSegmentLength */
  uint32_t data_total;               /* with padding */
  uint8_t *dest;                     /* where data goes; NULL discards */
  uint32_t dest_len;                 /* bytes beyond this are discarded */
  uint32_t crc;                      /* running data digest */
  struct iscsi_task *task;           /* task the data belongs to */
  bool drop;                         /* ignore the PDU once received */
  bool more;                         /* more received bytes wait behind this PDU */
  unsigned r2t_slot;                 /* the R2T a solicited Data-Out answers */
  uint8_t reject;                    /* Reject reason to answer with, or 0 */
};

enum iscsi_conn_phase { PHASE_LOGIN, PHASE_FULL_FEATURE, PHASE_CLOSING };

struct iscsi_login {
  int stage;                         /* CSG */
  bool first_pdu_seen;
  bool security_done;
  unsigned pdus;                     /* login requests so far */
  bool auth_chosen;                  /* AuthMethod answered */
  bool use_chap;                     /* ... with CHAP */
  bool auth_done;                    /* authenticated (or None allowed) */
  struct iscsi_chap chap;
  bool tpgt_sent;
  bool mrdsl_declared;
  char text[ISCSI_LOGIN_TEXT_MAX];   /* keys of a C-continued request */
  size_t text_len;
  uint8_t isid[6];
  uint16_t tsih;
  uint16_t cid;
  uint32_t itt;
};

struct iscsi_session;

struct iscsi_conn {
  int fd;
  char peer[64];                     /* "addr:port" for logs */
  char peer_ip[48];                  /* the address alone */
  struct sockaddr_storage local;     /* for SendTargets on wildcard portals */
  socklen_t local_len;
  enum iscsi_conn_phase phase;
  atomic_bool logged_in;             /* past login: read by the accept loop */
  time_t accepted;                   /* when the connection came in */
  struct lg_model *model;
  struct iscsi_rx rx;
  struct iscsi_login *login;         /* during login only */
  struct iscsi_session *sess;

  struct iscsi_params params;        /* negotiated */
  struct lg_params offer;            /* what the TPG offers */

  /* sequence numbers */
  atomic_uint exp_cmdsn;
  uint32_t max_cmdsn;                /* under send_lock */
  uint32_t statsn;                   /* next StatSN, under send_lock */
  atomic_uint exp_statsn;

  /* tasks */
  pthread_mutex_t task_lock;
  pthread_cond_t task_cond;          /* a task finished */
  struct iscsi_task *tasks[ISCSI_MAX_TASKS];
  unsigned n_tasks_alloc;
  struct iscsi_task *free_tasks;
  atomic_uint active;                /* tasks not free */

  /* transmit: the send lock (iscsi_send_lock), under send_mu */
  pthread_mutex_t send_mu;
  pthread_cond_t send_cv;
  bool send_held;
  struct iscsi_task *rest_task;      /* the lock is held by its unfinished send */
  struct iscsi_task *answers, *answers_tail; /* iscsi_send_lock_or_queue */
  struct iovec tx_rest[ISCSI_TX_REST_PDUS * 5]; /* what is left of that send */
  int tx_rest_n;
  bool send_failed;
  uint8_t tx_bhs[ISCSI_TX_BATCH][ISCSI_BHS_LEN];
  uint32_t tx_hdig[ISCSI_TX_BATCH];
  uint32_t tx_ddig[ISCSI_TX_BATCH];

  /* scratch for non-task data segments (login, text, nop) */
  uint8_t *scratch;
  uint32_t scratch_len;

  /* NOP-In pings (the TPG's nopin_timeout), on the receiving thread */
  unsigned nopin_idle;               /* s without input before a ping; 0: none */
  unsigned nopin_wait;               /* s for the answer; 0: never close */
  int rcv_timeout;                   /* SO_RCVTIMEO now set, s */
  bool ping_out;                     /* a ping waits for its answer */
  uint32_t ping_ttt;                 /* its Target Transfer Tag */
  struct timespec ping_deadline;     /* CLOCK_MONOTONIC */

  /* pending text response continuation */
  struct iscsi_text text_pending;
  size_t text_sent;
  uint32_t text_ttt;

  struct iscsi_conn *next_conn;      /* portal.c registry */
};

/* A session (one connection each: MaxConnections=1). */
struct iscsi_session {
  struct iscsi_conn *conn;
  char *initiator;                   /* InitiatorName as sent */
  char *initiator_log;               /* the same, safe for a log line (lg_safe) */
  char *alias;
  struct lg_target *target;          /* NULL for discovery */
  struct lg_tpg *tpg;
  bool discovery;
  uint8_t isid[6];
  uint16_t tsih;
  struct lg_lun_view *luns;
  size_t n_luns;
  bool overlays_held;                /* per-initiator overlays acquired */
  bool let_go;                       /* left the registry, nexus and overlays released */
  const char *_Atomic end_reason;    /* for the log: "logout", "reinstated"; NULL: closed */
  struct scsi_nexus nexus;
  struct iscsi_session *next;        /* registry */
  time_t since;                      /* login time (registration) */
  atomic_uint_fast64_t bytes_read;   /* data sent to the initiator (Data-In) */
  atomic_uint_fast64_t bytes_written; /* data written by completed commands */
};

enum iscsi_sn_mode { SN_NONE, SN_PEEK, SN_STAT }; /* StatSN: leave, set, set+advance */

/* session.c: ask the initiator to log out within secs (Async Message,
 * AsyncEvent 1); it logs in again, through its portal.  Any thread. */
int iscsi_send_logout_request(struct iscsi_conn *c, unsigned secs);

/* conn.c */
struct iscsi_conn *iscsi_conn_new(int fd, struct lg_model *model);
void iscsi_conn_run(struct iscsi_conn *c);   /* receive loop; returns at close */
void iscsi_conn_free(struct iscsi_conn *c);
/* Feed received bytes to the state machine; -1 when the connection must close. */
int iscsi_rx_feed(struct iscsi_conn *c, const uint8_t *p, size_t n);
/* Send one PDU: bhs (48 bytes, StatSN etc. filled here when stat is true), data. */
int iscsi_send(struct iscsi_conn *c, uint8_t *bhs, const void *data, uint32_t len,
               enum iscsi_sn_mode mode);
/* Send a Reject for the PDU in c->rx.bhs. */
int iscsi_send_reject(struct iscsi_conn *c, uint8_t reason, const uint8_t *bhs);
/* Close the connection from any thread (reader sees EOF). */
void iscsi_conn_shutdown(struct iscsi_conn *c);
/* Fill StatSN/ExpCmdSN/MaxCmdSN of a target PDU; under send_lock. */
void iscsi_fill_sn(struct iscsi_conn *c, uint8_t *bhs, enum iscsi_sn_mode mode);
/* The connection's send lock, held around each whole PDU sequence. */
void iscsi_send_lock(struct iscsi_conn *c);
bool iscsi_send_trylock(struct iscsi_conn *c);
void iscsi_send_unlock(struct iscsi_conn *c);
/* Under the send lock, on a thread that must not wait: leave t's answer,
 * part sent, with iov[0..n) (at most ISCSI_TX_REST_PDUS PDUs) still to go,
 * holding the lock.  The next thread to want the lock sends that rest
 * first, so no thread waits on a worker busy waiting for the lock; the
 * worker given t calls iscsi_send_finish() before answering for it. */
void iscsi_send_handoff(struct iscsi_conn *c, struct iscsi_task *t, const struct iovec *iov,
                        int n);
/* The rest of t's answer is sent (by this thread or another), and the lock
 * let go if this thread took it. */
void iscsi_send_finish(struct iscsi_conn *c, struct iscsi_task *t);
/* For a thread that must not wait: take the send lock (true), or else queue
 * t, whose answer the lock's holder then sends before it lets go of the
 * lock (iscsi_answer_locked), so that no worker need be woken for it. */
bool iscsi_send_lock_or_queue(struct iscsi_conn *c, struct iscsi_task *t);
/* session.c: answer t, under the send lock, without waiting; false when
 * the lock went with an unfinished answer (iscsi_send_handoff). */
bool iscsi_answer_locked(struct iscsi_task *t);
/* Write iovecs fully (under send_lock); -1 and the connection is shut down on failure. */
int iscsi_tx_locked(struct iscsi_conn *c, struct iovec *iov, int n);
/* As iscsi_tx_locked, but only what the socket takes without waiting: 0 when
 * all is sent, 1 when *iov and *n were moved on to what is left. */
int iscsi_tx_nowait(struct iscsi_conn *c, struct iovec **iov, int *n);
/* Give up on the connection after a failed send: nothing more is sent. */
void iscsi_conn_fail(struct iscsi_conn *c);
/* Append one PDU (bhs, data) to iov, with padding and digests; slot indexes tx_hdig/tx_ddig. */
int iscsi_tx_add(struct iscsi_conn *c, struct iovec *iov, int n, unsigned slot,
                 uint8_t *bhs, const void *data, uint32_t len);

/* login.c */
int iscsi_login_pdu(struct iscsi_conn *c, const uint8_t *data, uint32_t len);
int iscsi_text_pdu(struct iscsi_conn *c, uint8_t *data, uint32_t len);
void iscsi_login_free(struct iscsi_conn *c);

/* session.c */
/* Decide where the data of a full-feature PDU goes (called on its header). */
int iscsi_ffp_header(struct iscsi_conn *c);
/* Handle a complete full-feature PDU. */
int iscsi_ffp_pdu(struct iscsi_conn *c);
void iscsi_task_run(struct iscsi_task *t);   /* on a worker */
void iscsi_conn_drain_tasks(struct iscsi_conn *c);
/* Send a NOP-In ping with a new Target Transfer Tag (c->ping_ttt). */
int iscsi_send_ping(struct iscsi_conn *c);
/* Registry of live sessions, for reinstatement and TSIH allocation. */
int iscsi_session_register(struct iscsi_session *s);
void iscsi_session_unregister(struct iscsi_session *s);
void iscsi_session_free(struct iscsi_session *s);
/* Visit every live session (under the registry lock). */
void iscsi_sessions_foreach(void (*fn)(struct iscsi_session *, void *), void *arg);

/* portal.c: the worker pool */
void iscsi_workq_push(struct iscsi_task *t);
int iscsi_workq_start(unsigned n);
void iscsi_workq_stop(void);

#endif
