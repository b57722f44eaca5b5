/* The "rbd" backstore: an image (or a snapshot of one) in a Ceph cluster, through
 * librbd's asynchronous calls.
 *
 *   {"plugin": "rbd", "name": "golden", "pool": "rbd", "image": "freedos",
 *    "snapshot": "v1", "conf": "/etc/ceph/ceph.conf", "user": "admin",
 *    "readonly": true, "osd_op_timeout": 30, "mon_op_timeout": 30}
 *
 * Every call is one librbd aio request: reads may be started without waiting
 * (->pread_async, completed on librbd's own thread), the others wait for their
 * completion.  librados' OSD and monitor timeouts bound every request, so a
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
  /* failure log, rate-limited */
  pthread_mutex_t log_lock;
  time_t last_log;                 /* CLOCK_MONOTONIC seconds of the last failure line */
  unsigned long suppressed;        /* failures not logged since */
  atomic_bool failing;             /* the last request failed */
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
  void (*done)(void *arg, int result);  /* asynchronous reads */
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

static void async_read_done(rbd_completion_t c, void *arg)
{
  struct rbd_req *q = arg;
  int r = result_of(c, RBD_READ, q->buf, q->len);
  rbd_aio_release(c);
  note_result(q->b, RBD_READ, q->offset, q->len, r);
  void (*done)(void *, int) = q->done;
  void *darg = q->arg;
  free(q);
  done(darg, r);
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
  struct rbd_bs *b = h;
  struct rbd_req *q = malloc(sizeof *q);
  if (!q)
    return -ENOMEM;
  *q = (struct rbd_req){ .b = b, .op = RBD_READ, .offset = offset, .len = count,
                         .buf = buf, .done = done, .arg = arg };
  rbd_completion_t c;
  int r = rbd_aio_create_completion(q, async_read_done, &c);
  if (r < 0) {
    free(q);
    return r;
  }
  r = submit(b, RBD_READ, buf, count, offset, c);
  if (r < 0) { /* not started: the callback never runs */
    rbd_aio_release(c);
    free(q);
  }
  return r;
}

static int rbd_bs_flush(void *h)
{
  return run(h, RBD_FLUSH, NULL, 0, 0);
}

static int rbd_bs_pwrite(void *h, const void *buf, size_t count, uint64_t offset,
                         unsigned flags)
{
  struct rbd_bs *b = h;
  if (b->readonly)
    return -EROFS;
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
  int r = run(b, RBD_ZERO, NULL, count, offset);
  if (r == 0 && (flags & LG_BS_FUA))
    r = rbd_bs_flush(b);
  return r;
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

static void rbd_bs_close(void *h)
{
  struct rbd_bs *b = h;
  if (!b)
    return;
  if (b->image)
    rbd_close(b->image);
  if (b->io)
    rados_ioctx_destroy(b->io);
  if (b->cluster)
    rados_shutdown(b->cluster);
  pthread_mutex_destroy(&b->log_lock);
  free(b->name);
  free(b->where);
  free(b);
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
  b->readonly = args->readonly || json_is_true(ro) || snap;
  b->name = strdup(args->name);
  if (asprintf(&b->where, "%s/%s%s%s%s%s", pool, ns ? ns : "", ns ? "/" : "", image,
               snap ? "@" : "", snap ? snap : "") < 0)
    b->where = NULL;
  if (!b->name || !b->where) {
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

#define RBD_OPS(NAME, OPEN)                                                          \
  {                                                                                  \
    .name = NAME, .open = OPEN, .close = rbd_bs_close, .size = rbd_bs_size,          \
    .block_size = rbd_bs_block_size, .can_write = rbd_bs_can_write,                  \
    .can_flush = rbd_bs_can_flush, .can_trim = rbd_bs_can_trim,                      \
    .can_zero = rbd_bs_can_zero, .can_extents = rbd_bs_can_extents,                  \
    .pread = rbd_bs_pread, .pwrite = rbd_bs_pwrite, .flush = rbd_bs_flush,           \
    .trim = rbd_bs_trim, .zero = rbd_bs_zero, .extents = rbd_bs_extents,             \
    .pread_async = rbd_bs_pread_async,                                               \
  }

const struct lg_backstore_ops lg_rbd_backstore = RBD_OPS("rbd", lg_rbd_open_json);
const struct lg_backstore_ops lg_rbd_user_backstore = RBD_OPS("user", rbd_user_open);
