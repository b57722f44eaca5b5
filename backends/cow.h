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
#define COW_SUM_LEN 32               /* a base's identity, as an overlay header records it */

/* Normalize an initiator name for comparison (RFC 3722: case-insensitive):
 * lower-cased ASCII.  out must hold strlen(name)+1 bytes. */
void cow_name_normalize(const char *name, char *out);
/* The overlay file name stem of an initiator: normalized, then every byte
 * outside [a-z0-9.:_-] (and a leading '.') as %XX; names that would be longer
 * than COW_NAME_MAX end in '~' and a hash.  out holds COW_NAME_MAX+1 bytes. */
void cow_name_escape(const char *name, char *out);
/* Reverse of cow_name_escape for names that were not hashed; -EINVAL. */
int cow_name_unescape(const char *stem, char *out, size_t outlen);

/* A client's current boot, as its overlay records it (beside the last use):
 * the ISIDs of the sessions that boot has opened, the first one being the
 * login that started it, and whether a forced action fenced them off (their
 * logins get a failing disk; the next boot clears it).  See overlays.c for
 * the rule that tells a boot from a reconnect. */
#define COW_BOOT_ISIDS 8
struct cow_boot {
  uint8_t n;                         /* ISIDs recorded (the oldest go first) */
  uint8_t isid[COW_BOOT_ISIDS][6];
  bool fenced;
  bool clean;                        /* the last session ended with a Logout */
  uint64_t last_end;                 /* when it ended (unix time; 0: never) */
};

/* What a listing shows of one overlay file. */
struct cow_info {
  char client[256];                  /* initiator name as first seen */
  uint64_t size;                     /* virtual size */
  uint64_t allocated;                /* bytes of the overlay in use */
  uint64_t last_use;                 /* unix time of the last session's end, or 0 */
  bool unclean;                      /* a session never ended: the gateway died */
  uint32_t block_size;
  struct cow_boot boot;              /* the client's current boot (n 0: none recorded) */
  uint8_t base_sum[COW_SUM_LEN];     /* the identity of the base it was made over */
  bool have_sum;                     /* (a file's; an RBD clone has none) */
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
/* A client's record on a per-initiator template: its last use, live mark and
 * boot record, from its overlay file or its RBD clone's metadata; -ENOENT
 * when it has no layer (the other fields of info are a file's only). */
int cow_record_read(void *tmpl, const char *client, struct cow_info *info);
/* Record a client's session starting (live) or its last one ending now, and
 * its boot (NULL: none).  A start is made durable (fdatasync): a gateway that
 * loses power must still know a running client's ISIDs when it comes back. */
void cow_touch(void *view, bool live, const struct cow_boot *boot);
/* Remove a client's overlay; -EBUSY if a process has it open. */
int cow_overlay_remove(void *h, const char *client);
/* Give up the file name of an open view (a file overlay): the view keeps its
 * file, now nameless, and the next open of the client makes a fresh one;
 * 0 also when the name is gone already, -EOPNOTSUPP for an RBD clone. */
int cow_view_detach(void *view);
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
/* Does the client have a clone; does a live gateway (this one too) hold it? */
bool cow_clone_exists(void *h, const char *client);
bool cow_clone_live(void *h, const char *client);
/* The clients that have a clone (names lower-cased), without opening any
 * (lg_rbd_clones_list); when a client's clone last changed, -ENOENT when it
 * has none (lg_rbd_clone_changed). */
int cow_clone_names(void *h, int (*fn)(const char *client, void *arg), void *arg);
struct timespec;
int cow_clone_changed(void *h, const char *client, struct timespec *when);
/* Commit an open clone view to a new RBD image and snapshot ("POOL/IMAGE@SNAP");
 * -EINVAL for a view that is not a clone; the reason in err. */
int cow_clone_commit(void *view, const char *spec, char *err, size_t errlen);

/* Image versions of a per-initiator template ("versions", "current" and
 * "on_new_version" in its JSON; README "Image versions").  Without
 * "versions" the base object is the one version, id 0.  A layer is over the
 * version whose identity (sum) its header records; new layers are made over
 * the current one.  Versions are opened read-only with the base's plugin. */
uint32_t cow_current_version(void *tmpl);
/* "on_new_version": "keep": a booting client stays on its layer's version. */
bool cow_keep_old_version(void *tmpl);
/* The identity of the current version. */
int cow_current_sum(void *tmpl, uint8_t sum[COW_SUM_LEN]);
/* The id of the version with this identity, or -1. */
long cow_version_of_sum(void *tmpl, const uint8_t sum[COW_SUM_LEN]);
/* Is a layer over sum over another of its versions than the current (not
 * over a base it does not know)?  Is an open view over another than the current? */
bool cow_sum_outdated(void *tmpl, const uint8_t sum[COW_SUM_LEN]);
bool cow_view_outdated(void *view);
/* The ids of its versions (none without "versions"), at most max. */
size_t cow_version_ids(void *tmpl, uint32_t *ids, size_t max);
/* How many open views (sessions' layers) are over version id now. */
unsigned cow_version_views(void *tmpl, uint32_t id);
/* Open file as tmpl's base plugin would a version (read-only) and compute
 * its size and identity, calling progress as it reads; -1 with lg_set_error
 * (another logical block size than the base's is refused). */
int cow_probe_file(void *tmpl, const char *file, uint64_t *size, uint8_t sum[COW_SUM_LEN],
                   void (*progress)(void *arg, uint64_t done, uint64_t total), void *arg);
/* "0a1b...": 2*COW_SUM_LEN hex digits and a NUL. */
/* Does the RBD snapshot spec ("POOL/IMAGE@SNAP") exist, on the cluster of
 * t's base (an "overlay_pool" template): its size; -errno, the reason in err. */
int cow_probe_rbd(void *tmpl, const char *spec, uint64_t *size, char *err, size_t errlen);
/* The identity of an RBD snapshot version ("POOL/IMAGE@SNAP"): a hash of its name. */
void cow_spec_sum(const char *spec, uint8_t sum[COW_SUM_LEN]);
void cow_sum_hex(const uint8_t sum[COW_SUM_LEN], char out[2 * COW_SUM_LEN + 1]);
/* A reload that keeps the template open (only its versions changed): parse
 * and open the new versions of def (-1 with lg_set_error), then, once the
 * whole configuration loaded, finish: commit makes them the template's,
 * else they are dropped.  Views keep the versions they are over. */
int cow_versions_stage(void *tmpl, const json_t *def);
void cow_versions_finish(void *tmpl, bool commit);

#endif
