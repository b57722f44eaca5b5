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
/* The model new connections get (a reference: lg_model_unref it). */
struct lg_model *lg_server_model(struct lg_server *s);
/* Load the config file again (or file, which becomes the config file) and
 * serve it to new logins (SIGHUP, the control socket); existing sessions
 * keep the model they logged in with.  0 with a summary in *msg, or -1 with
 * why in *msg (the running configuration stays); *msg is malloc'd. */
int lg_server_reload(struct lg_server *s, const char *file, char **msg);

/* The same from a config in memory (an object command): applied only if the
 * model is still at generation; the config file stays the same. */
int lg_server_apply(struct lg_server *s, const char *file, const json_t *config,
                    unsigned generation, char **msg);
/* The --listen addresses ("ADDR:PORT", "[V6]:PORT"), when given; up to max. */
size_t lg_server_listen_given(struct lg_server *s, const char **names, size_t max);

/* Split "ADDR:PORT", "[V6]:PORT" or "ADDR" into host and port; -EINVAL. */
int lg_parse_hostport(const char *s, char *host, size_t hostlen, unsigned *port);

#endif
