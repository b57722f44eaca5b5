/* The rbd backstore (backends/rbd.c): Ceph RBD images through librbd. */
#ifndef LUNGATE_BACKENDS_RBD_H
#define LUNGATE_BACKENDS_RBD_H

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

#endif
