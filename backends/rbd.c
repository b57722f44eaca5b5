/* The "rbd" backstore: an image (or a snapshot of one) in a Ceph cluster, through
 * librbd's asynchronous calls.
 *
 *   {"plugin": "rbd", "name": "golden", "pool": "rbd", "image": "freedos",
 *    "snapshot": "v1", "conf": "/etc/ceph/ceph.conf", "user": "admin",
 *    "readonly": true, "osd_op_timeout": 30, "mon_op_timeout": 30}
 *
 * Every call is one librbd aio request: reads, writes, flushes, discards and
 * write-zeroes may be started without waiting (->*_async, completed on
 * librbd's own thread; a write with FUA is followed by a flush there); the
 * synchronous calls wait for their completion.  librados' OSD and monitor timeouts bound every request, so a
 * cluster that is down or stalled fails commands with -ETIMEDOUT instead of
 * hanging them; librados reconnects by itself, and the LUN works again as soon
 * as the cluster answers.  Failures are logged with the LUN and pool/image, at
 * most one line per RBD_LOG_EVERY seconds per image, and the first success
 * after a failure says so.
 *
 * rtslib-fb's tcmu "user" plugin with tcmu-runner's rbd string
 * ("config": "rbd/POOL/IMAGE[@SNAP];osd_op_timeout=N;conf=PATH;id=USER") is
 * the same object: lg_rbd_open_user. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <rados/librados.h>
#include <rbd/librbd.h>

#include "backends/common.h"
#include "backends/rbd.h"
#include "util/log.h"

#define RBD_LOG_EVERY 5            /* seconds between two failure lines of an image */
#define RBD_DEFAULT_TIMEOUT 30     /* seconds, OSD and monitor requests */

struct rbd_bs {
  char *name;                      /* storage object, for messages */
  char *where;                     /* "pool/image[@snap]", for messages */
  rados_t cluster;
  rados_ioctx_t io;
  rbd_image_t image;
  uint64_t size;
  bool readonly;
  bool borrowed;                   /* cluster and io belong to a clone template */
  char *pool, *image_name, *snap;  /* as configured (snap may be NULL) */
  /* a client's clone with a quota: whole RBD objects the clone holds */
  char *client;                    /* the initiator, for messages */
  uint64_t quota;                  /* bytes, 0: none */
  uint64_t objsize;
  uint64_t max_objects;            /* quota / objsize */
  uint64_t nobjects;               /* objects allocated (under qlock) */
  uint8_t *objbits;                /* one bit per object: allocated */
  pthread_mutex_t qlock;
  atomic_llong quota_warned;       /* CLOCK_MONOTONIC second of the last quota line */
  /* failure log, rate-limited */
  pthread_mutex_t log_lock;
  time_t last_log;                 /* CLOCK_MONOTONIC seconds of the last failure line */
  unsigned long suppressed;        /* failures not logged since */
  atomic_bool failing;             /* the last request failed */
  char *detached;                  /* a clone that gave up its name (lg_rbd_detach):
                                    * removed when this handle closes */
  /* a client's clone: on its template's list of open clones (the FUSE view
   * shows when it last changed) */
  struct lg_rbd_clones *tmpl;
  struct rbd_bs *next_open;
  pthread_mutex_t changed_lock;
  struct timespec changed;         /* CLOCK_REALTIME of the last completed change */
};

enum rbd_op { RBD_READ, RBD_WRITE, RBD_FLUSH, RBD_DISCARD, RBD_ZERO };
static const char *const op_names[] = { "read", "write", "flush", "discard", "write-zeroes" };

static time_t mono_now(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec;
}

/* Note a request's outcome: failures logged at most once per RBD_LOG_EVERY s. */
static void note_result(struct rbd_bs *b, enum rbd_op op, uint64_t offset, uint64_t len, int r)
{
  if (r >= 0 && b->tmpl && op != RBD_READ && op != RBD_FLUSH) {
    pthread_mutex_lock(&b->changed_lock);
    clock_gettime(CLOCK_REALTIME, &b->changed);
    pthread_mutex_unlock(&b->changed_lock);
  }
  if (r >= 0) {
    if (atomic_load_explicit(&b->failing, memory_order_relaxed) &&
        atomic_exchange(&b->failing, false))
      lg_kv(LG_INFO, "rbd image answers again", "lun=%s image=%s", LG_Q(b->name),
            LG_Q(b->where));
    return;
  }
  atomic_store(&b->failing, true);
  pthread_mutex_lock(&b->log_lock);
  time_t now = mono_now();
  if (b->last_log && now - b->last_log < RBD_LOG_EVERY) {
    b->suppressed++;
    pthread_mutex_unlock(&b->log_lock);
    return;
  }
  unsigned long skipped = b->suppressed;
  b->suppressed = 0;
  b->last_log = now;
  pthread_mutex_unlock(&b->log_lock);
  lg_kv(LG_WARN, "rbd request failed",
        "lun=%s image=%s op=%s offset=%" PRIu64 " length=%" PRIu64 " error=%s "
        "not_logged=%lu",
        LG_Q(b->name), LG_Q(b->where), op_names[op], offset, len, LG_Q(strerror(-r)),
        skipped);
}

/* ---- requests ---- */

struct rbd_req {
  struct rbd_bs *b;
  enum rbd_op op;
  uint64_t offset, len;
  void *buf;
  bool then_flush;                 /* FUA: a flush once the write has completed */
  void (*done)(void *arg, int result);
  void *arg;
};

/* Start one request on completion c; -errno when librbd refused it. */
static int submit(struct rbd_bs *b, enum rbd_op op, void *buf, uint64_t len, uint64_t offset,
                  rbd_completion_t c)
{
  int r;
  switch (op) {
  case RBD_READ: r = rbd_aio_read(b->image, offset, len, buf, c); break;
  case RBD_WRITE: r = rbd_aio_write(b->image, offset, len, buf, c); break;
  case RBD_FLUSH: r = rbd_aio_flush(b->image, c); break;
  case RBD_DISCARD: r = rbd_aio_discard(b->image, offset, len, c); break;
  case RBD_ZERO: r = rbd_aio_write_zeroes(b->image, offset, len, c, 0, 0); break;
  default: r = -EINVAL; break;
  }
  return r < 0 ? r : 0;
}

/* A completed request's result: 0 or -errno (a short read is zero-filled). */
static int result_of(rbd_completion_t c, enum rbd_op op, void *buf, uint64_t len)
{
  ssize_t r = rbd_aio_get_return_value(c);
  if (r < 0)
    return (int)r;
  if (op == RBD_READ && (uint64_t)r < len)
    memset((char *)buf + r, 0, len - (uint64_t)r);
  return 0;
}

/* Run one request and wait for it. */
static int run(struct rbd_bs *b, enum rbd_op op, void *buf, uint64_t len, uint64_t offset)
{
  rbd_completion_t c;
  int r = rbd_aio_create_completion(NULL, NULL, &c);
  if (r < 0)
    return r;
  r = submit(b, op, buf, len, offset, c);
  if (r == 0) {
    rbd_aio_wait_for_complete(c);
    r = result_of(c, op, buf, len);
  }
  rbd_aio_release(c);
  note_result(b, op, offset, len, r);
  return r;
}

static int async_start(struct rbd_req *q);

/* An asynchronous request has completed (on librbd's thread): a write with
 * FUA goes on with its flush, anything else is done. */
static void async_complete(rbd_completion_t c, void *arg)
{
  struct rbd_req *q = arg;
  int r = result_of(c, q->op, q->buf, q->len);
  rbd_aio_release(c);
  note_result(q->b, q->op, q->offset, q->len, r);
  if (r == 0 && q->then_flush) {
    q->then_flush = false;
    q->op = RBD_FLUSH;
    r = async_start(q);
    if (r == 0)
      return;
    note_result(q->b, RBD_FLUSH, 0, 0, r);
  }
  void (*done)(void *, int) = q->done;
  void *darg = q->arg;
  free(q);
  done(darg, r);
}

