/* The rbd backstore (backends/rbd.c): Ceph RBD images through librbd. */
#ifndef LUNGATE_BACKENDS_RBD_H
#define LUNGATE_BACKENDS_RBD_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>
#include <jansson.h>

#include "lungate/backstore.h"

extern const struct lg_backstore_ops lg_rbd_backstore;
/* rtslib's tcmu "user" plugin with config "rbd/POOL/IMAGE...": an rbd object */
extern const struct lg_backstore_ops lg_rbd_user_backstore;

/* Open an rbd storage object from its JSON (the ->open of lg_rbd_backstore). */
void *lg_rbd_open_json(const json_t *so, const struct lg_bs_open_args *args);

/* tcmu-runner's "rbd/POOL/[NAMESPACE/]IMAGE[@SNAP];osd_op_timeout=N;conf=PATH;id=USER"
 * as the JSON of an rbd object (a new reference); NULL, with lg_set_error when
 * the string starts with "rbd/" but is malformed. */
json_t *lg_rbd_user_config(const char *config, const char *name);

/* Per-client clones of an rbd base snapshot, in another pool (a cow object with
 * "overlay_pool"): the template, on the base's cluster connection. */
struct lg_rbd_clones;
struct lg_rbd_clones *lg_rbd_clones_open(void *base_h, const char *name, const char *pool);
void lg_rbd_clones_close(struct lg_rbd_clones *t);
/* The clone image name of a client: "lungate.<storage object>+<client>", both
 * escaped one to one ([a-z0-9.:_-] kept, other bytes %XX; the client's name
 * lower-cased), so no two (object, client) pairs share a clone. */
int lg_rbd_clone_name(struct lg_rbd_clones *t, const char *client, char *out, size_t len);
/* Open a client's clone (created, format 2, when missing and not readonly),
 * check that its parent is the base snapshot and take its exclusive lock
 * (breaking, and so blocklisting, the lock of a dead owner; -EBUSY naming a
 * live one): a handle of lg_rbd_backstore's ops.  NULL with lg_set_error.
 * quota (bytes, 0: none) counts whole RBD objects the clone holds: writes
 * that would allocate objects past it fail with -EDQUOT. */
void *lg_rbd_clone_open(struct lg_rbd_clones *t, const char *client, bool readonly,
                        uint64_t quota, const char *from,
                        int (*accept)(void *arg, const char *parent), void *arg);
/* With image versions: a new clone is made from the snapshot from
 * ("POOL/IMAGE@SNAP", NULL: the base's), and a clone is used only when
 * accept(arg, its parent as "POOL/IMAGE@SNAP") returns 0.
 * lg_rbd_snap_probe: does the snapshot exist (its size); -errno, the reason in
 * err.  lg_rbd_clone_parent: a client's clone's parent as "POOL/IMAGE@SNAP". */
int lg_rbd_snap_probe(struct lg_rbd_clones *t, const char *spec, uint64_t *size, char *err,
                      size_t errlen);
int lg_rbd_clone_parent(struct lg_rbd_clones *t, const char *client, char *out, size_t len);
/* Bytes a clone holds itself; its last use recorded in its image metadata,
 * and with it boot (NULL: left as it is) as "lungate.boot" (the cow layer's
 * boot record, which it encodes). */
uint64_t lg_rbd_allocated(void *h);
void lg_rbd_touch(void *h, bool live, const char *boot);
/* One metadata value of a client's clone into out: -ENOENT when the clone
 * or the key is missing. */
int lg_rbd_clone_meta(struct lg_rbd_clones *t, const char *client, const char *key, char *out,
                      size_t len);

/* One client's clone, as a listing shows it. */
struct lg_rbd_clone_info {
  char path[1200];                 /* "rbd:POOL/IMAGE" */
  char client[256];                /* initiator name as first seen (lungate.client) */
  uint64_t size, allocated, obj_size;
  uint64_t last_use;               /* unix time (lungate.last_use), 0: unknown */
  bool live_mark;                  /* last_use says a session was running */
  bool live;                       /* its lock is held by a live client now */
  char parent[1200];               /* "POOL/IMAGE@SNAP" it is a clone of ("": unknown) */
};
/* Call fn for every clone of the template in its pool. */
int lg_rbd_clones_foreach(struct lg_rbd_clones *t,
                          int (*fn)(const struct lg_rbd_clone_info *ci, void *arg), void *arg);
/* Call fn with the initiator name (lower-cased, as the clone's name has it)
 * of every clone of the template, from the pool's image list only: no clone
 * is opened.  Stops at fn's first non-zero return, which it returns. */
int lg_rbd_clones_list(struct lg_rbd_clones *t, int (*fn)(const char *client, void *arg),
                       void *arg);
/* When a client's clone last changed: a clone open in this process (a
 * session's, the FUSE view's) tells it from its own writes, to the
 * nanosecond; another is opened read-only for its modify timestamp.
 * -ENOENT when the client has no clone. */
int lg_rbd_clone_changed(struct lg_rbd_clones *t, const char *client, struct timespec *when);
/* Whether a client's clone exists, and whether a live client holds its lock. */
int lg_rbd_clone_state(struct lg_rbd_clones *t, const char *client, bool *exists, bool *live);
/* Copy a clone handle's disk to a new flat image POOL/IMAGE and snapshot it
 * (spec "POOL/IMAGE@SNAP"); never overwrites; -errno with the reason in err. */
int lg_rbd_commit(void *h, const char *spec, char *err, size_t errlen);
/* Remove a client's clone: -ENOENT, or -EBUSY while a live client holds it. */
int lg_rbd_clone_remove(struct lg_rbd_clones *t, const char *client);
/* An open client clone (a handle of lg_rbd_clone_open) gives up its name:
 * renamed "lungate-detached.ID" in its pool, it serves its handle on and is
 * removed when that closes; the client's next open makes a new clone. */
int lg_rbd_detach(void *h);

#endif
