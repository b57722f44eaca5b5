/* Helpers shared by the backstores and the registry. */
#ifndef LUNGATE_BACKENDS_COMMON_H
#define LUNGATE_BACKENDS_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "lungate/backstore.h"

extern const struct lg_backstore_ops lg_file_backstore;
extern const struct lg_backstore_ops lg_nbd_backstore;
extern const struct lg_backstore_ops lg_qcow2_backstore;
extern const struct lg_backstore_ops lg_user_backstore;      /* backends/user.c */
extern const struct lg_backstore_ops lg_user_qcow_backstore; /* its "qcow/PATH" (nbd.c) */

/* Read an optional non-negative integer key (absent leaves *out alone).
 * Accepts JSON integers and decimal strings; -EINVAL otherwise. */
int lg_json_get_u64(const json_t *obj, const char *key, uint64_t *out);

/* Join a relative path onto dir (absolute paths pass through); -ENAMETOOLONG. */
int lg_resolve_path(char *out, size_t outlen, const char *dir, const char *path);

/* pread all n bytes at off (zeroes past the end of the file); with nowait,
 * only from the page cache (RWF_NOWAIT): -EAGAIN if it would block. */
int lg_pread_full(int fd, void *buf, size_t n, uint64_t off, bool nowait);

#endif
