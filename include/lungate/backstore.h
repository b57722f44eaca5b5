/* lungate backstore contract: the block-I/O interface every LUN sits on.
 *
 * The SCSI layer decodes CDBs and checks ranges; a backstore only moves bytes at
 * byte offsets.  Every data call returns 0 or -errno and may be called from
 * several threads at once on the same handle.  A backstore that cannot do
 * something leaves the pointer NULL (or returns false from can_*).
 *
 * Errors become SCSI sense in one place (src/scsi/sense.c): -ETIMEDOUT,
 * -ENOTCONN, -ECONNRESET, -ESHUTDOWN, -EPIPE: HARDWARE ERROR, LOGICAL UNIT
 * COMMUNICATION FAILURE (a remote store down or stalled); -EIO: MEDIUM ERROR;
 * -EROFS, -EPERM, -EACCES: DATA PROTECT, WRITE PROTECTED; -ENOSPC, -EDQUOT:
 * DATA PROTECT, SPACE ALLOCATION FAILED (a quota); -EINVAL, -ERANGE: ILLEGAL
 * REQUEST; -ENOMEM, -EAGAIN: BUSY (the initiator retries); anything else:
 * HARDWARE ERROR, INTERNAL TARGET FAILURE.  A backstore on a remote store must
 * never let a call hang: it bounds each call by its own timeout and fails it
 * with -ETIMEDOUT, and works again by itself once the store answers.
 *
 * ->trim is advisory (UNMAP; LBPRZ is not claimed): the range may read as
 * before or as zeroes.  ->zero must leave the range reading as zeroes, with or
 * without LG_BS_MAY_TRIM.
 */
#ifndef LUNGATE_BACKSTORE_H
#define LUNGATE_BACKSTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#ifdef __cplusplus
extern "C" {
#endif

/* pwrite/zero flags */
#define LG_BS_FUA     (1u << 0) /* data must be durable when the call returns */
#define LG_BS_MAY_TRIM (1u << 1) /* zero may deallocate */

/* One allocation extent, reported by ->extents. */
struct lg_extent {
  uint64_t offset;            /* byte offset */
  uint64_t length;            /* bytes */
  uint32_t flags;             /* LG_EXTENT_* */
};
#define LG_EXTENT_HOLE (1u << 0) /* not allocated */
#define LG_EXTENT_ZERO (1u << 1) /* reads as zeroes */

/* What the opener is told besides the storage object's own JSON. */
struct lg_bs_open_args {
  const char *name;           /* storage object name, for messages */
  bool readonly;              /* open for reading only, whatever the JSON says */
  const char *config_dir;     /* directory of the config file, for relative paths */
  /* layered backstores (cow): the storage object named by "base", opened */
  const struct lg_backstore_ops *base_ops;
  void *base_h;
  const json_t *base_def;     /* the base object's JSON (cow: to open its versions) */
};

struct lg_backstore_ops {
  const char *name;           /* plugin name as in saveconfig.json ("fileio") */

  /* Open from the storage object's JSON; NULL with lg_set_error() on failure. */
  void *(*open)(const json_t *so, const struct lg_bs_open_args *args);
  void (*close)(void *h);

  uint64_t (*size)(void *h);          /* bytes */
  uint32_t (*block_size)(void *h);    /* logical block size in bytes */

  bool (*can_write)(void *h);
  bool (*can_flush)(void *h);
  bool (*can_trim)(void *h);
  bool (*can_zero)(void *h);
  bool (*can_extents)(void *h);

  int (*pread)(void *h, void *buf, size_t count, uint64_t offset);
  int (*pwrite)(void *h, const void *buf, size_t count, uint64_t offset,
                unsigned flags);
  int (*flush)(void *h);
  int (*trim)(void *h, uint64_t count, uint64_t offset);
  int (*zero)(void *h, uint64_t count, uint64_t offset, unsigned flags);
  /* Fill at most *n extents covering [offset, offset+count); *n gets the number
   * filled.  Extents are contiguous from offset. */
  int (*extents)(void *h, uint64_t count, uint64_t offset,
                 struct lg_extent *ext, size_t *n);

  /* Optional, for backstores that keep per-client state (cow with
   * per_initiator): open the view of client (an initiator name) onto h, a
   * handle of these same ops; NULL with lg_set_error() on failure.  Views
   * are closed with ->close before h. */
  void *(*open_client)(void *h, const char *client);

  /* Optional: ->pread, but only if it need not wait for a device (the data
   * is in the page cache); -EAGAIN when it would (buf may then hold part of
   * the data).  Lets the transport answer cached reads at once, on the
   * thread that received them, with no hand-off to a worker. */
  int (*pread_nowait)(void *h, void *buf, size_t count, uint64_t offset);

  /* Optional: the bytes [offset, offset+count) in memory, for the transport
   * to send without copying them first: a read-only mapping of the image,
   * handed out only when the page cache holds the whole range (so that the
   * sender does not wait for a device); NULL when it does not, or for a
   * range this backstore cannot map.  The pointer stays valid until ->close
   * and shows concurrent writes, as ->pread would.  Only the kernel may read
   * through it (sendmsg): a file truncated behind the gateway's back makes
   * a user-space read of the mapping fault, where the kernel returns EFAULT. */
  const void *(*map_cached)(void *h, size_t count, uint64_t offset);

  /* Optional: start ->pread and return at once: 0 when started, then
   * done(arg, 0 or -errno) is called exactly once, on any thread (the
   * backstore's own, usually), and must not block; -errno when not started
   * (done is not called).  done may run before ->pread_async has returned.
   * Lets the transport keep many reads of a remote backstore in flight
   * without a worker waiting on each. */
  int (*pread_async)(void *h, void *buf, size_t count, uint64_t offset,
                     void (*done)(void *arg, int result), void *arg);
};

/* The registry: every backstore compiled in, looked up by plugin name. */
const struct lg_backstore_ops *lg_backstore_find(const char *plugin);

#ifdef __cplusplus
}
#endif

#endif /* LUNGATE_BACKSTORE_H */
