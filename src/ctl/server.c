/* The gateway's control socket: one thread accepts connections on a Unix
 * socket and answers their requests in turn, each a JSON object on one line
 * ({"cmd": "ls"}), each answer a JSON object on one line ({"ok": true, ...}
 * or {"ok": false, "error": "..."}).
 *
 * Requests see the current model (lg_server_model) and the session registry;
 * overlay operations run here, in the gateway, so that a forced reset can log
 * a client out and keep it out until its overlay is gone.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "cluster/cluster.h"
#include "ctl/ctl.h"
#include "iscsi/iscsi.h"
#include "iscsi/server.h"
#include "target/admin.h"
#include "target/image_cmd.h"
#include "target/model.h"
#include "target/overlay_cmd.h"
#include "util/log.h"

#define CTL_LINE_MAX (1 << 20)       /* longest request */
#define CTL_CLIENT_TIMEOUT_SEC 10    /* a client must send its request within this */

struct lg_ctl {
  struct lg_server *srv;
  char *path;
  int lfd, lockfd;
  int stop[2];                       /* a pipe: written to stop the thread */
  pthread_t thread;
  bool running;                      /* the thread was started */
};

/* ---- requests ---- */

static json_t *error_res(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static json_t *error_res(const char *fmt, ...)
{
  char buf[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  return json_pack("{s:b,s:s}", "ok", 0, "error", buf);
}

static json_t *storage_json(const struct lg_storage *so)
{
  json_t *j = json_pack("{s:s,s:s,s:I,s:i,s:b,s:b}", "plugin", so->plugin, "name", so->name,
                        "size", (json_int_t)so->size, "block_size", (int)so->block_size,
                        "readonly", so->readonly, "per_initiator", so->per_initiator);
  const char *keys[] = { "dev", "uri", "base", "overlay_dir", "config" };
  for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
    json_t *v = json_object_get(so->def, keys[i]);
    if (json_is_string(v))
      json_object_set(j, keys[i], v);
  }
  return j;
}

/* CHAP secrets (keys ending in "password") replaced, in place. */
static void redact_secrets(json_t *j)
{
  const char *key;
  json_t *v;
  size_t i;
  if (json_is_array(j)) {
    json_array_foreach(j, i, v)
      redact_secrets(v);
    return;
  }
  json_object_foreach(j, key, v) {
    size_t n = strlen(key);
    if (n >= 8 && !strcmp(key + n - 8, "password") && json_is_string(v) &&
        *json_string_value(v))
      json_object_set_new(j, key, json_string("(secret)"));
    else
      redact_secrets(v);
  }
}

/* The tree of a model: storage objects, targets, TPGs, portals, LUNs, ACLs. */
static json_t *req_ls(struct lg_model *m)
{
  json_t *sos = json_array(), *targets = json_array();
  for (size_t i = 0; i < m->n_storage; i++)
    json_array_append_new(sos, storage_json(m->storage[i]));
  for (size_t i = 0; i < m->n_targets; i++) {
    struct lg_target *t = &m->targets[i];
    json_t *tpgs = json_array();
    for (size_t k = 0; k < t->n_tpgs; k++) {
      struct lg_tpg *g = &t->tpgs[k];
      json_t *portals = json_array(), *luns = json_array(), *acls = json_array();
      for (size_t p = 0; p < g->n_portals; p++)
        json_array_append_new(portals, json_pack("{s:s,s:i}", "ip_address", g->portals[p].ip,
                                                 "port", (int)g->portals[p].port));
      for (size_t l = 0; l < g->n_luns; l++) {
        char ref[300];
        snprintf(ref, sizeof ref, "/backstores/%s/%s", g->luns[l].so->plugin, g->luns[l].so->name);
        json_array_append_new(luns, json_pack("{s:I,s:s,s:I,s:b,s:b}", "index",
                                              (json_int_t)g->luns[l].index, "storage_object", ref,
                                              "size", (json_int_t)g->luns[l].so->size,
                                              "readonly", g->luns[l].so->readonly,
                                              "per_initiator", g->luns[l].so->per_initiator));
      }
      for (size_t a = 0; a < g->n_acls; a++) {
        struct lg_acl *acl = &g->acls[a];
        json_t *mapped = json_array();
        for (size_t n = 0; n < acl->n_mapped; n++)
          json_array_append_new(mapped, json_pack("{s:I,s:I,s:b}", "index",
                                                  (json_int_t)acl->mapped[n].index, "tpg_lun",
                                                  (json_int_t)acl->mapped[n].tpg_lun,
                                                  "write_protect", acl->mapped[n].write_protect));
        json_array_append_new(acls, json_pack("{s:s,s:o,s:b,s:b}", "node_wwn", acl->node_wwn,
                                              "mapped_luns", mapped, "chap",
                                              acl->chap.userid != NULL, "allowed_addresses",
                                              acl->allowed != NULL));
      }
      json_array_append_new(tpgs, json_pack("{s:i,s:b,s:b,s:b,s:b,s:o,s:o,s:o}", "tag",
                                            (int)g->tag, "enable", g->enable,
                                            "generate_node_acls", g->generate_node_acls,
                                            "authentication", g->authentication, "chap",
                                            g->chap.userid != NULL, "portals", portals, "luns",
                                            luns, "node_acls", acls));
    }
    json_array_append_new(targets, json_pack("{s:s,s:o}", "wwn", t->iqn, "tpgs", tpgs));
  }
  json_t *cfg = json_deep_copy(m->json); /* for targetcli's tree; no secrets */
  redact_secrets(cfg);
  return json_pack("{s:b,s:s?,s:i,s:o,s:o,s:o*}", "ok", 1, "config", m->path, "generation",
                   (int)m->generation, "storage_objects", sos, "targets", targets,
                   "saveconfig", cfg);
}

static void session_one(struct iscsi_session *s, void *arg)
{
  json_t *luns = json_array();
  for (size_t i = 0; i < s->n_luns; i++) {
    char ref[300];
    snprintf(ref, sizeof ref, "%s/%s", s->luns[i].so->plugin, s->luns[i].so->name);
    json_array_append_new(luns, json_pack("{s:I,s:s,s:b}", "lun", (json_int_t)s->luns[i].index,
                                          "storage", ref, "overlay", s->luns[i].overlay != NULL));
  }
  char isid[16];
  snprintf(isid, sizeof isid, "%02x%02x%02x%02x%02x%02x", s->isid[0], s->isid[1], s->isid[2],
           s->isid[3], s->isid[4], s->isid[5]);
  json_array_append_new(arg, json_pack(
    "{s:s,s:s?,s:s,s:s?,s:b,s:i,s:s,s:I,s:I,s:I,s:o}", "initiator", s->initiator,
    "alias", s->alias, "peer", s->conn->peer, "target", s->target ? s->target->iqn : NULL,
    "discovery", s->discovery, "tsih", (int)s->tsih, "isid", isid, "since",
    (json_int_t)s->since, "bytes_read", (json_int_t)atomic_load(&s->bytes_read),
    "bytes_written", (json_int_t)atomic_load(&s->bytes_written), "luns", luns));
}

struct logout_arg {
  const struct lg_storage *tmpl;
  const char *initiator;
  int n;
};

static void logout_one(struct iscsi_session *s, void *arg)
{
  struct logout_arg *a = arg;
  if (s->discovery || strcasecmp(s->initiator, a->initiator))
    return;
  for (size_t i = 0; i < s->n_luns; i++)
    if (s->luns[i].overlay && lg_overlay_template(s->luns[i].overlay) == a->tmpl) {
      /* the connection's thread sees the close, finishes the commands in
       * flight and frees the session, which releases the overlay */
      lg_kv(LG_INFO, "control: closing a session", "initiator=%s peer=%s tsih=%u",
            s->initiator_log, s->conn->peer, s->tsih);
      iscsi_conn_shutdown(s->conn);
      a->n++;
      return;
    }
}

/* lg_ovl_ctx.logout: end every session of initiator that uses tmpl. */
static int ctl_logout(const struct lg_storage *tmpl, const char *initiator, void *arg)
{
  (void)arg;
  struct logout_arg a = { tmpl, initiator, 0 };
  iscsi_sessions_foreach(logout_one, &a);
  return a.n;
}

/* The control connection that asked for progress lines, in the thread that
 * answers it (-1: none; the web console's requests never do). */
static __thread int ctl_progress_fd = -1;

/* lg_ovl_ctx.on_progress: one line {"progress": {...}} before the answer. */
static void ctl_progress(void *parg, const char *initiator, uint64_t done, uint64_t total)
{
  int fd = *(int *)parg;
  char *text = NULL;
  json_t *p = json_pack("{s:{s:s,s:I,s:I}}", "progress", "initiator", initiator, "done",
                        (json_int_t)done, "total", (json_int_t)total);
  if (p)
    text = json_dumps(p, JSON_COMPACT);
  json_decref(p);
  if (text && (write(fd, text, strlen(text)) < 0 || write(fd, "\n", 1) < 0))
    lg_warn("control: cannot send progress: %s", strerror(errno));
  free(text);
}

static json_t *req_overlay(struct lg_model *m, const char *cmd, const json_t *req)
{
  int pfd = ctl_progress_fd;
  struct lg_ovl_ctx x = { .m = m, .logout = ctl_logout };
  if (pfd >= 0 && json_is_true(json_object_get(req, "progress"))) {
    x.on_progress = ctl_progress;
    x.parg = &pfd;
  }
  const char *name = json_string_value(json_object_get(req, "name"));
  const char *ini = json_string_value(json_object_get(req, "initiator"));
  const char *file = json_string_value(json_object_get(req, "file"));
  bool force = json_is_true(json_object_get(req, "force"));
  if (!strcmp(cmd, "overlays") || !strcmp(cmd, "overlay-list"))
    return lg_ovl_list(&x, name);
  if (!strcmp(cmd, "overlay-reset"))
    return lg_ovl_reset(&x, name, ini, force);
  if (!strcmp(cmd, "overlay-commit")) {
    if (!ini || !file || (*file != '/' && strncmp(file, "rbd:", 4)))
      return error_res("overlay-commit needs \"initiator\" and an absolute \"file\" "
                       "(or rbd:POOL/IMAGE@SNAP)");
    return lg_ovl_commit(&x, name, ini, file, force);
  }
  json_t *days = json_object_get(req, "days");
  if (!json_is_integer(days) || json_integer_value(days) < 0)
    return error_res("overlay-gc needs \"days\" (a number of days, 0 or more)");
  return lg_ovl_gc(&x, name, (long)json_integer_value(days),
                   json_is_true(json_object_get(req, "dry_run")));
}

/* An image command's new configuration in a running gateway: saved to the
 * config file first (versions a client's layer may soon be over must
 * survive a restart or a power cut), then applied as a reload; when that
 * fails, the file gets the running configuration back. */
struct img_commit {
  struct lg_server *srv;
  struct lg_model *m;
};

static int img_commit(void *arg, const json_t *cfg, char **why)
{
  struct img_commit *c = arg;
  *why = NULL;
  if (!c->m->path) {
    if (asprintf(why, "the gateway was started without a config file (--image): image "
                 "versions need one to be recorded in") < 0)
      *why = NULL;
    return -1;
  }
  int r = lg_json_save(cfg, c->m->path);
  if (r < 0) {
    if (asprintf(why, "writing %s: %s", c->m->path, strerror(-r)) < 0)
      *why = NULL;
    return -1;
  }
  if (lg_server_apply(c->srv, NULL, cfg, c->m->generation, why) < 0) {
    lg_json_save(c->m->json, c->m->path);
    return -1;
  }
  free(*why); /* (what the reload changed, logged already) */
  *why = NULL;
  return 0;
}

static json_t *req_image(struct lg_server *srv, struct lg_model *m, const char *cmd,
                         const json_t *req)
{
  int pfd = ctl_progress_fd;
  struct img_commit ic = { srv, m };
  struct lg_img_ctx x = { .ovl = { .m = m, .logout = ctl_logout }, .commit = img_commit,
                          .carg = &ic };
  if (pfd >= 0 && json_is_true(json_object_get(req, "progress"))) {
    x.ovl.on_progress = ctl_progress;
    x.ovl.parg = &pfd;
  }
  const char *name = json_string_value(json_object_get(req, "name"));
  const char *file = json_string_value(json_object_get(req, "file"));
  const char *ini = json_string_value(json_object_get(req, "initiator"));
  if (!name)
    return error_res("%s needs \"name\" (a cow storage object)", cmd);
  if (!strcmp(cmd, "image-list"))
    return lg_img_list(&x, name);
  if (!strcmp(cmd, "image-publish")) {
    if ((!file && !ini) || (file && *file != '/' && strncmp(file, "rbd:", 4)))
      return error_res("image-publish needs an absolute \"file\", an RBD snapshot "
                       "(\"rbd:POOL/IMAGE@SNAP\") or an \"initiator\"");
    return lg_img_publish(&x, name, file, ini,
                          json_string_value(json_object_get(req, "note")),
                          json_is_true(json_object_get(req, "force")));
  }
  if (!strcmp(cmd, "image-rollback")) {
    json_t *v = json_object_get(req, "version");
    if (!json_is_integer(v))
      return error_res("image-rollback needs \"version\"");
    return lg_img_rollback(&x, name, (long)json_integer_value(v));
  }
  if (!strcmp(cmd, "image-prune")) {
    json_t *k = json_object_get(req, "keep");
    return lg_img_prune(&x, name, json_is_integer(k) ? (long)json_integer_value(k) : 0,
                        json_is_true(json_object_get(req, "dry_run")));
  }
  return error_res("unknown command \"%s\"", cmd);
}

/* A targetcli object command (target/admin.c) on the running configuration,
 * applied as a reload: new logins see it, running sessions keep theirs. */
static json_t *req_admin(struct lg_server *srv, struct lg_model *m, const json_t *req)
{
  const char *path = json_string_value(json_object_get(req, "path"));
  const char *verb = json_string_value(json_object_get(req, "verb"));
  json_t *args = json_object_get(req, "args"), *a;
  const char *argv[64];
  size_t argc = 0, i;
  if (!path)
    return error_res("admin needs \"path\" (and \"verb\", \"args\")");
  json_array_foreach(args, i, a) {
    if (!json_is_string(a) || argc == 64)
      return error_res("admin: \"args\" must be up to 64 strings");
    argv[argc++] = json_string_value(a);
  }
  const char *portals[16];
  struct lg_admin_ctx ctx = { .cwd = json_string_value(json_object_get(req, "cwd")),
                              .portals = portals };
  ctx.n_portals = lg_server_listen_given(srv, portals, 16);
  json_t *out = NULL;
  char *msg = NULL, *why = NULL;
  json_t *res;
  if (lg_admin_run(m->json, &ctx, path, verb, argc, argv, &out, &msg) < 0) {
    res = error_res("%s", msg ? msg : "out of memory");
  } else if (out && lg_server_apply(srv, NULL, out, m->generation, &why) < 0) {
    res = error_res("%s %s: not applied, the running configuration stays: %s", path,
                    verb ? verb : "", why ? why : "out of memory");
  } else {
    res = json_pack("{s:b,s:s}", "ok", 1, "message", msg ? msg : "");
    if (out)
      lg_info("control: %s %s: %s", path, verb ? verb : "", msg ? msg : "");
  }
  free(msg);
  free(why);
  json_decref(out);
  return res;
}

/* Serializes the requests that change things: the control socket answers
 * one client at a time, but the web console asks from its own threads. */
static pthread_mutex_t change_lock = PTHREAD_MUTEX_INITIALIZER;

static json_t *handle(struct lg_server *srv, const json_t *req);

json_t *lg_ctl_request(struct lg_server *srv, const json_t *req)
{
  const char *cmd = json_string_value(json_object_get(req, "cmd"));
  bool reads = cmd && (!strcmp(cmd, "hello") || !strcmp(cmd, "ls") || !strcmp(cmd, "sessions") ||
                       !strcmp(cmd, "overlays") || !strcmp(cmd, "overlay-list") ||
                       !strcmp(cmd, "image-list"));
  if (reads)
    return handle(srv, req);
  pthread_mutex_lock(&change_lock);
  json_t *res = handle(srv, req);
  pthread_mutex_unlock(&change_lock);
  return res;
}

static json_t *handle(struct lg_server *srv, const json_t *req)
{
  const char *cmd = json_string_value(json_object_get(req, "cmd"));
  if (!cmd)
    return error_res("a request is a JSON object with \"cmd\" (hello, ls, sessions, "
                     "overlays, overlay-reset, overlay-commit, overlay-gc, image-list, image-publish, "
                     "image-rollback, image-prune, save, reload, restore, admin)");
  if (!strcmp(cmd, "reload") || !strcmp(cmd, "restore")) {
    const char *file = json_string_value(json_object_get(req, "file"));
    if (!strcmp(cmd, "restore") && (!file || *file != '/'))
      return error_res("restore needs an absolute \"file\"");
    char *msg = NULL;
    int r = lg_server_reload(srv, !strcmp(cmd, "restore") ? file : NULL, &msg);
    json_t *res = r < 0 ? error_res("reload failed, the running configuration stays: %s",
                                    msg ? msg : "out of memory")
                        : json_pack("{s:b,s:s?}", "ok", 1, "message", msg);
    free(msg);
    return res;
  }
  struct lg_model *m = lg_server_model(srv);
  json_t *res;
  char abs[PATH_MAX];
  if (!strcmp(cmd, "hello")) { /* the config's path, absolute: clients compare it with theirs */
    res = json_pack("{s:b,s:s?,s:i,s:i,s:s}", "ok", 1, "config",
                    m->path && realpath(m->path, abs) ? abs : m->path, "pid", (int)getpid(),
                    "generation", (int)m->generation, "version", "0.1.0");
  } else if (!strcmp(cmd, "ls")) {
    res = req_ls(m);
    json_t *cj = lg_cluster_json();
    if (cj && res)
      json_object_set_new(res, "cluster", cj);
    else
      json_decref(cj);
  } else if (!strcmp(cmd, "drain")) {
    json_t *w = json_object_get(req, "wait");
    res = lg_ctl_drain(json_is_integer(w) && json_integer_value(w) > 0
                       ? (unsigned)json_integer_value(w) : 10);
  } else if (!strcmp(cmd, "admin")) {
    res = req_admin(srv, m, req);
  } else if (!strcmp(cmd, "sessions")) {
    json_t *arr = json_array();
    iscsi_sessions_foreach(session_one, arr);
    res = json_pack("{s:b,s:o,s:o*}", "ok", 1, "sessions", arr, "cluster", lg_cluster_json());
  } else if (!strcmp(cmd, "overlays") || !strncmp(cmd, "overlay-", 8)) {
    res = req_overlay(m, cmd, req);
  } else if (!strncmp(cmd, "image-", 6)) {
    res = req_image(srv, m, cmd, req);
  } else if (!strcmp(cmd, "save")) {
    const char *file = json_string_value(json_object_get(req, "file"));
    if (!file)
      file = m->path;
    int r = file && *file == '/' ? lg_model_save(m, file) : -EINVAL;
    if (!file)
      res = error_res("the gateway was started without a config file; name the file "
                      "to write");
    else if (r < 0)
      res = error_res("%s: %s", file, r == -EINVAL ? "give an absolute path"
                                                         : strerror(-r));
    else
      res = json_pack("{s:b,s:s}", "ok", 1, "file", file);
    if (r == 0)
      lg_info("control: saved the configuration (generation %u) to %s", m->generation, file);
  } else {
    res = error_res("unknown command \"%s\"", cmd);
  }
  lg_model_unref(m);
  return res;
}

/* Answer one client: requests until it closes. */
static void serve_client(struct lg_ctl *c, int fd)
{
  struct ucred cred;
  socklen_t clen = sizeof cred;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) < 0 ||
      (cred.uid != 0 && cred.uid != geteuid())) {
    lg_warn("control: refused a client of uid %d", (int)cred.uid);
    return;
  }
  struct timeval tv = { .tv_sec = CTL_CLIENT_TIMEOUT_SEC };
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  char *buf = malloc(CTL_LINE_MAX);
  size_t have = 0;
  while (buf) {
    char *nl = memchr(buf, '\n', have);
    if (!nl) {
      if (have == CTL_LINE_MAX)
        break;
      ssize_t n = read(fd, buf + have, CTL_LINE_MAX - have);
      if (n <= 0)
        break;
      have += (size_t)n;
      continue;
    }
    json_error_t je;
    json_t *req = json_loadb(buf, (size_t)(nl - buf), 0, &je);
    ctl_progress_fd = fd;
    json_t *res = json_is_object(req) ? lg_ctl_request(c->srv, req)
                                      : error_res("not a JSON object: %s", je.text);
    ctl_progress_fd = -1;
    json_decref(req);
    char *text = json_dumps(res, JSON_COMPACT);
    json_decref(res);
    bool ok = text && write(fd, text, strlen(text)) == (ssize_t)strlen(text) &&
              write(fd, "\n", 1) == 1;
    free(text);
    if (!ok)
      break;
    have -= (size_t)(nl + 1 - buf);
    memmove(buf, nl + 1, have);
  }
  free(buf);
}