/* Submit q with async_complete as its callback; -errno when not started. */
static int async_start(struct rbd_req *q)
{
  rbd_completion_t c;
  int r = rbd_aio_create_completion(q, async_complete, &c);
  if (r < 0)
    return r;
  r = submit(q->b, q->op, q->buf, q->len, q->offset, c);
  if (r < 0) /* not started: the callback never runs */
    rbd_aio_release(c);
  return r;
}

/* Start one request, done(arg, result) called when it (and with fua, the
 * flush after it) has completed; -errno when not started. */
static int async_op(struct rbd_bs *b, enum rbd_op op, void *buf, uint64_t len, uint64_t offset,
                    bool fua, void (*done)(void *arg, int result), void *arg)
{
  struct rbd_req *q = malloc(sizeof *q);
  if (!q)
    return -ENOMEM;
  *q = (struct rbd_req){ .b = b, .op = op, .offset = offset, .len = len, .buf = buf,
                         .then_flush = fua, .done = done, .arg = arg };
  int r = async_start(q);
  if (r < 0)
    free(q);
  return r;
}

/* ---- the backstore calls ---- */

static uint64_t rbd_bs_size(void *h) { return ((struct rbd_bs *)h)->size; }
static uint32_t rbd_bs_block_size(void *h) { (void)h; return 512; }
static bool rbd_bs_can_write(void *h) { return !((struct rbd_bs *)h)->readonly; }
static bool rbd_bs_can_flush(void *h) { (void)h; return true; }
static bool rbd_bs_can_trim(void *h) { return !((struct rbd_bs *)h)->readonly; }
static bool rbd_bs_can_zero(void *h) { return !((struct rbd_bs *)h)->readonly; }
static bool rbd_bs_can_extents(void *h) { (void)h; return true; }

static int rbd_bs_pread(void *h, void *buf, size_t count, uint64_t offset)
{
  return run(h, RBD_READ, buf, count, offset);
}

static int rbd_bs_pread_async(void *h, void *buf, size_t count, uint64_t offset,
                              void (*done)(void *arg, int result), void *arg)
{
  return async_op(h, RBD_READ, buf, count, offset, false, done, arg);
}

static int rbd_bs_flush(void *h)
{
  return run(h, RBD_FLUSH, NULL, 0, 0);
}

/* A write to [offset, offset+count) of a clone with a quota: -EDQUOT when
 * it would allocate objects past it (logged once a second, naming the
 * client); else the objects are counted as allocated from now on. */
static int quota_take(struct rbd_bs *b, uint64_t count, uint64_t offset)
{
  if (!b->objbits || count == 0)
    return 0;
  uint64_t first = offset / b->objsize, last = (offset + count - 1) / b->objsize, fresh = 0;
  pthread_mutex_lock(&b->qlock);
  for (uint64_t o = first; o <= last; o++)
    fresh += !(b->objbits[o / 8] >> (o % 8) & 1);
  bool ok = b->nobjects + fresh <= b->max_objects;
  if (ok) {
    for (uint64_t o = first; o <= last; o++)
      b->objbits[o / 8] |= (uint8_t)(1u << (o % 8));
    b->nobjects += fresh;
  }
  pthread_mutex_unlock(&b->qlock);
  if (ok)
    return 0;
  long long now = mono_now(), was = atomic_load(&b->quota_warned);
  if (now != was && atomic_compare_exchange_strong(&b->quota_warned, &was, now)) {
    char safe[LG_SAFE_MAX];
    lg_kv(LG_WARN, "overlay quota reached; write refused", "storage=%s initiator=%s "
          "quota=%" PRIu64 " image=%s", LG_Q(b->name),
          lg_safe(b->client ? b->client : "-", safe, sizeof safe), b->quota, LG_Q(b->where));
  }
  return -EDQUOT;
}

static int rbd_bs_pwrite(void *h, const void *buf, size_t count, uint64_t offset,
                         unsigned flags)
{
  struct rbd_bs *b = h;
  if (b->readonly)
    return -EROFS;
  int q = quota_take(b, count, offset);
  if (q < 0)
    return q;
  int r = run(b, RBD_WRITE, (void *)buf, count, offset);
  if (r == 0 && (flags & LG_BS_FUA))
    r = rbd_bs_flush(b);
  return r;
}

static int rbd_bs_trim(void *h, uint64_t count, uint64_t offset)
{
  struct rbd_bs *b = h;
  if (b->readonly)
    return -EROFS;
  return run(b, RBD_DISCARD, NULL, count, offset);
}

/* write-zeroes deallocates whole objects and zeroes the rest, so the range
 * reads as zeroes whether or not LG_BS_MAY_TRIM is given. */
static int rbd_bs_zero(void *h, uint64_t count, uint64_t offset, unsigned flags)
{
  struct rbd_bs *b = h;
  if (b->readonly)
    return -EROFS;
  int q = quota_take(b, count, offset); /* zeroes over a parent's data take objects */
  if (q < 0)
    return q;
  int r = run(b, RBD_ZERO, NULL, count, offset);
  if (r == 0 && (flags & LG_BS_FUA))
    r = rbd_bs_flush(b);
  return r;
}

/* The asynchronous forms: a refusal that no retry can change (read-only, the
 * quota) is an answer, given through done at once. */
static int rbd_bs_pwrite_async(void *h, const void *buf, size_t count, uint64_t offset,
                               unsigned flags, void (*done)(void *arg, int result), void *arg)
{
  struct rbd_bs *b = h;
  int r = b->readonly ? -EROFS : quota_take(b, count, offset);
  if (r < 0) {
    done(arg, r);
    return 0;
  }
  return async_op(b, RBD_WRITE, (void *)buf, count, offset, flags & LG_BS_FUA, done, arg);
}

static int rbd_bs_flush_async(void *h, void (*done)(void *arg, int result), void *arg)
{
  return async_op(h, RBD_FLUSH, NULL, 0, 0, false, done, arg);
}

static int rbd_bs_trim_async(void *h, uint64_t count, uint64_t offset,
                             void (*done)(void *arg, int result), void *arg)
{
  struct rbd_bs *b = h;
  if (b->readonly) {
    done(arg, -EROFS);
    return 0;
  }
  return async_op(b, RBD_DISCARD, NULL, count, offset, false, done, arg);
}

static int rbd_bs_zero_async(void *h, uint64_t count, uint64_t offset, unsigned flags,
                             void (*done)(void *arg, int result), void *arg)
{
  struct rbd_bs *b = h;
  int r = b->readonly ? -EROFS : quota_take(b, count, offset);
  if (r < 0) {
    done(arg, r);
    return 0;
  }
  return async_op(b, RBD_ZERO, NULL, count, offset, flags & LG_BS_FUA, done, arg);
}

/* ---- extents, from rbd_diff_iterate2 against the image's creation ---- */

struct ext_walk {
  struct lg_extent *ext;
  size_t n, max;
  uint64_t cursor, end;
  bool full;                       /* out of room: the walk was ended */
};

static int ext_add(struct ext_walk *w, uint64_t off, uint64_t len, uint32_t flags)
{
  if (len == 0)
    return 0;
  if (w->n > 0) {
    struct lg_extent *last = &w->ext[w->n - 1];
    if (last->flags == flags && last->offset + last->length == off) {
      last->length += len;
      w->cursor = off + len;
      return 0;
    }
  }
  if (w->n == w->max) {
    w->full = true;
    return -ECANCELED; /* ends rbd_diff_iterate2 */
  }
  w->ext[w->n++] = (struct lg_extent){ .offset = off, .length = len, .flags = flags };
  w->cursor = off + len;
  return 0;
}

