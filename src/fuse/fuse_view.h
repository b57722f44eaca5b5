/* The FUSE view: every LUN of a model, and every client's overlay of a
 * per-initiator LUN, as a plain image file (libfuse3, low-level API).
 *
 *   MOUNTPOINT/<target IQN>/<lun>/disk.img                (plain LUN)
 *   MOUNTPOINT/<target IQN>/<lun>/base.img                (per-initiator cow LUN)
 *   MOUNTPOINT/<target IQN>/<lun>/clients/<initiator>.img (a client's merged view)
 */
#ifndef LUNGATE_FUSE_VIEW_H
#define LUNGATE_FUSE_VIEW_H

#include <stdbool.h>

struct lg_model;
struct lg_fuse;

/* Mount the view of a running gateway's model on mountpoint (created if
 * missing; a stale mount left by a crash is unmounted first) and serve it
 * from threads of its own; returns once the mount is up.  With writable,
 * clients with no live iSCSI session can be written (into their overlays).
 * NULL with a message in *err (malloc'd).  Signals must be blocked in the
 * calling thread; the view's threads block them all. */
struct lg_fuse *lg_fuse_start(struct lg_model *m, const char *mountpoint, bool writable,
                              char **err);
/* Unmount, end the threads and drop every view the mount held.  NULL: no-op. */
void lg_fuse_stop(struct lg_fuse *f);

/* `lungate mount -c CONFIG MOUNTPOINT [--fuse-writable] [--foreground]`:
 * the same view with no gateway running.  argv[0] is "mount". */
int cmd_mount(int argc, char **argv);

#endif
