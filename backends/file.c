/* fileio backstore: a raw image file (or block device) read and written with
 * pread/pwrite.  rtslib-fb keys: dev, size, write_back, readonly,
 * attributes.block_size.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lungate/backstore.h"
#include "backends/common.h"
#include "util/log.h"

struct fileio {
  int fd;
  uint64_t size;
  uint32_t block_size;
  bool readonly;
  bool is_blockdev;
  bool can_punch;           /* cleared once the filesystem says it cannot */
  uint8_t *map;             /* the whole image, read-only (NULL: not mapped) */
  size_t page;
};

/* Ranges longer than this are not checked for residency; they are read. */
#define FILE_MAP_MAX (1u << 20)

/* Open (creating if `size` is given and the file is missing) and size the file. */
static void *file_open(const json_t *so, const struct lg_bs_open_args *args)
{
  json_t *devj = json_object_get(so, "dev");
  const char *dev = json_string_value(devj);
  if (!dev || !*dev) {
    lg_set_error("storage object \"%s\": key \"dev\" is %s; give the path of the image "
                 "file as a string", args->name, !devj ? "missing" : dev ? "empty"
                 : "not a string");
    return NULL;
  }
  uint64_t want_size = 0;
  if (lg_json_get_u64(so, "size", &want_size) < 0) {
    lg_set_error("storage object \"%s\": key \"size\" must be a non-negative "
                 "number of bytes", args->name);
    return NULL;
  }
  bool readonly = args->readonly || json_is_true(json_object_get(so, "readonly"));
  bool write_back = !json_is_false(json_object_get(so, "write_back"));
  uint64_t bs = 512;
  json_t *attrs = json_object_get(so, "attributes");
  if (attrs && lg_json_get_u64(attrs, "block_size", &bs) < 0)
    bs = 0;
  if (bs != 512 && bs != 1024 && bs != 2048 && bs != 4096) {
    lg_set_error("storage object \"%s\": attributes.block_size must be 512, "
                 "1024, 2048 or 4096", args->name);
    return NULL;
  }

  char path[PATH_MAX];
  if (lg_resolve_path(path, sizeof path, args->config_dir, dev) < 0) {
    lg_set_error("storage object \"%s\": path \"%s\" is too long", args->name, dev);
    return NULL;
  }

  int flags = (readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC;
  if (!write_back && !readonly)
    flags |= O_DSYNC;
  int fd = open(path, flags);
  if (fd < 0 && errno == ENOENT && want_size > 0 && !readonly)
    fd = open(path, flags | O_CREAT | O_EXCL, 0600);
  if (fd < 0) {
    int e = errno;
    lg_set_error("storage object \"%s\": cannot open \"%s\": %s%s", args->name,
                 path, strerror(e),
                 e == ENOENT ? " (create the image, or give \"size\" to have it "
                               "created)" : "");
    return NULL;
  }

  struct fileio *h = calloc(1, sizeof *h);
  if (!h) {
    lg_set_error("storage object \"%s\": out of memory", args->name);
    goto err_close;
  }
  h->fd = fd;
  h->readonly = readonly;
  h->block_size = (uint32_t)bs;
  h->can_punch = true;

  struct stat st;
  if (fstat(fd, &st) < 0) {
    lg_set_error("storage object \"%s\": stat \"%s\": %s", args->name, path,
                 strerror(errno));
    goto err_free;
  }
  uint64_t actual;
  if (S_ISBLK(st.st_mode)) {
    h->is_blockdev = true;
    if (ioctl(fd, BLKGETSIZE64, &actual) < 0) {
      lg_set_error("storage object \"%s\": size of block device \"%s\": %s",
                   args->name, path, strerror(errno));
      goto err_free;
    }
  } else if (S_ISREG(st.st_mode)) {
    actual = (uint64_t)st.st_size;
    if (want_size > actual && !readonly && ftruncate(fd, (off_t)want_size) == 0)
      actual = want_size;
  } else {
    lg_set_error("storage object \"%s\": \"%s\" is neither a regular file nor a "
                 "block device", args->name, path);
    goto err_free;
  }
  h->size = want_size ? (want_size < actual ? want_size : actual) : actual;
  h->size -= h->size % bs;
  if (h->size == 0) {
    lg_set_error("storage object \"%s\": \"%s\" is empty (size 0); give \"size\" "
                 "or use a non-empty image", args->name, path);
    goto err_free;
  }
  /* Mapped for ->map_cached: cached reads are sent from the page cache
   * itself rather than copied into a buffer first.  Without it (a 32-bit
   * address space, say) they are read as before. */
  h->page = (size_t)sysconf(_SC_PAGESIZE);
  if (h->size <= SIZE_MAX) {
    void *m = mmap(NULL, (size_t)h->size, PROT_READ, MAP_SHARED, fd, 0);
    if (m != MAP_FAILED)
      h->map = m;
    else
      lg_kv(LG_DEBUG, "image not mapped; cached reads are copied", "storage=%s err=%s",
            args->name, LG_Q(strerror(errno)));
  }
  return h;

err_free:
  free(h);
err_close:
  close(fd);
  return NULL;
}

static void file_close(void *hv)
{
  struct fileio *h = hv;
  if (h->map)
    munmap(h->map, (size_t)h->size);
  close(h->fd);
  free(h);
}

static uint64_t file_size(void *hv) { return ((struct fileio *)hv)->size; }
static uint32_t file_block_size(void *hv) { return ((struct fileio *)hv)->block_size; }
static bool file_can_write(void *hv) { return !((struct fileio *)hv)->readonly; }
static bool file_can_true(void *hv) { (void)hv; return true; }
static bool file_can_trim(void *hv)
{
  struct fileio *h = hv;
  return !h->readonly && !h->is_blockdev;
}

static int file_pread(void *hv, void *buf, size_t count, uint64_t offset)
{
  return lg_pread_full(((struct fileio *)hv)->fd, buf, count, offset, false);
}

static int file_pread_nowait(void *hv, void *buf, size_t count, uint64_t offset)
{
  return lg_pread_full(((struct fileio *)hv)->fd, buf, count, offset, true);
}

static const void *file_map_cached(void *hv, size_t count, uint64_t offset)
{
  struct fileio *h = hv;
  if (!h->map || count == 0 || count > FILE_MAP_MAX || offset > h->size ||
      count > h->size - offset)
    return NULL;
  size_t first = (size_t)offset & ~(h->page - 1);
  size_t len = (size_t)offset + count - first;
  unsigned char vec[FILE_MAP_MAX / 4096 + 2];
  size_t pages = (len + h->page - 1) / h->page;
  if (pages > sizeof vec || mincore(h->map + first, len, vec) < 0)
    return NULL;
  for (size_t i = 0; i < pages; i++)
    if (!(vec[i] & 1))
      return NULL;
  return h->map + offset;
}

static int file_pwrite(void *hv, const void *buf, size_t count, uint64_t offset,
                       unsigned flags)
{
  struct fileio *h = hv;
  const char *p = buf;
  while (count > 0) {
    ssize_t r = pwrite(h->fd, p, count, (off_t)offset);
    if (r < 0) {
      if (errno == EINTR)
        continue;
      return -errno;
    }
    p += r;
    count -= (size_t)r;
    offset += (uint64_t)r;
  }
  if ((flags & LG_BS_FUA) && fdatasync(h->fd) < 0)
    return -errno;
  return 0;
}

static int file_flush(void *hv)
{
  struct fileio *h = hv;
  return fdatasync(h->fd) < 0 ? -errno : 0;
}

static int file_trim(void *hv, uint64_t count, uint64_t offset)
{
  struct fileio *h = hv;
  if (!h->can_punch)
    return 0; /* trim is advisory */
  if (fallocate(h->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)offset,
                (off_t)count) < 0) {
    if (errno == EOPNOTSUPP) {
      h->can_punch = false;
      return 0;
    }
    return -errno;
  }
  return 0;
}