static int ext_cb(uint64_t off, size_t len, int exists, void *arg)
{
  struct ext_walk *w = arg;
  uint64_t end = off + len;
  if (end > w->end)
    end = w->end;
  if (off < w->cursor)
    off = w->cursor;
  if (end <= off)
    return 0;
  int r = ext_add(w, w->cursor, off - w->cursor, LG_EXTENT_HOLE | LG_EXTENT_ZERO);
  if (r == 0)
    r = ext_add(w, off, end - off, exists ? 0 : LG_EXTENT_HOLE | LG_EXTENT_ZERO);
  return r;
}

static int rbd_bs_extents(void *h, uint64_t count, uint64_t offset, struct lg_extent *ext,
                          size_t *n)
{
  struct rbd_bs *b = h;
  struct ext_walk w = { .ext = ext, .max = *n, .cursor = offset, .end = offset + count };
  *n = 0;
  if (w.max == 0 || count == 0)
    return 0;
  /* include_parent: a clone reads its parent's data where it has none */
  int r = rbd_diff_iterate2(b->image, NULL, offset, count, 1, 0, ext_cb, &w);
  if (w.full)
    r = 0;
  else if (r >= 0) /* the rest has never been written */
    ext_add(&w, w.cursor, w.end - w.cursor, LG_EXTENT_HOLE | LG_EXTENT_ZERO);
  if (r < 0) {
    note_result(b, RBD_READ, offset, count, r);
    return r;
  }
  *n = w.n;
  return 0;
}

/* ---- open and close ---- */

static void clone_unlink(struct rbd_bs *b);

static void rbd_bs_close(void *h)
{
  struct rbd_bs *b = h;
  if (!b)
    return;
  if (b->tmpl)
    clone_unlink(b);
  if (b->image)
    rbd_close(b->image);
  if (b->detached && b->io) {
    int r = rbd_remove(b->io, b->detached);
    if (r < 0)
      lg_kv(LG_WARN, "rbd detached clone left", "storage=%s image=%s/%s err=%s "
            "action=\"remove it with rbd rm\"", LG_Q(b->name), b->pool, b->detached,
            LG_Q(strerror(-r)));
  }
  free(b->detached);
  if (b->io && !b->borrowed)
    rados_ioctx_destroy(b->io);
  if (b->cluster && !b->borrowed)
    rados_shutdown(b->cluster);
  pthread_mutex_destroy(&b->log_lock);
  pthread_mutex_destroy(&b->changed_lock);
  if (b->objbits)
    pthread_mutex_destroy(&b->qlock);
  free(b->objbits);
  free(b->client);
  free(b->name);
  free(b->where);
  free(b->pool);
  free(b->image_name);
  free(b->snap);
  free(b);
}

int lg_rbd_detach(void *h)
{
  struct rbd_bs *b = h;
  char id[128];
  if (!b->client || b->detached)
    return b->detached ? 0 : -EINVAL;
  int r = rbd_get_id(b->image, id, sizeof id);
  if (r < 0)
    return r;
  char *to = NULL;
  if (asprintf(&to, "lungate-detached.%s", id) < 0)
    return -ENOMEM;
  r = rbd_rename(b->io, b->image_name, to);
  if (r < 0) {
    free(to);
    return r;
  }
  b->detached = to;
  return 0;
}

static const char *str_key(const json_t *so, const char *key)
{
  const char *s = json_string_value(json_object_get(so, key));
  return s && *s ? s : NULL;
}

void *lg_rbd_open_json(const json_t *so, const struct lg_bs_open_args *args)
{
  const char *pool = str_key(so, "pool"), *image = str_key(so, "image");
  const char *snap = str_key(so, "snapshot"), *conf = str_key(so, "conf");
  const char *user = str_key(so, "user"), *ns = str_key(so, "namespace");
  const char *cluster = str_key(so, "cluster");
  uint64_t osd_timeout = RBD_DEFAULT_TIMEOUT, mon_timeout = RBD_DEFAULT_TIMEOUT;
  if (!pool)
    pool = "rbd";
  if (!image) {
    lg_set_error("storage object \"%s\": \"image\" is missing; name the RBD image "
                 "(\"pool\" defaults to \"rbd\")", args->name);
    return NULL;
  }
  if (lg_json_get_u64(so, "osd_op_timeout", &osd_timeout) < 0 || osd_timeout == 0 ||
      lg_json_get_u64(so, "mon_op_timeout", &mon_timeout) < 0 || mon_timeout == 0 ||
      osd_timeout > 86400 || mon_timeout > 86400) {
    lg_set_error("storage object \"%s\": \"osd_op_timeout\" and \"mon_op_timeout\" are "
                 "seconds, 1 to 86400", args->name);
    return NULL;
  }
  json_t *ro = json_object_get(so, "readonly");
  if (ro && !json_is_boolean(ro)) {
    lg_set_error("storage object \"%s\": \"readonly\" must be true or false", args->name);
    return NULL;
  }

  struct rbd_bs *b = calloc(1, sizeof *b);
  if (!b) {
    lg_set_error("storage object \"%s\": out of memory", args->name);
    return NULL;
  }
  pthread_mutex_init(&b->log_lock, NULL);
  pthread_mutex_init(&b->changed_lock, NULL);
  b->readonly = args->readonly || json_is_true(ro) || snap;
  b->name = strdup(args->name);
  b->pool = strdup(pool);
  b->image_name = strdup(image);
  b->snap = snap ? strdup(snap) : NULL;
  if (!b->pool || !b->image_name || (snap && !b->snap))
    goto nomem;
  if (asprintf(&b->where, "%s/%s%s%s%s%s", pool, ns ? ns : "", ns ? "/" : "", image,
               snap ? "@" : "", snap ? snap : "") < 0)
    b->where = NULL;
  if (!b->name || !b->where) {
nomem:
    lg_set_error("storage object \"%s\": out of memory", args->name);
    goto fail;
  }

  char client[256], path[4096], num[32];
  snprintf(client, sizeof client, "%s%s", user && strchr(user, '.') ? "" : "client.",
           user ? user : "admin");
  int r = rados_create2(&b->cluster, cluster ? cluster : "ceph", client, 0);
  if (r < 0) {
    b->cluster = NULL;
    lg_set_error("storage object \"%s\": cannot set up a Ceph client as %s: %s", args->name,
                 client, strerror(-r));
    goto fail;
  }
  if (conf) {
    if (lg_resolve_path(path, sizeof path, args->config_dir, conf) < 0) {
      lg_set_error("storage object \"%s\": \"conf\" path too long", args->name);
      goto fail;
    }
    r = rados_conf_read_file(b->cluster, path);
  } else {
    r = rados_conf_read_file(b->cluster, NULL); /* $CEPH_CONF, /etc/ceph/ceph.conf, ... */
    if (r == -ENOENT || r == -EINVAL)
      r = 0; /* no file at all: the environment may still name the monitors */
  }
  if (r < 0) {
    lg_set_error("storage object \"%s\": cannot read Ceph configuration %s: %s", args->name,
                 conf ? path : "(the default search path)", strerror(-r));
    goto fail;
  }
  rados_conf_parse_env(b->cluster, NULL); /* CEPH_ARGS, as the ceph tools do */
  snprintf(num, sizeof num, "%" PRIu64, osd_timeout);
  rados_conf_set(b->cluster, "rados_osd_op_timeout", num);
  snprintf(num, sizeof num, "%" PRIu64, mon_timeout);
  rados_conf_set(b->cluster, "rados_mon_op_timeout", num);
  rados_conf_set(b->cluster, "client_mount_timeout", num);
  r = rados_connect(b->cluster);
  if (r < 0) {
    lg_set_error("storage object \"%s\": cannot connect to the Ceph cluster as %s (conf %s): "
                 "%s; check the monitors' addresses and the keyring", args->name, client,
                 conf ? path : "default", strerror(-r));
    goto fail;
  }
  r = rados_ioctx_create(b->cluster, pool, &b->io);
  if (r < 0) {
    b->io = NULL;
    lg_set_error("storage object \"%s\": pool \"%s\": %s", args->name, pool,
                 r == -ENOENT ? "no such pool" : strerror(-r));
    goto fail;
  }
  if (ns)
    rados_ioctx_set_namespace(b->io, ns);
  r = b->readonly ? rbd_open_read_only(b->io, image, &b->image, snap)
                  : rbd_open(b->io, image, &b->image, NULL);
  if (r < 0) {
    b->image = NULL;
    lg_set_error("storage object \"%s\": RBD image %s: %s", args->name, b->where,
                 r == -ENOENT ? (snap ? "no such image or snapshot" : "no such image")
                              : strerror(-r));
    goto fail;
  }
  r = rbd_get_size(b->image, &b->size);
  if (r < 0 || b->size == 0 || b->size % 512) {
    lg_set_error("storage object \"%s\": RBD image %s: %s", args->name, b->where,
                 r < 0 ? strerror(-r) : "its size is not a positive multiple of 512 bytes");
    goto fail;
  }
  lg_kv(LG_INFO, "rbd image opened", "lun=%s image=%s size=%" PRIu64 " readonly=%s client=%s",
        LG_Q(b->name), LG_Q(b->where), b->size, b->readonly ? "true" : "false", client);
  return b;
fail:
  rbd_bs_close(b);
  return NULL;
}

