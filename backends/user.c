/* rtslib-fb's tcmu "user" plugin: its "config" string names tcmu-runner's
 * handler, and lungate serves two of them with its own backstores:
 *   "qcow/PATH"            the qcow2 backstore (backends/nbd.c)
 *   "rbd/POOL/IMAGE;..."   the rbd backstore (backends/rbd.c)
 * A user object's handle is the chosen backstore's, wrapped with its ops;
 * every call goes through to them. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "backends/common.h"
#include "backends/rbd.h"
#include "util/log.h"

struct user_bs {
  const struct lg_backstore_ops *ops;
  void *h;
};

static void *user_open(const json_t *so, const struct lg_bs_open_args *args)
{
  const char *config = json_string_value(json_object_get(so, "config"));
  const struct lg_backstore_ops *ops = NULL;
  if (config && !strncmp(config, "qcow/", 5))
    ops = &lg_user_qcow_backstore;
  else if (config && !strncmp(config, "rbd/", 4))
    ops = &lg_rbd_user_backstore;
  if (!ops) {
    lg_set_error("storage object \"%s\": user (tcmu) backstore with config \"%s\" is not "
                 "supported; lungate serves \"qcow/PATH\" and \"rbd/POOL/IMAGE;...\" (or "
                 "use plugin \"qcow2\" or \"rbd\")", args->name, config ? config : "");
    return NULL;
  }
  struct user_bs *u = malloc(sizeof *u);
  if (!u) {
    lg_set_error("storage object \"%s\": out of memory", args->name);
    return NULL;
  }
  u->ops = ops;
  u->h = ops->open(so, args);
  if (!u->h) {
    free(u);
    return NULL;
  }
  return u;
}

static void user_close(void *hv)
{
  struct user_bs *u = hv;
  u->ops->close(u->h);
  free(u);
}

#define U(hv) ((struct user_bs *)(hv))
static uint64_t user_size(void *hv) { return U(hv)->ops->size(U(hv)->h); }
static uint32_t user_block_size(void *hv) { return U(hv)->ops->block_size(U(hv)->h); }
static bool user_can_write(void *hv) { return U(hv)->ops->can_write(U(hv)->h); }
static bool user_can_flush(void *hv) { return U(hv)->ops->can_flush(U(hv)->h); }
static bool user_can_trim(void *hv)
{
  return U(hv)->ops->trim && U(hv)->ops->can_trim(U(hv)->h);
}
static bool user_can_zero(void *hv)
{
  return U(hv)->ops->zero && U(hv)->ops->can_zero(U(hv)->h);
}
static bool user_can_extents(void *hv)
{
  return U(hv)->ops->extents && U(hv)->ops->can_extents(U(hv)->h);
}

static int user_pread(void *hv, void *buf, size_t count, uint64_t offset)
{
  return U(hv)->ops->pread(U(hv)->h, buf, count, offset);
}

static int user_pwrite(void *hv, const void *buf, size_t count, uint64_t offset,
                       unsigned flags)
{
  return U(hv)->ops->pwrite(U(hv)->h, buf, count, offset, flags);
}

static int user_flush(void *hv)
{
  return U(hv)->ops->flush ? U(hv)->ops->flush(U(hv)->h) : 0;
}

static int user_trim(void *hv, uint64_t count, uint64_t offset)
{
  return U(hv)->ops->trim ? U(hv)->ops->trim(U(hv)->h, count, offset) : -EOPNOTSUPP;
}

static int user_zero(void *hv, uint64_t count, uint64_t offset, unsigned flags)
{
  return U(hv)->ops->zero ? U(hv)->ops->zero(U(hv)->h, count, offset, flags) : -EOPNOTSUPP;
}

static int user_extents(void *hv, uint64_t count, uint64_t offset, struct lg_extent *ext,
                        size_t *n)
{
  if (!U(hv)->ops->extents)
    return -ENOTSUP;
  return U(hv)->ops->extents(U(hv)->h, count, offset, ext, n);
}

/* the optional fast paths: "not now" when the backstore below has none */
static int user_pread_nowait(void *hv, void *buf, size_t count, uint64_t offset)
{
  if (!U(hv)->ops->pread_nowait)
    return -EAGAIN;
  return U(hv)->ops->pread_nowait(U(hv)->h, buf, count, offset);
}

static const void *user_map_cached(void *hv, size_t count, uint64_t offset)
{
  if (!U(hv)->ops->map_cached)
    return NULL;
  return U(hv)->ops->map_cached(U(hv)->h, count, offset);
}

static int user_pread_async(void *hv, void *buf, size_t count, uint64_t offset,
                            void (*done)(void *arg, int result), void *arg)
{
  if (!U(hv)->ops->pread_async)
    return -EOPNOTSUPP;
  return U(hv)->ops->pread_async(U(hv)->h, buf, count, offset, done, arg);
}

const struct lg_backstore_ops lg_user_backstore = {
  .name = "user", .open = user_open, .close = user_close, .size = user_size,
  .block_size = user_block_size, .can_write = user_can_write, .can_flush = user_can_flush,
  .can_trim = user_can_trim, .can_zero = user_can_zero, .can_extents = user_can_extents,
  .pread = user_pread, .pwrite = user_pwrite, .flush = user_flush, .trim = user_trim,
  .zero = user_zero, .extents = user_extents, .pread_nowait = user_pread_nowait,
  .map_cached = user_map_cached, .pread_async = user_pread_async,
};
