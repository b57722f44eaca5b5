/* The control socket: a running gateway answers JSON requests, one a line,
 * on a Unix socket (mode 0600), and the `lungate ls|sessions|overlays|
 * overlay|save|reload` commands ask it.  The protocol is in README.md. */
#ifndef LUNGATE_CTL_CTL_H
#define LUNGATE_CTL_CTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <jansson.h>

struct lg_server;
struct lg_ctl;

/* $LUNGATE_CONTROL when set, else /run/lungate/lungate.sock for root, else
 * $XDG_RUNTIME_DIR/lungate.sock; NULL when there is no such place. */
const char *lg_ctl_default_path(void);

/* Bind the control socket at path (NULL: the default), before the portals
 * listen, so it is there once they accept.  A socket another gateway still
 * serves is never taken; a stale one is replaced.  NULL with a message in
 * *err; NULL with *err NULL when the default socket belongs to another
 * gateway (this one then runs without). */
struct lg_ctl *lg_ctl_open(const char *path, char **err);
/* Answer requests about srv from a thread of its own; -1 if it cannot start. */
int lg_ctl_serve(struct lg_ctl *c, struct lg_server *srv);
/* Answer one request (a JSON object with "cmd") about srv, as the control
 * socket does: the one implementation the socket and the web console share.
 * Returns a new object ({"ok": true, ...} or {"ok": false, "error": ...}). */
json_t *lg_ctl_request(struct lg_server *srv, const json_t *req);
/* Stop answering and remove the socket.  NULL: no-op. */
void lg_ctl_stop(struct lg_ctl *c);

/* Client side.  Connect to a gateway's socket: fd, or -1 with *err. */
int lg_ctl_connect(const char *path, char **err);
/* For commands that can also work on a config offline: control given: its
 * fd, or -2 with *err when it does not answer.  Otherwise the default
 * socket's fd when a gateway answers there and (with config) serves that
 * config file; else -1 (work offline). */
int lg_ctl_connect_for(const char *control, const char *config, char **err);
/* Send one request and read its response (NULL with *err on failure). */
json_t *lg_ctl_call(int fd, const json_t *req, char **err);
/* The same, for a request with "progress": true: the gateway's progress
 * lines ({"progress": {...}}) before the answer go to fn (NULL: ignored). */
json_t *lg_ctl_call_progress(int fd, const json_t *req, char **err,
                             void (*fn)(void *arg, const json_t *progress), void *arg);
/* path made absolute against the current directory, in buf. */
const char *lg_ctl_abspath(const char *path, char *buf, size_t len);

/* `lungate PATH VERB ARGS...`, `lungate ls [PATH]`, `lungate saveconfig
 * [FILE]` (targetcli's object commands, admin_cli.c); argv: the words after
 * "lungate", options anywhere. */
int cmd_admin(int argc, char **argv);
void lg_admin_usage(FILE *f);

/* `lungate sessions|overlays|save|reload|restore`; argv[0] is the subcommand. */
int cmd_ctl(int argc, char **argv);

/* client.c: print a cluster object (lg_cluster_json) for people. */
void lg_ctl_print_cluster(const json_t *cluster);

/* cluster_cmd.c: the initiators with a Normal session here (a new array of
 * names), which the cluster's heartbeat publishes. */
json_t *lg_ctl_cluster_clients(void);
/* The "drain" request: stop taking clients and move each one off, one at a
 * time (an Async Message asks it to log out; it logs in again through the
 * entry point), waiting up to wait_s for each. */
json_t *lg_ctl_drain(unsigned wait_s);

#endif