/* ---- tcmu-runner's rbd string, for rtslib's "user" plugin ---- */

/* "rbd/POOL/[NAMESPACE/]IMAGE[@SNAP][;key=value]..." with the keys tcmu-runner
 * knows (osd_op_timeout, conf, id): the JSON of an rbd storage object, or
 * NULL with lg_set_error. */
json_t *lg_rbd_user_config(const char *config, const char *name)
{
  if (strncmp(config, "rbd/", 4) != 0)
    return NULL;
  char *s = strdup(config + 4);
  if (!s)
    return NULL;
  json_t *so = json_object();
  char *save = NULL, *spec = strtok_r(s, ";", &save);
  char *parts[3];
  int np = 0, nslash = 0;
  for (const char *p = spec; p && *p; p++)
    nslash += *p == '/';
  for (char *p = nslash <= 2 ? spec : NULL, *slash; p && np < 3; p = slash ? slash + 1 : NULL) {
    slash = strchr(p, '/');
    if (slash)
      *slash = '\0';
    parts[np++] = p;
    if (!slash)
      break;
  }
  const char *pool = np >= 2 ? parts[0] : NULL, *image = np >= 2 ? parts[np - 1] : NULL;
  if (!spec || np < 2 || !*pool || !*image || (np == 3 && !*parts[1])) {
    lg_set_error("storage object \"%s\": user (tcmu) config \"%s\": expected "
                 "\"rbd/POOL/IMAGE[@SNAPSHOT][;osd_op_timeout=N][;conf=PATH][;id=USER]\"",
                 name, config);
    goto fail;
  }
  char *at = strchr(image, '@');
  if (at) {
    *at = '\0';
    json_object_set_new(so, "snapshot", json_string(at + 1));
  }
  json_object_set_new(so, "pool", json_string(pool));
  if (np == 3)
    json_object_set_new(so, "namespace", json_string(parts[1]));
  json_object_set_new(so, "image", json_string(image));
  for (char *kv; (kv = strtok_r(NULL, ";", &save));) {
    char *eq = strchr(kv, '=');
    if (!eq || eq == kv) {
      lg_set_error("storage object \"%s\": user (tcmu) config \"%s\": option \"%s\" is not "
                   "KEY=VALUE", name, config, kv);
      goto fail;
    }
    *eq = '\0';
    const char *v = eq + 1;
    if (!strcmp(kv, "osd_op_timeout")) {
      char *end;
      errno = 0;
      unsigned long long t = strtoull(v, &end, 10);
      if (!*v || *end || errno || *v == '-') {
        lg_set_error("storage object \"%s\": osd_op_timeout=%s is not a number of seconds",
                     name, v);
        goto fail;
      }
      json_object_set_new(so, "osd_op_timeout", json_integer((json_int_t)t));
    } else if (!strcmp(kv, "conf")) {
      json_object_set_new(so, "conf", json_string(v));
    } else if (!strcmp(kv, "id")) {
      json_object_set_new(so, "user", json_string(v));
    } else {
      lg_kv(LG_WARN, "tcmu rbd option ignored", "lun=%s option=%s", LG_Q(name), LG_Q(kv));
    }
  }
  free(s);
  return so;
fail:
  free(s);
  json_decref(so);
  return NULL;
}

static void *rbd_user_open(const json_t *so, const struct lg_bs_open_args *args)
{
  const char *config = json_string_value(json_object_get(so, "config"));
  json_t *j = config ? lg_rbd_user_config(config, args->name) : NULL;
  if (!j) {
    if (config && strncmp(config, "rbd/", 4))
      lg_set_error("storage object \"%s\": config \"%s\" is not an rbd/ string", args->name,
                   config);
    return NULL;
  }
  json_t *ro = json_object_get(so, "readonly");
  if (ro)
    json_object_set(j, "readonly", ro);
  void *h = lg_rbd_open_json(j, args);
  json_decref(j);
  return h;
}

/* ---- per-client clones (a cow object with "overlay_pool") ---- */

struct lg_rbd_clones {
  struct rbd_bs *base;             /* the base: an rbd object opened at a snapshot */
  char *name;                      /* the cow storage object */
  char *pool;                      /* overlay_pool */
  char *prefix;                    /* clone names: "lungate.SO+" + the client's escaped name */
  rados_ioctx_t io;                /* in overlay_pool, on the base's connection */
  int64_t base_pool_id;
  char base_id[64];                /* the base image's id */
  uint64_t base_snap_id;
  pthread_mutex_t open_lock;
  struct rbd_bs *open_head;        /* clones open in this process (rbd_bs.next_open) */
};

/* An image name part that no name can break out of or collide through:
 * [a-z0-9.:_-] as they are (initiator names lower-cased first: RFC 3722
 * compares them so), a leading '.' and every other byte as %XX, so the
 * mapping is one to one and never yields '/', '@' or '+'.  (Initiator names
 * are at most 223 bytes, so the result fits RBD's names.) */
