/* The gateway's network side: listening portals, one thread per connection,
 * the worker pool that runs complete commands, and clean shutdown. */
#ifndef LUNGATE_ISCSI_SERVER_H
#define LUNGATE_ISCSI_SERVER_H

#include <stddef.h>

#include "target/model.h"

struct lg_server;

/* Listen on the given "ADDR:PORT" strings, or on the model's portals when
 * n_listen is 0.  NULL with a message in *err (malloc'd). */
struct lg_server *lg_server_new(struct lg_model *model, char *const *listen,
                                size_t n_listen, char **err);
/* Serve until SIGTERM or SIGINT (which must be blocked in every thread);
 * in-flight commands finish before it returns. */
int lg_server_run(struct lg_server *s);
void lg_server_free(struct lg_server *s);

/* Split "ADDR:PORT", "[V6]:PORT" or "ADDR" into host and port; -EINVAL. */
int lg_parse_hostport(const char *s, char *host, size_t hostlen, unsigned *port);

#endif