static void *ctl_main(void *arg)
{
  struct lg_ctl *c = arg;
  struct pollfd pfd[2] = { { .fd = c->lfd, .events = POLLIN }, { .fd = c->stop[0], .events = POLLIN } };
  for (;;) {
    if (poll(pfd, 2, -1) < 0 && errno != EINTR)
      break;
    if (pfd[1].revents)
      break;
    if (!(pfd[0].revents & POLLIN))
      continue;
    int fd = accept4(c->lfd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0)
      continue;
    serve_client(c, fd);
    close(fd);
  }
  return NULL;
}

/* ---- the socket ---- */

const char *lg_ctl_default_path(void)
{
  static char path[256];
  const char *xdg = getenv("XDG_RUNTIME_DIR"), *env = getenv("LUNGATE_CONTROL");
  if (env && *env == '/' && strlen(env) < sizeof path)
    snprintf(path, sizeof path, "%s", env);
  else if (geteuid() == 0)
    snprintf(path, sizeof path, "/run/lungate/lungate.sock");
  else if (xdg && *xdg == '/' && strlen(xdg) < 200)
    snprintf(path, sizeof path, "%s/lungate.sock", xdg);
  else
    return NULL;
  return path;
}

static int unix_addr(const char *path, struct sockaddr_un *sa)
{
  memset(sa, 0, sizeof *sa);
  sa->sun_family = AF_UNIX;
  if (strlen(path) >= sizeof sa->sun_path)
    return -ENAMETOOLONG;
  memcpy(sa->sun_path, path, strlen(path));
  return 0;
}

