/* The cow backstore's extra interface: overlay files and their lifecycle,
 * used by the target layer (per-initiator overlays) and the overlay commands. */
#ifndef LUNGATE_BACKENDS_COW_H
#define LUNGATE_BACKENDS_COW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lungate/backstore.h"

extern const struct lg_backstore_ops lg_cow_backstore;

#define COW_DEFAULT_BLOCK (64u * 1024)
#define COW_NAME_MAX 200             /* longest escaped file name stem */

/* Normalize an initiator name for comparison (RFC 3722: case-insensitive):
 * lower-cased ASCII.  out must hold strlen(name)+1 bytes. */
void cow_name_normalize(const char *name, char *out);
/* The overlay file name stem of an initiator: normalized, then every byte
 * outside [a-z0-9.:_-] (and a leading '.') as %XX; names that would be longer
 * than COW_NAME_MAX end in '~' and a hash.  out holds COW_NAME_MAX+1 bytes. */
void cow_name_escape(const char *name, char *out);
/* Reverse of cow_name_escape for names that were not hashed; -EINVAL. */
int cow_name_unescape(const char *stem, char *out, size_t outlen);

/* What a listing shows of one overlay file. */
struct cow_info {
  char client[256];                  /* initiator name as first seen */
  uint64_t size;                     /* virtual size */
  uint64_t allocated;                /* bytes of the overlay in use */
  uint64_t last_use;                 /* unix time of the last session's end, or 0 */
  bool unclean;                      /* a session never ended: the gateway died */
  uint32_t block_size;
};

/* The template handle of a per-initiator cow storage object. */
bool cow_is_per_initiator(void *h);
uint64_t cow_quota(void *h);
/* Overlay file of a client (NULL: the shared overlay) into out. */
int cow_overlay_path(void *h, const char *client, char *out, size_t len);
/* The overlay directory of a cow handle. */
const char *cow_overlay_dir(void *h);
/* Read an overlay file's header and map summary (the file may be in use). */
int cow_info_read(const char *path, struct cow_info *info);
/* Record a client's session starting (live) or its last one ending now. */
void cow_touch(void *view, bool live);
/* Remove a client's overlay; -EBUSY if a process has it open. */
int cow_overlay_remove(void *h, const char *client);
/* Does a process (a running gateway) hold this overlay file open? */
bool cow_in_use(const char *path);
/* Allocated bytes of an open view. */
uint64_t cow_allocated(void *view);

/* A cow object with "overlay_pool" keeps its clients' layers as RBD clones in
 * Ceph (backends/rbd.c), not files: it has no overlay_dir, and these stand in
 * for the file calls above (cow_overlay_remove works on both). */
bool cow_in_ceph(void *h);
/* Call fn for every client's clone: path "rbd:POOL/IMAGE", info as for a file. */
int cow_clones_foreach(void *h, int (*fn)(const char *path, const struct cow_info *info,
                                          void *arg), void *arg);
/* A client's layer (its overlay file, or its clone): -ENOENT when it has none. */
int cow_client_info(void *h, const char *client, struct cow_info *info);
/* Does the client have a clone; does a live gateway (this one too) hold it? */
bool cow_clone_exists(void *h, const char *client);
bool cow_clone_live(void *h, const char *client);
/* Commit an open clone view to a new RBD image and snapshot ("POOL/IMAGE@SNAP");
 * -EINVAL for a view that is not a clone; the reason in err. */
int cow_clone_commit(void *view, const char *spec, char *err, size_t errlen);

#endif
