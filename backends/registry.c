/* The table of compiled-in backstores, looked up by rtslib plugin name. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "backends/common.h"
#include "backends/cow.h"
#include "backends/rbd.h"

static const struct {
  const char *plugin;                    /* name in saveconfig.json */
  const struct lg_backstore_ops *ops;
} registry[] = {
  { "fileio", &lg_file_backstore },
  { "block", &lg_file_backstore },       /* a block device path, served like a file */
  { "cow", &lg_cow_backstore },          /* a writable layer over another object */
  { "nbd", &lg_nbd_backstore },          /* any NBD server, by URI */
  { "qcow2", &lg_qcow2_backstore },      /* qemu image formats, through our qemu-nbd */
  { "rbd", &lg_rbd_backstore },          /* a Ceph RBD image or snapshot, librbd */
  { "user", &lg_user_backstore },        /* rtslib's tcmu "user": qcow/PATH or rbd/POOL/IMAGE */
};

const struct lg_backstore_ops *lg_backstore_find(const char *plugin)
{
  for (size_t i = 0; i < sizeof registry / sizeof registry[0]; i++)
    if (strcmp(registry[i].plugin, plugin) == 0)
      return registry[i].ops;
  return NULL;
}

int lg_json_get_u64(const json_t *obj, const char *key, uint64_t *out)
{
  json_t *v = json_object_get(obj, key);
  if (!v || json_is_null(v))
    return 0;
  if (json_is_integer(v)) {
    if (json_integer_value(v) < 0)
      return -EINVAL;
    *out = (uint64_t)json_integer_value(v);
    return 0;
  }
  if (json_is_string(v)) {
    const char *s = json_string_value(v);
    char *end;
    errno = 0;
    unsigned long long n = strtoull(s, &end, 10);
    if (!*s || *end || errno || *s == '-')
      return -EINVAL;
    *out = n;
    return 0;
  }
  return -EINVAL;
}

int lg_resolve_path(char *out, size_t outlen, const char *dir, const char *path)
{
  int n = (path[0] == '/' || !dir || !*dir)
    ? snprintf(out, outlen, "%s", path)
    : snprintf(out, outlen, "%s/%s", dir, path);
  return (n < 0 || (size_t)n >= outlen) ? -ENAMETOOLONG : 0;
}

int lg_pread_full(int fd, void *buf, size_t n, uint64_t off, bool nowait)
{
  char *p = buf;
  while (n > 0) {
    struct iovec iov = { p, n };
    ssize_t r = preadv2(fd, &iov, 1, (off_t)off, nowait ? RWF_NOWAIT : 0);
    if (r < 0) {
      if (errno == EINTR)
        continue;
      /* EOPNOTSUPP: a file system without RWF_NOWAIT; the caller waits */
      return nowait && errno == EOPNOTSUPP ? -EAGAIN : -errno;
    }
    if (r == 0) { /* past the end of a file shorter than its LUN: zeroes */
      memset(p, 0, n);
      return 0;
    }
    p += r;
    n -= (size_t)r;
    off += (uint64_t)r;
  }
  return 0;
}