int lg_ctl_connect(const char *path, char **err)
{
  struct sockaddr_un sa;
  int fd = -1;
  if (unix_addr(path, &sa) < 0) {
    errno = ENAMETOOLONG;
  } else if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) >= 0 &&
             connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0) {
    return fd;
  }
  int e = errno;
  if (fd >= 0)
    close(fd);
  if (err && asprintf(err, "control socket %s: %s%s", path, strerror(e),
                      e == ENOENT || e == ECONNREFUSED
                      ? " (is the gateway running, and with this --control?)" : "") < 0)
    *err = NULL;
  errno = e;
  return -1;
}

struct lg_ctl *lg_ctl_open(const char *path, char **err)
{
  *err = NULL;
  bool is_default = !path;
  if (!path && !(path = lg_ctl_default_path())) {
    lg_info("no control socket: not root and XDG_RUNTIME_DIR is not set (give --control PATH)");
    return NULL;
  }
  if (is_default && geteuid() == 0 && mkdir("/run/lungate", 0700) < 0 && errno != EEXIST) {
    lg_warn("no control socket: /run/lungate: %s", strerror(errno));
    return NULL;
  }
  struct lg_ctl *c = calloc(1, sizeof *c);
  char *lockpath = NULL;
  struct sockaddr_un sa;
  if (!c || !(c->path = strdup(path)) || asprintf(&lockpath, "%s.lock", path) < 0) {
    lockpath = NULL;
    goto oom;
  }
  c->lfd = c->lockfd = c->stop[0] = c->stop[1] = -1;
  if (unix_addr(path, &sa) < 0) {
    if (asprintf(err, "--control %s: the path is too long for a Unix socket", path) < 0)
      *err = NULL;
    goto fail;
  }
  /* the lock file says which gateway owns the socket; a socket that still
   * answers is never taken, one nobody holds is stale and replaced */
  c->lockfd = open(lockpath, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  int live = lg_ctl_connect(path, NULL);
  if (live >= 0)
    close(live);
  if (c->lockfd < 0 || live >= 0 || flock(c->lockfd, LOCK_EX | LOCK_NB) < 0) {
    int e = errno;
    if (is_default && (live >= 0 || e == EWOULDBLOCK)) {
      lg_info("the control socket %s belongs to another running gateway; this one runs "
              "without one (give --control PATH for one of its own)", path);
    } else if (asprintf(err, "--control %s: %s", path, live >= 0 || e == EWOULDBLOCK
                        ? "another gateway serves this control socket; stop it or give "
                          "another path" : strerror(e)) < 0) {
      *err = NULL;
    }
    goto fail;
  }
  unlink(path); /* stale */
  c->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  mode_t old = umask(0177);
  int r = c->lfd < 0 ? -1 : bind(c->lfd, (struct sockaddr *)&sa, sizeof sa);
  umask(old);
  if (r < 0 || chmod(path, 0600) < 0 || listen(c->lfd, 16) < 0 || pipe2(c->stop, O_CLOEXEC) < 0) {
    if (asprintf(err, "--control %s: %s", path, strerror(errno)) < 0)
      *err = NULL;
    goto fail;
  }
  free(lockpath);
  return c;
oom:
  if (asprintf(err, "out of memory") < 0)
    *err = NULL;
fail:
  if (c && c->lfd >= 0) {
    close(c->lfd);
    unlink(path);
  }
  if (c && c->lockfd >= 0)
    close(c->lockfd);
  if (c && c->stop[0] >= 0) {
    close(c->stop[0]);
    close(c->stop[1]);
  }
  if (c)
    free(c->path);
  free(c);
  free(lockpath);
  return NULL;
}

int lg_ctl_serve(struct lg_ctl *c, struct lg_server *srv)
{
  c->srv = srv;
  if (pthread_create(&c->thread, NULL, ctl_main, c)) {
    lg_err("control socket %s: cannot start its thread", c->path);
    return -1;
  }
  c->running = true;
  lg_info("control socket %s", c->path);
  return 0;
}

void lg_ctl_stop(struct lg_ctl *c)
{
  if (!c)
    return;
  if (c->running) {
    if (write(c->stop[1], "x", 1) < 0)
      lg_warn("control: cannot stop its thread: %s", strerror(errno));
    pthread_join(c->thread, NULL);
  }
  unlink(c->path); /* before the lock goes: no other gateway has bound it */
  close(c->lfd);
  close(c->lockfd);
  close(c->stop[0]);
  close(c->stop[1]);
  free(c->path);
  free(c);
}