static void name_escape(const char *in, char *out, size_t outlen, bool fold)
{
  static const char hex[] = "0123456789abcdef";
  size_t o = 0;
  for (size_t i = 0; in[i] && o + 4 < outlen; i++) {
    unsigned char ch = (unsigned char)in[i];
    if (fold && ch >= 'A' && ch <= 'Z')
      ch = (unsigned char)(ch - 'A' + 'a');
    bool ok = (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == ':' ||
              ch == '_' || ch == '-' || (ch == '.' && i > 0);
    if (ok) {
      out[o++] = (char)ch;
    } else {
      out[o++] = '%';
      out[o++] = hex[ch >> 4];
      out[o++] = hex[ch & 15];
    }
  }
  out[o] = '\0';
}

struct lg_rbd_clones *lg_rbd_clones_open(void *base_h, const char *name, const char *pool)
{
  struct rbd_bs *b = base_h;
  if (!b->snap) {
    lg_set_error("storage object \"%s\": its base %s is not a snapshot; per-client RBD clones "
                 "need a base with \"snapshot\"", name, b->where);
    return NULL;
  }
  struct lg_rbd_clones *t = calloc(1, sizeof *t);
  char esc[512];
  if (!t)
    goto nomem;
  t->base = b;
  pthread_mutex_init(&t->open_lock, NULL);
  name_escape(name, esc, sizeof esc, false);
  if (!(t->name = strdup(name)) || !(t->pool = strdup(pool)) ||
      asprintf(&t->prefix, "lungate.%s+", esc) < 0) {
    t->prefix = NULL;
    goto nomem;
  }
  int r = rados_ioctx_create(b->cluster, pool, &t->io);
  if (r < 0) {
    t->io = NULL;
    lg_set_error("storage object \"%s\": overlay_pool \"%s\": %s", name, pool,
                 r == -ENOENT ? "no such pool" : strerror(-r));
    goto fail;
  }
  t->base_pool_id = rados_ioctx_get_id(b->io);
  rbd_snap_info_t snaps[64];
  int max = 64;
  r = rbd_get_id(b->image, t->base_id, sizeof t->base_id);
  if (r >= 0)
    r = rbd_snap_list(b->image, snaps, &max);
  if (r < 0) {
    lg_set_error("storage object \"%s\": base %s: %s", name, b->where, strerror(-r));
    goto fail;
  }
  bool found = false;
  for (int i = 0; i < r; i++)
    if (!strcmp(snaps[i].name, b->snap)) {
      t->base_snap_id = snaps[i].id;
      found = true;
    }
  rbd_snap_list_end(snaps);
  if (!found) {
    lg_set_error("storage object \"%s\": base %s: snapshot not found", name, b->where);
    goto fail;
  }
  return t;
nomem:
  lg_set_error("storage object \"%s\": out of memory", name);
fail:
  lg_rbd_clones_close(t);
  return NULL;
}

/* A clone handle closing leaves its template's list of open clones. */
static void clone_unlink(struct rbd_bs *b)
{
  pthread_mutex_lock(&b->tmpl->open_lock);
  for (struct rbd_bs **p = &b->tmpl->open_head; *p; p = &(*p)->next_open)
    if (*p == b) {
      *p = b->next_open;
      break;
    }
  pthread_mutex_unlock(&b->tmpl->open_lock);
}

void lg_rbd_clones_close(struct lg_rbd_clones *t)
{
  if (!t)
    return;
  if (t->io)
    rados_ioctx_destroy(t->io);
  pthread_mutex_destroy(&t->open_lock);
  free(t->name);
  free(t->pool);
  free(t->prefix);
  free(t);
}

int lg_rbd_clone_name(struct lg_rbd_clones *t, const char *client, char *out, size_t len)
{
  char esc[1024];
  name_escape(client, esc, sizeof esc, true);
  int n = snprintf(out, len, "%s%s", t->prefix, esc);
  return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/* The clone's parent must be the configured base snapshot, or (accept given:
 * a template with image versions) a snapshot accept takes as one of its
 * versions ("POOL/IMAGE@SNAP"). */
static int check_parent(struct lg_rbd_clones *t, rbd_image_t img, const char *where,
                        int (*accept)(void *arg, const char *parent), void *arg)
{
  rbd_linked_image_spec_t pimg;
  rbd_snap_spec_t psnap;
  int r = rbd_get_parent(img, &pimg, &psnap);
  if (r == -ENOENT) {
    lg_set_error("storage object \"%s\": RBD image %s has no parent; it is not a clone of "
                 "%s and is not used (remove or rename it)", t->name, where, t->base->where);
    return -EINVAL;
  }
  if (r < 0) {
    lg_set_error("storage object \"%s\": RBD image %s: reading its parent: %s", t->name, where,
                 strerror(-r));
    return r;
  }
  bool same;
  if (accept) {
    char spec[1200];
    snprintf(spec, sizeof spec, "%s/%s@%s", pimg.pool_name, pimg.image_name, psnap.name);
    same = accept(arg, spec) == 0;
    if (!same)
      lg_set_error("storage object \"%s\": RBD image %s is a clone of %s, which is none of "
                   "its image versions; it is not used (remove it, or publish that snapshot)",
                   t->name, where, spec);
  } else {
    same = pimg.pool_id == t->base_pool_id && !strcmp(pimg.image_id, t->base_id) &&
           psnap.id == t->base_snap_id;
    if (!same)
      lg_set_error("storage object \"%s\": RBD image %s is a clone of %s/%s@%s, not of the "
                   "configured base %s; it is not used (remove it, or configure that base)",
                   t->name, where, pimg.pool_name, pimg.image_name, psnap.name, t->base->where);
  }
  rbd_linked_image_spec_cleanup(&pimg);
  rbd_snap_spec_cleanup(&psnap);
  return same ? 0 : -EINVAL;
}

static int clone_peek(struct lg_rbd_clones *t, const char *client, rbd_image_t *img);

/* "POOL/IMAGE@SNAP" into its parts (in buf); false when malformed. */
static bool spec_split(const char *spec, char *buf, size_t len, char **pool, char **image,
                       char **snap)
{
  snprintf(buf, len, "%s", spec);
  char *slash = strchr(buf, '/'), *at = strrchr(buf, '@');
  if (!slash || !at || at < slash || slash == buf || at == slash + 1 || !at[1] ||
      strchr(slash + 1, '/'))
    return false;
  *slash = *at = '\0';
  *pool = buf;
  *image = slash + 1;
  *snap = at + 1;
  return true;
}

int lg_rbd_snap_probe(struct lg_rbd_clones *t, const char *spec, uint64_t *size, char *err,
                      size_t errlen)
{
  char buf[1200], *pool, *image, *snap;
  if (!spec_split(spec, buf, sizeof buf, &pool, &image, &snap)) {
    snprintf(err, errlen, "\"rbd:%s\": expected rbd:POOL/IMAGE@SNAPSHOT", spec);
    return -EINVAL;
  }
  rados_ioctx_t io;
  int r = rados_ioctx_create(t->base->cluster, pool, &io);
  if (r < 0) {
    snprintf(err, errlen, "rbd:%s: pool %s: %s", spec, pool, strerror(-r));
    return r;
  }
  rbd_image_t img;
  r = rbd_open_read_only(io, image, &img, snap);
  if (r == 0) {
    r = rbd_get_size(img, size);
    rbd_close(img);
  }
  rados_ioctx_destroy(io);
  if (r < 0)
    snprintf(err, errlen, "rbd:%s: %s", spec,
             r == -ENOENT ? "no such image or snapshot (make it first: rbd snap create)"
                          : strerror(-r));
  return r;
}

int lg_rbd_clone_parent(struct lg_rbd_clones *t, const char *client, char *out, size_t len)
{
  rbd_image_t img;
  int r = clone_peek(t, client, &img);
  if (r < 0)
    return r;
  rbd_linked_image_spec_t pimg;
  rbd_snap_spec_t psnap;
  r = rbd_get_parent(img, &pimg, &psnap);
  rbd_close(img);
  if (r < 0)
    return r;
  snprintf(out, len, "%s/%s@%s", pimg.pool_name, pimg.image_name, psnap.name);
  rbd_linked_image_spec_cleanup(&pimg);
  rbd_snap_spec_cleanup(&psnap);
  return 0;
}

/* Hold the clone's exclusive lock.  A lock held by a client that no longer
 * watches the image (a gateway that died: its watch has expired) is broken,
 * which blocklists the dead owner so that it can never write again; a lock
 * held by a live client is left alone: 1, with the reason set. */
static int take_lock_once(struct lg_rbd_clones *t, rbd_image_t img, const char *where,
                          bool may_break)
{
  for (int attempt = 0; attempt < 2; attempt++) {
    char *owners[4];
    size_t nowners = 4;
    rbd_lock_mode_t mode;
    int r = rbd_lock_get_owners(img, &mode, owners, &nowners);
    if (r == -ENOENT || (r >= 0 && nowners == 0)) {
      r = rbd_lock_acquire(img, RBD_LOCK_MODE_EXCLUSIVE);
      if (r == 0)
        return 0;
      if (attempt == 0 && (r == -EROFS || r == -EBUSY || r == -EAGAIN))
        continue; /* someone took it meanwhile: look again */
      lg_set_error("storage object \"%s\": cannot take the exclusive lock of RBD image %s: %s",
                   t->name, where, strerror(-r));
      return r == -EROFS ? -EBUSY : r;
    }
    if (r < 0) {
      lg_set_error("storage object \"%s\": RBD image %s: reading its lock owner: %s", t->name,
                   where, strerror(-r));
      return r;
    }
    /* the owner is a client address ("127.0.0.1:0/4181495876"); it is alive
     * while it watches the image (a killed client's watch expires) */
    rbd_image_watcher_t w[16];
    size_t nw = 16;
    r = rbd_watchers_list(img, w, &nw);
    if (r < 0) {
      rbd_lock_get_owners_cleanup(owners, nowners);
      lg_set_error("storage object \"%s\": RBD image %s: listing its watchers: %s", t->name,
                   where, strerror(-r));
      return r;
    }
    char owner[256];
    snprintf(owner, sizeof owner, "%s", owners[0]);
    rbd_lock_get_owners_cleanup(owners, nowners);
    bool alive = false;
    char who[64] = "";
    for (size_t i = 0; i < nw; i++)
      if (w[i].addr && !strcmp(w[i].addr, owner)) {
        alive = true;
        snprintf(who, sizeof who, "client.%" PRId64, w[i].id);
      }
    rbd_watchers_list_cleanup(w, nw);
    if (alive) { /* (the reason names the owner of this look: it may have changed hands) */
      lg_set_error("storage object \"%s\": RBD image %s is in use: its exclusive lock is held "
                   "by %s at %s, which is alive (another gateway serves this client)",
                   t->name, where, who, owner);
      return 1;
    }
    if (!may_break) { /* only the first look may break a lock: see take_lock */
      lg_set_error("storage object \"%s\": RBD image %s is in use: its exclusive lock is held "
                   "by %s, which was not watching the image when looked at again (not taken "
                   "over: only a login's first look may judge an owner dead; log in again, "
                   "or see `rbd status` for the image's watchers)", t->name, where, owner);
      return 1;
    }
    lg_kv(LG_WARN, "rbd lock taken over from a dead owner", "storage=%s image=%s owner=%s",
          LG_Q(t->name), LG_Q(where), LG_Q(owner));
    r = rbd_lock_break(img, RBD_LOCK_MODE_EXCLUSIVE, owner);
    if (r < 0 && r != -ENOENT) {
      lg_set_error("storage object \"%s\": RBD image %s: breaking the lock of dead owner %s: %s",
                   t->name, where, owner, strerror(-r));
      return r;
    }
  }
  lg_set_error("storage object \"%s\": RBD image %s: its lock keeps changing hands", t->name,
               where);
  return -EBUSY;
}

/* How long a login waits for a live owner to let the clone go: the client
 * has just logged out of another gateway (a drain moved it, or its home
 * gateway came back), which closes the clone after its Logout Response; on
 * a busy cluster that takes seconds (seen: 2.4 s in the hour-long soak). */
#define LOCK_WAIT_MS 8000

static int take_lock(struct lg_rbd_clones *t, rbd_image_t img, const char *where)
{
  struct timespec t0, now;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  /* Only the first look may find the owner dead and break its lock: a live
   * owner's watch can be missing for a moment (re-registered under load),
   * and looking again every 100 ms would one day take that moment for a
   * death and blocklist a live gateway (seen in CI under load). */
  for (bool first = true;; first = false) {
    int r = take_lock_once(t, img, where, first);
    if (r <= 0)
      return r;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if ((now.tv_sec - t0.tv_sec) * 1000 + (now.tv_nsec - t0.tv_nsec) / 1000000 >= LOCK_WAIT_MS)
      return -EBUSY; /* really in use: the reason says by whom */
    struct timespec pause = { 0, 100 * 1000000 };
    nanosleep(&pause, NULL);
  }
}

/* Objects a clone holds itself, into its quota bitmap. */
static int quota_cb(uint64_t off, size_t len, int exists, void *arg)
{
  struct rbd_bs *b = arg;
  if (!exists || len == 0)
    return 0;
  for (uint64_t o = off / b->objsize; o <= (off + len - 1) / b->objsize; o++)
    if (!(b->objbits[o / 8] >> (o % 8) & 1)) {
      b->objbits[o / 8] |= (uint8_t)(1u << (o % 8));
      b->nobjects++;
    }
  return 0;
}

static int quota_load(struct rbd_bs *b, uint64_t quota)
{
  rbd_image_info_t info;
  int r = rbd_stat(b->image, &info, sizeof info);
  if (r < 0)
    return r;
  b->quota = quota;
  b->objsize = info.obj_size ? info.obj_size : 4u << 20;
  b->max_objects = quota / b->objsize;
  b->objbits = calloc((b->size / b->objsize + 8) / 8 + 1, 1);
  if (!b->objbits)
    return -ENOMEM;
  pthread_mutex_init(&b->qlock, NULL);
  return rbd_diff_iterate2(b->image, NULL, 0, b->size, 0, 1, quota_cb, b);
}

void *lg_rbd_clone_open(struct lg_rbd_clones *t, const char *client, bool readonly,
                        uint64_t quota, const char *from,
                        int (*accept)(void *arg, const char *parent), void *arg)
{
  char cname[1100];
  if (lg_rbd_clone_name(t, client, cname, sizeof cname) < 0) {
    lg_set_error("storage object \"%s\": initiator name too long", t->name);
    return NULL;
  }
  struct rbd_bs *b = calloc(1, sizeof *b);
  if (!b) {
    lg_set_error("storage object \"%s\": out of memory", t->name);
    return NULL;
  }
  pthread_mutex_init(&b->log_lock, NULL);
  pthread_mutex_init(&b->changed_lock, NULL);
  b->borrowed = true;
  b->cluster = t->base->cluster;
  b->io = t->io;
  b->readonly = readonly;
  b->name = strdup(t->name);
  b->pool = strdup(t->pool);
  b->image_name = strdup(cname);
  b->client = strdup(client);
  if (!b->name || !b->pool || !b->image_name || !b->client ||
      asprintf(&b->where, "%s/%s", t->pool, cname) < 0) {
    b->where = NULL;
    lg_set_error("storage object \"%s\": out of memory", t->name);
    goto fail;
  }
  bool created = false;
  int r = readonly ? rbd_open_read_only(t->io, cname, &b->image, NULL)
                   : rbd_open(t->io, cname, &b->image, NULL);
  if (r == -ENOENT && !readonly) {
    /* first login: a clone of the base snapshot, format 2 (no protected
     * snapshot needed; a fresh cluster's default would be format 1) */
    rbd_image_options_t opts;
    rbd_image_options_create(&opts);
    rbd_image_options_set_uint64(opts, RBD_IMAGE_OPTION_CLONE_FORMAT, 2);
    char fbuf[1200], *fpool, *fimage, *fsnap;
    rados_ioctx_t fio = NULL;
    if (from && !spec_split(from, fbuf, sizeof fbuf, &fpool, &fimage, &fsnap))
      r = -EINVAL;
    else if (from)
      r = rados_ioctx_create(t->base->cluster, fpool, &fio);
    else
      r = 0;
    if (r == 0)
      r = from ? rbd_clone3(fio, fimage, fsnap, t->io, cname, opts)
               : rbd_clone3(t->base->io, t->base->image_name, t->base->snap, t->io, cname, opts);
    if (fio)
      rados_ioctx_destroy(fio);
    rbd_image_options_destroy(opts);
    created = r == 0;
    if (r == 0 || r == -EEXIST) /* or another gateway made it meanwhile */
      r = rbd_open(t->io, cname, &b->image, NULL);
    else {
      b->image = NULL;
      lg_set_error("storage object \"%s\": cannot clone %s as %s: %s%s", t->name,
                   from ? from : t->base->where, b->where, strerror(-r),
                   r == -EOPNOTSUPP || r == -EPERM
                     ? " (clone format 2 needs `ceph osd set-require-min-compat-client mimic`)"
                     : "");
      goto fail;
    }
  }
  if (r < 0) {
    b->image = NULL;
    lg_set_error("storage object \"%s\": RBD image %s: %s", t->name, b->where,
                 r == -ENOENT ? "no such image (the client has no disk yet)" : strerror(-r));
    goto fail;
  }
  if (check_parent(t, b->image, b->where, accept, arg) < 0)
    goto fail;
  if (!readonly && take_lock(t, b->image, b->where) < 0)
    goto fail;
  r = rbd_get_size(b->image, &b->size);
  if (r >= 0 && quota && !readonly)
    r = quota_load(b, quota);
  if (r < 0) {
    lg_set_error("storage object \"%s\": RBD image %s: %s", t->name, b->where, strerror(-r));
    goto fail;
  }
  if (created) {
    /* who the clone is for, as given (the name is escaped and lower-cased) */
    rbd_metadata_set(b->image, "lungate.client", client);
  }
  if (created)
    lg_kv(LG_INFO, "rbd clone created", "storage=%s image=%s parent=%s", LG_Q(t->name),
          LG_Q(b->where), LG_Q(from ? from : t->base->where));
  struct timespec mt;
  if (rbd_get_modify_timestamp(b->image, &mt) < 0)
    clock_gettime(CLOCK_REALTIME, &mt);
  b->changed = mt;
  b->tmpl = t;
  pthread_mutex_lock(&t->open_lock);
  b->next_open = t->open_head;
  t->open_head = b;
  pthread_mutex_unlock(&t->open_lock);
  return b;
fail:
  rbd_bs_close(b);
  return NULL;
}

/* Bytes the clone holds itself (not its parent's). */
static int alloc_cb(uint64_t off, size_t len, int exists, void *arg)
{
  (void)off;
  if (exists)
    *(uint64_t *)arg += len;
  return 0;
}

uint64_t lg_rbd_allocated(void *h)
{
  struct rbd_bs *b = h;
  uint64_t n = 0;
  if (rbd_diff_iterate2(b->image, NULL, 0, b->size, 0, 1, alloc_cb, &n) < 0)
    return 0;
  return n;
}

/* Open a client's clone without its lock (for looking at it or removing it). */
static int clone_peek(struct lg_rbd_clones *t, const char *client, rbd_image_t *img)
{
  char cname[1100];
  if (lg_rbd_clone_name(t, client, cname, sizeof cname) < 0)
    return -ENAMETOOLONG;
  return rbd_open_read_only(t->io, cname, img, NULL);
}

/* Is the clone locked by a live client (any gateway, this one too)?  img is
 * opened read-only, where librbd has no exclusive lock state
 * (rbd_lock_get_owners fails with EINVAL): the lockers as `rbd lock ls`
 * shows them. */
static bool image_locked_live(rbd_image_t img)
{
  char tag[128], clients[512], cookies[512], addrs[512];
  size_t tl = sizeof tag, cl = sizeof clients, kl = sizeof cookies, al = sizeof addrs;
  int exclusive = 0;
  ssize_t n = rbd_list_lockers(img, &exclusive, tag, &tl, clients, &cl, cookies, &kl, addrs, &al);
  if (n == 0 || n == -ENOENT)
    return false;
  if (n < 0)
    return true; /* cannot tell: assume the worst */
  rbd_image_watcher_t w[16];
  size_t nw = 16;
  bool live = false;
  if (rbd_watchers_list(img, w, &nw) == 0) {
    for (size_t i = 0; i < nw; i++)
      live |= w[i].addr && !strcmp(w[i].addr, addrs); /* the first locker's */
    rbd_watchers_list_cleanup(w, nw);
  } else {
    live = true;
  }
  return live;
}

int lg_rbd_clone_state(struct lg_rbd_clones *t, const char *client, bool *exists, bool *live)
{
  rbd_image_t img;
  int r = clone_peek(t, client, &img);
  *exists = r == 0;
  *live = false;
  if (r == -ENOENT)
    return 0;
  if (r < 0)
    return r;
  *live = image_locked_live(img);
  rbd_close(img);
  return 0;
}

int lg_rbd_clone_remove(struct lg_rbd_clones *t, const char *client)
{
  char cname[1100];
  rbd_image_t img;
  int r = clone_peek(t, client, &img);
  if (r < 0)
    return r;
  bool live = image_locked_live(img);
  rbd_close(img);
  if (live)
    return -EBUSY;
  if (lg_rbd_clone_name(t, client, cname, sizeof cname) < 0)
    return -ENAMETOOLONG;
  r = rbd_remove(t->io, cname);
  return r == -EBUSY || r == -EMLINK ? -EBUSY : r; /* watched, or has children */
}

/* The clone images of the template's pool, by name (rbd_list2); *n of them
 * into *out (free with rbd_image_spec_list_cleanup and free). */
static int list_images(struct lg_rbd_clones *t, rbd_image_spec_t **out, size_t *n)
{
  size_t max = 64;
  for (;;) {
    rbd_image_spec_t *imgs = calloc(max, sizeof *imgs);
    if (!imgs)
      return -ENOMEM;
    int r = rbd_list2(t->io, imgs, &max);
    if (r == 0) {
      *out = imgs;
      *n = max;
      return 0;
    }
    free(imgs);
    if (r != -ERANGE)
      return r;
    max *= 2;
  }
}

/* The client of a clone image name ("PREFIX" + its escaped, lower-cased
 * name) into out; -EINVAL for a name that is not one. */
static int clone_client(struct lg_rbd_clones *t, const char *image, char *out, size_t len)
{
  size_t plen = strlen(t->prefix), o = 0;
  if (strncmp(image, t->prefix, plen))
    return -EINVAL;
  for (const char *s = image + plen; *s; s++) {
    unsigned v = (unsigned char)*s;
    if (*s == '%' && (sscanf(s + 1, "%2x", &v) != 1 || v == 0 || !s[1] || !s[2]))
      return -EINVAL;
    if (o + 1 >= len)
      return -ENAMETOOLONG;
    out[o++] = (char)v;
    s += *s == '%' ? 2 : 0;
  }
  out[o] = '\0';
  char again[1100];
  if (o == 0 || lg_rbd_clone_name(t, out, again, sizeof again) < 0 || strcmp(again, image))
    return -EINVAL; /* only the canonical spelling names a client */
  return 0;
}

int lg_rbd_clones_list(struct lg_rbd_clones *t, int (*fn)(const char *client, void *arg),
                       void *arg)
{
  rbd_image_spec_t *imgs;
  size_t n;
  int r = list_images(t, &imgs, &n);
  if (r < 0)
    return r;
  char client[256];
  for (size_t i = 0; i < n && r == 0; i++)
    if (clone_client(t, imgs[i].name, client, sizeof client) == 0)
      r = fn(client, arg);
  rbd_image_spec_list_cleanup(imgs, n);
  free(imgs);
  return r;
}

int lg_rbd_clone_changed(struct lg_rbd_clones *t, const char *client, struct timespec *when)
{
  char cname[1100];
  if (lg_rbd_clone_name(t, client, cname, sizeof cname) < 0)
    return -ENAMETOOLONG;
  pthread_mutex_lock(&t->open_lock);
  struct rbd_bs *b = t->open_head;
  while (b && strcmp(b->image_name, cname))
    b = b->next_open;
  if (b) {
    pthread_mutex_lock(&b->changed_lock);
    *when = b->changed;
    pthread_mutex_unlock(&b->changed_lock);
  }
  pthread_mutex_unlock(&t->open_lock);
  if (b)
    return 0;
  rbd_image_t img;
  int r = rbd_open_read_only(t->io, cname, &img, NULL);
  if (r < 0)
    return r;
  r = rbd_get_modify_timestamp(img, when);
  rbd_close(img);
  return r < 0 ? r : 0;
}

/* What a listing shows of the clone image name (opened read-only). */
static void clone_describe(struct lg_rbd_clones *t, rbd_image_t img, const char *name,
                           struct lg_rbd_clone_info *ci)
{
  size_t plen = strlen(t->prefix);
  snprintf(ci->path, sizeof ci->path, "rbd:%s/%s", t->pool, name);
  size_t vl = sizeof ci->client;
  if (rbd_metadata_get(img, "lungate.client", ci->client, &vl) < 0)
    snprintf(ci->client, sizeof ci->client, "%s", name + plen);
  char v[64];
  vl = sizeof v;
  if (rbd_metadata_get(img, "lungate.last_use", v, &vl) == 0) {
    ci->last_use = strtoull(v, NULL, 10);
    ci->live_mark = strstr(v, "live") != NULL;
  }
  rbd_image_info_t info;
  if (rbd_stat(img, &info, sizeof info) == 0) {
    ci->size = info.size;
    ci->obj_size = info.obj_size;
  }
  uint64_t n = 0;
  if (rbd_diff_iterate2(img, NULL, 0, ci->size, 0, 1, alloc_cb, &n) == 0)
    ci->allocated = n;
  ci->live = image_locked_live(img);
  rbd_linked_image_spec_t pimg;
  rbd_snap_spec_t psnap;
  if (rbd_get_parent(img, &pimg, &psnap) == 0) {
    snprintf(ci->parent, sizeof ci->parent, "%s/%s@%s", pimg.pool_name, pimg.image_name,
             psnap.name);
    rbd_linked_image_spec_cleanup(&pimg);
    rbd_snap_spec_cleanup(&psnap);
  }
}

int lg_rbd_clones_foreach(struct lg_rbd_clones *t,
                          int (*fn)(const struct lg_rbd_clone_info *ci, void *arg), void *arg)
{
  rbd_image_spec_t *imgs;
  size_t max;
  int r = list_images(t, &imgs, &max);
  if (r < 0)
    return r;
  size_t plen = strlen(t->prefix);
  int rc = 0;
  for (size_t i = 0; i < max; i++) {
    if (strncmp(imgs[i].name, t->prefix, plen))
      continue;
    struct lg_rbd_clone_info ci = { 0 };
    rbd_image_t img;
    if (rbd_open_read_only(t->io, imgs[i].name, &img, NULL) < 0)
      continue; /* removed meanwhile */
    clone_describe(t, img, imgs[i].name, &ci);
    rbd_close(img);
    if (fn(&ci, arg) < 0)
      rc = -1;
  }
  rbd_image_spec_list_cleanup(imgs, max);
  free(imgs);
  return rc;
}

/* A client's disk as a new, flat RBD image with a snapshot ("POOL/IMAGE@SNAP"),
 * which an rbd object can name as the next base. */
int lg_rbd_commit(void *h, const char *spec, char *err, size_t errlen)
{
  struct rbd_bs *b = h;
  char buf[512];
  snprintf(buf, sizeof buf, "%s", spec);
  char *slash = strchr(buf, '/'), *at = strrchr(buf, '@');
  if (!slash || !at || at < slash || slash == buf || at == slash + 1 || !at[1] ||
      strchr(slash + 1, '/')) {
    snprintf(err, errlen, "\"rbd:%s\": expected rbd:POOL/IMAGE@SNAPSHOT", spec);
    return -EINVAL;
  }
  *slash = *at = '\0';
  const char *pool = buf, *image = slash + 1, *snap = at + 1;
  rados_ioctx_t io;
  int r = rados_ioctx_create(b->cluster, pool, &io);
  if (r < 0) {
    snprintf(err, errlen, "pool \"%s\": %s", pool, r == -ENOENT ? "no such pool" : strerror(-r));
    return r;
  }
  rbd_image_t img;
  if (rbd_open_read_only(io, image, &img, NULL) == 0) {
    rbd_close(img);
    snprintf(err, errlen, "RBD image %s/%s exists (choose a new name: commit never overwrites)",
             pool, image);
    rados_ioctx_destroy(io);
    return -EEXIST;
  }
  /* a new image, written from the client's view (its parent's data
   * included: rbd_copy3 leaves out what a clone reads from its parent),
   * all-zero chunks left unwritten */
  rbd_image_options_t opts;
  rbd_image_options_create(&opts);
  r = rbd_create4(io, image, b->size, opts);
  rbd_image_options_destroy(opts);
  if (r < 0) {
    snprintf(err, errlen, "creating %s/%s: %s", pool, image, strerror(-r));
    rados_ioctx_destroy(io);
    return r;
  }
  r = rbd_open(io, image, &img, NULL);
  if (r < 0) {
    snprintf(err, errlen, "opening %s/%s: %s", pool, image, strerror(-r));
    rados_ioctx_destroy(io);
    return r;
  }
  size_t chunk = 4u << 20;
  char *data = malloc(chunk);
  if (!data)
    r = -ENOMEM;
  for (uint64_t off = 0; r >= 0 && off < b->size; off += chunk) {
    size_t n = b->size - off < chunk ? (size_t)(b->size - off) : chunk;
    r = run(b, RBD_READ, data, n, off);
    if (r < 0) {
      snprintf(err, errlen, "reading %s at %" PRIu64 ": %s", b->where, off, strerror(-r));
      break;
    }
    if (data[0] == 0 && !memcmp(data, data + 1, n - 1))
      continue;
    ssize_t w = rbd_write(img, off, n, data);
    if (w != (ssize_t)n) {
      r = w < 0 ? (int)w : -EIO;
      snprintf(err, errlen, "writing %s/%s at %" PRIu64 ": %s", pool, image, off, strerror(-r));
    }
  }
  free(data);
  if (r >= 0 && (r = rbd_flush(img)) < 0)
    snprintf(err, errlen, "flushing %s/%s: %s", pool, image, strerror(-r));
  if (r >= 0 && (r = rbd_snap_create(img, snap)) < 0)
    snprintf(err, errlen, "snapshot %s/%s@%s: %s", pool, image, snap, strerror(-r));
  rbd_close(img);
  if (r < 0)
    rbd_remove(io, image); /* no half-written base left behind */
  rados_ioctx_destroy(io);
  return r < 0 ? r : 0;
}

/* Last use, in the image's metadata (`rbd image-meta get IMAGE lungate.last_use`):
 * "UNIXTIME live" while a session runs, "UNIXTIME" after the last one ended. */
void lg_rbd_touch(void *h, bool live, const char *boot)
{
  struct rbd_bs *b = h;
  char v[64];
  if (b->readonly)
    return;
  snprintf(v, sizeof v, "%lld%s", (long long)time(NULL), live ? " live" : "");
  int r = rbd_metadata_set(b->image, "lungate.last_use", v);
  if (r == 0 && boot)
    r = rbd_metadata_set(b->image, "lungate.boot", boot);
  if (r < 0)
    note_result(b, RBD_WRITE, 0, 0, r);
}

int lg_rbd_clone_meta(struct lg_rbd_clones *t, const char *client, const char *key, char *out,
                      size_t len)
{
  rbd_image_t img;
  int r = clone_peek(t, client, &img);
  if (r < 0)
    return r;
  size_t vl = len;
  r = rbd_metadata_get(img, key, out, &vl);
  rbd_close(img);
  return r;
}

#define RBD_OPS(NAME, OPEN)                                                          \
  {                                                                                  \
    .name = NAME, .open = OPEN, .close = rbd_bs_close, .size = rbd_bs_size,          \
    .block_size = rbd_bs_block_size, .can_write = rbd_bs_can_write,                  \
    .can_flush = rbd_bs_can_flush, .can_trim = rbd_bs_can_trim,                      \
    .can_zero = rbd_bs_can_zero, .can_extents = rbd_bs_can_extents,                  \
    .pread = rbd_bs_pread, .pwrite = rbd_bs_pwrite, .flush = rbd_bs_flush,           \
    .trim = rbd_bs_trim, .zero = rbd_bs_zero, .extents = rbd_bs_extents,             \
    .pread_async = rbd_bs_pread_async, .pwrite_async = rbd_bs_pwrite_async,          \
    .flush_async = rbd_bs_flush_async, .trim_async = rbd_bs_trim_async,              \
    .zero_async = rbd_bs_zero_async,                                                 \
  }

const struct lg_backstore_ops lg_rbd_backstore = RBD_OPS("rbd", lg_rbd_open_json);
const struct lg_backstore_ops lg_rbd_user_backstore = RBD_OPS("user", rbd_user_open);