/* Write zeroes: ask the filesystem first, then fall back to writing them. */
static int file_zero(void *hv, uint64_t count, uint64_t offset, unsigned flags)
{
  struct fileio *h = hv;
  if (!h->is_blockdev) {
    int mode = (flags & LG_BS_MAY_TRIM) && h->can_punch
      ? FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE
      : FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE;
    if (fallocate(h->fd, mode, (off_t)offset, (off_t)count) == 0)
      return (flags & LG_BS_FUA) ? file_flush(h) : 0;
  }
  static const char zeroes[65536];
  while (count > 0) {
    size_t n = count < sizeof zeroes ? (size_t)count : sizeof zeroes;
    int r = file_pwrite(h, zeroes, n, offset, 0);
    if (r < 0)
      return r;
    count -= n;
    offset += n;
  }
  return (flags & LG_BS_FUA) ? file_flush(h) : 0;
}

/* Allocation map from SEEK_DATA / SEEK_HOLE. */
static int file_extents(void *hv, uint64_t count, uint64_t offset,
                        struct lg_extent *ext, size_t *n)
{
  struct fileio *h = hv;
  size_t max = *n, used = 0;
  uint64_t end = offset + count;
  while (offset < end && used < max) {
    off_t data = lseek(h->fd, (off_t)offset, SEEK_DATA);
    if (data < 0 && errno != ENXIO)
      return -errno;
    uint64_t d = data < 0 ? end : (uint64_t)data;
    if (d > offset) { /* a hole first */
      uint64_t len = (d < end ? d : end) - offset;
      ext[used++] = (struct lg_extent){ offset, len, LG_EXTENT_HOLE | LG_EXTENT_ZERO };
      offset += len;
      continue;
    }
    off_t hole = lseek(h->fd, (off_t)offset, SEEK_HOLE);
    if (hole < 0)
      return -errno;
    uint64_t hl = (uint64_t)hole < end ? (uint64_t)hole : end;
    ext[used++] = (struct lg_extent){ offset, hl - offset, 0 };
    offset = hl;
  }
  *n = used;
  return 0;
}

const struct lg_backstore_ops lg_file_backstore = {
  .name = "fileio",
  .open = file_open,
  .close = file_close,
  .size = file_size,
  .block_size = file_block_size,
  .can_write = file_can_write,
  .can_flush = file_can_true,
  .can_trim = file_can_trim,
  .can_zero = file_can_write,
  .can_extents = file_can_true,
  .pread = file_pread,
  .pwrite = file_pwrite,
  .flush = file_flush,
  .trim = file_trim,
  .zero = file_zero,
  .extents = file_extents,
  .pread_nowait = file_pread_nowait,
  .map_cached = file_map_cached,
};
