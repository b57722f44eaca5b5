/* The web console: libmicrohttpd (ops/http.c), one thread per connection.
 *
 *   GET  /, /app.js, /app.css, /icon.svg    the page (compiled in)
 *   POST /api/login    {"password"}         a session cookie and a CSRF token
 *   GET  /api/state                         sessions, overlays, storage objects
 *   POST /api/logout | /api/reset {"storage","initiator","force"}
 *        /api/reset-all {"storage","force"} | /api/rollback {"storage","version"} |
 *        /api/commit {"storage","initiator",
 *        "file","force"}
 *
 * Access: the admin password's salted hash is read from the password file
 * at each login (lungate passwd writes it).  A login gets a random session
 * token in a cookie (HttpOnly, SameSite=Strict, Secure over HTTPS) and a
 * random CSRF token that every POST but the login must carry in the
 * X-CSRF-Token header, with Content-Type application/json (which no
 * cross-site form can send) and, when the browser sends one, an Origin that
 * is this host.  No session: 401; a session without its token: 403.  After
 * 3 failed logins in a row, the next waits 1, 2, 4... (at most 30) seconds
 * after the last failure (429 before that), and every refusal takes a
 * second; a successful login starts the count again; the log names the address, never the password tried.
 *
 * The data and the actions are the control socket's (lg_ctl_request): the
 * same JSON, the same errors.  Nothing here reads or shows a CHAP secret. */
#include "web/web.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <nettle/memops.h>

#include "ctl/ctl.h"
#include "iscsi/server.h"
#include "ops/http.h"
#include "ops/metrics.h"
#include "target/model.h"
#include "util/log.h"

#define WEB_SESSIONS 32              /* logged-in browsers at once (oldest goes) */
#define WEB_SESSION_IDLE 43200       /* seconds without a request: logged out */
#define WEB_BODY_MAX 16384           /* a request body */
#define WEB_TOKEN_HEX 64             /* 32 random bytes */
#define WEB_FREE_FAILURES 3          /* failed logins before the waits start */
#define WEB_MAX_WAIT 30              /* seconds */
#define COOKIE "lungate_session"

struct web_session {
  char token[WEB_TOKEN_HEX + 1];     /* "": free slot */
  char csrf[WEB_TOKEN_HEX + 1];
  time_t last;
};

struct lg_web {
  struct lg_http *http;
  struct lg_server *srv;
  char *password_file;
  bool https;
  pthread_mutex_t lock;              /* sessions and the failure count */
  pthread_mutex_t login_lock;        /* one password check at a time */
  struct web_session sessions[WEB_SESSIONS];
  unsigned failures;                 /* failed logins in a row */
  uint64_t last_failure_ns;          /* monotonic: when the last refusal was answered */
};

struct web_req {                     /* one request's body, as it arrives */
  char *body;
  size_t len;
  bool too_big;
};

static const char json_ctype[] = "application/json";
static const char *const page_headers[] = {
  "Content-Security-Policy",
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
  "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  "X-Frame-Options", "DENY", "Referrer-Policy", "no-referrer", NULL
};

static int random_token(char *out)
{
  uint8_t b[WEB_TOKEN_HEX / 2];
  if (getrandom(b, sizeof b, 0) != (ssize_t)sizeof b)
    return -1;
  for (size_t i = 0; i < sizeof b; i++)
    snprintf(out + 2 * i, 3, "%02x", b[i]);
  return 0;
}

static bool token_eq(const char *a, const char *b)
{
  return a && b && strlen(a) == WEB_TOKEN_HEX && strlen(b) == WEB_TOKEN_HEX &&
         memeql_sec(a, b, WEB_TOKEN_HEX);
}

/* The session the request's cookie names (a copy in *out); false if none. */
static bool find_session(struct lg_web *w, struct MHD_Connection *c, struct web_session *out)
{
  const char *tok = MHD_lookup_connection_value(c, MHD_COOKIE_KIND, COOKIE);
  if (!tok)
    return false;
  time_t now = time(NULL);
  bool found = false;
  pthread_mutex_lock(&w->lock);
  for (int i = 0; i < WEB_SESSIONS; i++) {
    struct web_session *s = &w->sessions[i];
    if (!s->token[0])
      continue;
    if (now - s->last > WEB_SESSION_IDLE) {
      memset(s, 0, sizeof *s);
      continue;
    }
    if (token_eq(s->token, tok)) {
      s->last = now;
      *out = *s;
      found = true;
    }
  }
  pthread_mutex_unlock(&w->lock);
  return found;
}

static enum MHD_Result send_json(struct MHD_Connection *c, unsigned status, json_t *j,
                                 const char *const *headers)
{
  char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
  json_decref(j);
  if (!text)
    return lg_http_send(c, MHD_HTTP_INTERNAL_SERVER_ERROR, json_ctype, NULL,
                        "{\"ok\":false,\"error\":\"out of memory\"}", 35, false);
  return lg_http_send(c, status, json_ctype, headers, text, strlen(text), true);
}

static enum MHD_Result send_error(struct MHD_Connection *c, unsigned status, const char *msg)
{
  return send_json(c, status, json_pack("{s:b,s:s}", "ok", 0, "error", msg), NULL);
}

/* ---- login ---- */

static enum MHD_Result do_login(struct lg_web *w, struct MHD_Connection *c, json_t *body)
{
  char peer[64];
  lg_http_peer(c, peer, sizeof peer);
  const char *pw = json_string_value(json_object_get(body, "password"));
  if (!pw)
    return send_error(c, MHD_HTTP_BAD_REQUEST, "give {\"password\": ...}");
  pthread_mutex_lock(&w->login_lock);
  uint64_t now = lg_now_ns();
  pthread_mutex_lock(&w->lock);
  unsigned failures = w->failures;
  uint64_t wait_until = w->last_failure_ns;
  if (failures >= WEB_FREE_FAILURES) {
    unsigned shift = failures - WEB_FREE_FAILURES;
    wait_until += (shift >= 5 ? WEB_MAX_WAIT : 1u << shift) * 1000000000ull;
  }
  pthread_mutex_unlock(&w->lock);
  if (failures >= WEB_FREE_FAILURES && now < wait_until) {
    pthread_mutex_unlock(&w->login_lock);
    char msg[128], secs[24];
    snprintf(secs, sizeof secs, "%llu",
             (unsigned long long)((wait_until - now + 999999999) / 1000000000));
    snprintf(msg, sizeof msg, "too many failed logins: try again in %s s", secs);
    lg_kv(LG_WARN, "web: login refused", "peer=%s reason=too-many-failures wait=%s", peer,
          secs);
    const char *const hdr[] = { "Retry-After", secs, NULL };
    return send_json(c, MHD_HTTP_TOO_MANY_REQUESTS,
                     json_pack("{s:b,s:s}", "ok", 0, "error", msg), hdr);
  }
  char line[512] = "";
  FILE *f = fopen(w->password_file, "re");
  int e = errno;
  if (f) {
    if (!fgets(line, sizeof line, f))
      line[0] = '\0';
    fclose(f);
  }
  int ok = f ? lg_web_verify(line, pw) : -1;
  if (ok < 0) {
    pthread_mutex_unlock(&w->login_lock);
    lg_kv(LG_ERROR, "web: login impossible: no valid password file", "peer=%s file=%s err=%s",
          peer, LG_Q(w->password_file), LG_Q(f ? "not a lungate passwd line" : strerror(e)));
    return send_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR,
                      "the gateway has no valid admin password file: run lungate passwd");
  }
  if (!ok) {
    pthread_mutex_lock(&w->lock);
    unsigned n = ++w->failures;
    pthread_mutex_unlock(&w->lock);
    lg_kv(LG_WARN, "web: login refused", "peer=%s reason=wrong-password failures=%u", peer, n);
    sleep(1); /* every refusal costs the guesser a second */
    pthread_mutex_lock(&w->lock);
    w->last_failure_ns = lg_now_ns(); /* the waits count from the answer */
    pthread_mutex_unlock(&w->lock);
    pthread_mutex_unlock(&w->login_lock);
    return send_error(c, MHD_HTTP_FORBIDDEN, "wrong password");
  }
  pthread_mutex_unlock(&w->login_lock);
  struct web_session s = { .last = time(NULL) };
  if (random_token(s.token) < 0 || random_token(s.csrf) < 0)
    return send_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "cannot draw a session token");
  pthread_mutex_lock(&w->lock);
  w->failures = 0;
  int slot = 0;
  for (int i = 0; i < WEB_SESSIONS; i++) {
    if (!w->sessions[i].token[0]) {
      slot = i;
      break;
    }
    if (w->sessions[i].last < w->sessions[slot].last)
      slot = i;
  }
  w->sessions[slot] = s;
  pthread_mutex_unlock(&w->lock);
  lg_kv(LG_INFO, "web: login", "peer=%s", peer);
  char cookie[256];
  snprintf(cookie, sizeof cookie, COOKIE "=%s; Path=/; HttpOnly; SameSite=Strict%s", s.token,
           w->https ? "; Secure" : "");
  const char *const hdr[] = { "Set-Cookie", cookie, NULL };
  return send_json(c, MHD_HTTP_OK, json_pack("{s:b,s:s}", "ok", 1, "csrf", s.csrf), hdr);
}

static void end_session(struct lg_web *w, const char *token)
{
  pthread_mutex_lock(&w->lock);
  for (int i = 0; i < WEB_SESSIONS; i++)
    if (token_eq(w->sessions[i].token, token))
      memset(&w->sessions[i], 0, sizeof w->sessions[i]);
  pthread_mutex_unlock(&w->lock);
}

/* ---- data and actions ---- */

static json_t *ask(struct lg_web *w, json_t *req)
{
  json_t *res = req ? lg_ctl_request(w->srv, req) : NULL;
  json_decref(req);
  return res;
}

static enum MHD_Result do_state(struct lg_web *w, struct MHD_Connection *c,
                                const struct web_session *s)
{
  json_t *sessions = ask(w, json_pack("{s:s}", "cmd", "sessions"));
  json_t *overlays = ask(w, json_pack("{s:s}", "cmd", "overlays"));
  json_t *ls = ask(w, json_pack("{s:s}", "cmd", "ls"));
  json_t *res = json_pack("{s:b,s:s,s:I,s:b,s:s}", "ok", 1, "csrf", s->csrf, "now",
                          (json_int_t)time(NULL), "https", w->https, "version", "0.1.0");
  if (res && sessions && overlays && ls) {
    json_object_set(res, "sessions", json_object_get(sessions, "sessions"));
    json_object_set(res, "overlays", json_object_get(overlays, "overlays"));
    json_object_set(res, "overlay_errors", json_object_get(overlays, "errors"));
    json_object_set(res, "storage_objects", json_object_get(ls, "storage_objects"));
    json_object_set(res, "generation", json_object_get(ls, "generation"));
    /* the image versions of every per-client disk that has some */
    json_t *images = json_object(), *so;
    size_t i;
    json_array_foreach(json_object_get(ls, "storage_objects"), i, so) {
      const char *name = json_string_value(json_object_get(so, "name"));
      const char *plugin = json_string_value(json_object_get(so, "plugin"));
      if (!name || !plugin || strcmp(plugin, "cow") ||
          !json_is_true(json_object_get(so, "per_initiator")))
        continue;
      json_t *vl = ask(w, json_pack("{s:s,s:s}", "cmd", "image-list", "name", name));
      json_t *vers = json_object_get(vl, "versions");
      if (json_array_size(vers))
        json_object_set(images, name, vers);
      json_decref(vl);
    }
    json_object_set_new(res, "images", images);
  }
  json_decref(sessions);
  json_decref(overlays);
  json_decref(ls);
  return send_json(c, MHD_HTTP_OK, res, NULL);
}

/* A file name for a published disk: letters, digits, '.', '_', '-'. */
static bool safe_file_name(const char *s)
{
  size_t n = strlen(s);
  if (!n || n > 128 || s[0] == '.')
    return false;
  for (const char *p = s; *p; p++)
    if (!(*p >= 'a' && *p <= 'z') && !(*p >= 'A' && *p <= 'Z') && !(*p >= '0' && *p <= '9') &&
        *p != '.' && *p != '_' && *p != '-')
      return false;
  return true;
}

/* The folder of the file under a cow storage object's base ("dev"), where a
 * published disk goes; false with why in msg. */
static bool publish_dir(struct lg_web *w, const char *storage, char *dir, size_t len,
                        char *msg, size_t msglen)
{
  struct lg_model *m = lg_server_model(w->srv);
  const char *base = NULL, *dev = NULL;
  for (size_t i = 0; i < m->n_storage && !base; i++)
    if (!strcmp(m->storage[i]->plugin, "cow") && !strcmp(m->storage[i]->name, storage))
      base = json_string_value(json_object_get(m->storage[i]->def, "base"));
  for (size_t i = 0; base && i < m->n_storage; i++) {
    char ref[600];
    snprintf(ref, sizeof ref, "/backstores/%s/%s", m->storage[i]->plugin, m->storage[i]->name);
    if (!strcmp(ref, base))
      dev = json_string_value(json_object_get(m->storage[i]->def, "dev"));
  }
  bool ok = false;
  char abs[PATH_MAX];
  if (!base)
    snprintf(msg, msglen, "%s is not a cow storage object of this gateway", storage);
  else if (!dev || !realpath(dev, abs))
    snprintf(msg, msglen, "the base of %s (%s) is not a file: publish writes the new disk "
             "beside the base's file; use lungate overlay commit with a path", storage, base);
  else {
    char *slash = strrchr(abs, '/');
    *slash = '\0';
    snprintf(dir, len, "%s", abs[0] ? abs : "/");
    ok = true;
  }
  lg_model_unref(m);
  return ok;
}

static enum MHD_Result do_action(struct lg_web *w, struct MHD_Connection *c, const char *url,
                                 json_t *body)
{
  char peer[64];
  lg_http_peer(c, peer, sizeof peer);
  const char *storage = json_string_value(json_object_get(body, "storage"));
  const char *ini = json_string_value(json_object_get(body, "initiator"));
  bool force = json_is_true(json_object_get(body, "force"));
  if (!storage)
    return send_error(c, MHD_HTTP_BAD_REQUEST, "give \"storage\": a cow storage object's name");
  json_t *req;
  json_t *version = json_object_get(body, "version");
  if (!strcmp(url, "/api/rollback")) {
    if (!json_is_integer(version))
      return send_error(c, MHD_HTTP_BAD_REQUEST, "give \"version\": an image version's id");
    req = json_pack("{s:s,s:s,s:O}", "cmd", "image-rollback", "name", storage, "version",
                    version);
  } else if (!strcmp(url, "/api/reset") || !strcmp(url, "/api/reset-all")) {
    bool all = !strcmp(url, "/api/reset-all");
    if (!all && !ini)
      return send_error(c, MHD_HTTP_BAD_REQUEST, "give \"initiator\"");
    req = json_pack("{s:s,s:s,s:s?,s:b}", "cmd", "overlay-reset", "name", storage,
                    "initiator", all ? NULL : ini, "force", force);
  } else {
    const char *file = json_string_value(json_object_get(body, "file"));
    char dir[PATH_MAX], msg[PATH_MAX + 256], path[PATH_MAX + 160];
    if (!ini || !file)
      return send_error(c, MHD_HTTP_BAD_REQUEST, "give \"initiator\" and \"file\"");
    if (!safe_file_name(file))
      return send_error(c, MHD_HTTP_BAD_REQUEST, "the new disk's file name may hold letters, "
                        "digits, '.', '_' and '-' (not first), up to 128 of them");
    if (!publish_dir(w, storage, dir, sizeof dir, msg, sizeof msg))
      return send_error(c, MHD_HTTP_BAD_REQUEST, msg);
    snprintf(path, sizeof path, "%s/%s", strcmp(dir, "/") ? dir : "", file);
    req = json_pack("{s:s,s:s,s:s,s:s,s:b}", "cmd", "overlay-commit", "name", storage,
                    "initiator", ini, "file", path, "force", force);
  }
  char safe[LG_SAFE_MAX];
  lg_safe(ini ? ini : "(all)", safe, sizeof safe);
  lg_kv(LG_INFO, "web: action", "peer=%s action=%s storage=%s initiator=%s force=%d%s%lld",
        peer, url + 5, LG_Q(storage), safe, force, version ? " version=" : "",
        version ? (long long)json_integer_value(version) : 0LL);
  json_t *res = ask(w, req);
  return send_json(c, MHD_HTTP_OK, res, NULL);
}

/* ---- the request handler ---- */

static const char *asset_type(const char *path)
{
  const char *dot = strrchr(path, '.');
  if (dot && !strcmp(dot, ".js"))
    return "text/javascript; charset=utf-8";
  if (dot && !strcmp(dot, ".css"))
    return "text/css; charset=utf-8";
  if (dot && !strcmp(dot, ".svg"))
    return "image/svg+xml";
  return "text/html; charset=utf-8";
}

/* Does the Origin header, when sent, name this host? */
static bool same_origin(struct MHD_Connection *c)
{
  const char *origin = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Origin");
  const char *host = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Host");
  if (!origin)
    return true;
  const char *p = strstr(origin, "://");
  return host && p && !strcmp(p + 3, host);
}

static enum MHD_Result web_request(void *cls, struct MHD_Connection *c, const char *url,
                                   const char *method, const char *version,
                                   const char *upload_data, size_t *upload_data_size,
                                   void **req_cls)
{
  (void)version;
  struct lg_web *w = cls;
  bool post = !strcmp(method, MHD_HTTP_METHOD_POST);
  if (post) { /* gather the body first */
    struct web_req *r = *req_cls;
    if (!r) {
      if (!(r = calloc(1, sizeof *r)))
        return MHD_NO;
      *req_cls = r;
      return MHD_YES;
    }
    if (*upload_data_size) {
      if (r->len + *upload_data_size > WEB_BODY_MAX) {
        r->too_big = true;
      } else {
        char *nb = realloc(r->body, r->len + *upload_data_size + 1);
        if (!nb)
          return MHD_NO;
        memcpy(nb + r->len, upload_data, *upload_data_size);
        r->body = nb;
        r->len += *upload_data_size;
        r->body[r->len] = '\0';
      }
      *upload_data_size = 0;
      return MHD_YES;
    }
  }
  if (strncmp(url, "/api/", 5)) {
    if (strcmp(method, MHD_HTTP_METHOD_GET) && strcmp(method, MHD_HTTP_METHOD_HEAD))
      return lg_http_send(c, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain", NULL, "GET only\n", 9,
                          false);
    const char *path = !strcmp(url, "/") ? "/index.html" : url;
    for (size_t i = 0; i < lg_web_n_assets; i++)
      if (!strcmp(lg_web_assets[i].path, path))
        return lg_http_send(c, MHD_HTTP_OK, asset_type(path), page_headers,
                            lg_web_assets[i].data, lg_web_assets[i].len, false);
    return lg_http_send(c, MHD_HTTP_NOT_FOUND, "text/plain", NULL, "not found\n", 10, false);
  }
  bool is_action = !strcmp(url, "/api/reset") || !strcmp(url, "/api/reset-all") ||
                   !strcmp(url, "/api/commit") || !strcmp(url, "/api/rollback") ||
                   !strcmp(url, "/api/logout");
  bool known = is_action || !strcmp(url, "/api/login") || !strcmp(url, "/api/state");
  if (!known)
    return send_error(c, MHD_HTTP_NOT_FOUND, "no such API");
  if (!strcmp(url, "/api/state") ? strcmp(method, MHD_HTTP_METHOD_GET) : !post)
    return send_error(c, MHD_HTTP_METHOD_NOT_ALLOWED,
                      !strcmp(url, "/api/state") ? "GET only" : "POST only");
  struct web_session s;
  bool have = find_session(w, c, &s);
  if (!strcmp(url, "/api/state"))
    return have ? do_state(w, c, &s) : send_error(c, MHD_HTTP_UNAUTHORIZED, "log in first");
  /* every POST: JSON only (no cross-site form can send it), from this origin */
  struct web_req *r = *req_cls;
  const char *type = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
  if (is_action && !have)
    return send_error(c, MHD_HTTP_UNAUTHORIZED, "log in first");
  if (!same_origin(c))
    return send_error(c, MHD_HTTP_FORBIDDEN, "cross-site request refused");
  if (is_action && !token_eq(s.csrf, MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                                  "X-CSRF-Token")))
    return send_error(c, MHD_HTTP_FORBIDDEN, "missing or wrong CSRF token: reload the page");
  if (!type || strncasecmp(type, json_ctype, strlen(json_ctype)))
    return send_error(c, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE, "send application/json");
  if (r->too_big)
    return send_error(c, 413, "request too large");
  json_t *body = r->body ? json_loadb(r->body, r->len, 0, NULL) : NULL;
  if (!json_is_object(body)) {
    json_decref(body);
    return send_error(c, MHD_HTTP_BAD_REQUEST, "the body must be a JSON object");
  }
  enum MHD_Result ret;
  if (!strcmp(url, "/api/login")) {
    ret = do_login(w, c, body);
  } else if (!strcmp(url, "/api/logout")) {
    end_session(w, s.token);
    const char *const hdr[] = { "Set-Cookie", COOKIE "=; Path=/; Max-Age=0; HttpOnly; "
                                "SameSite=Strict", NULL };
    ret = send_json(c, MHD_HTTP_OK, json_pack("{s:b}", "ok", 1), hdr);
  } else {
    ret = do_action(w, c, url, body);
  }
  json_decref(body);
  return ret;
}

static void web_completed(void *cls, struct MHD_Connection *c, void **req_cls,
                          enum MHD_RequestTerminationCode toe)
{
  (void)cls;
  (void)c;
  (void)toe;
  struct web_req *r = *req_cls;
  if (r) {
    free(r->body);
    free(r);
    *req_cls = NULL;
  }
}

struct lg_web *lg_web_start(struct lg_server *srv, const struct lg_model *m,
                            const struct lg_web_opts *o, char **err)
{
  *err = NULL;
  json_t *cfg = json_object_get(m->json, "web");
#define PICK(flag, key) ((flag) ? (flag) : json_string_value(json_object_get(cfg, key)))
  const char *listen = PICK(o->listen, "listen"), *cert = PICK(o->cert, "cert");
  const char *key = PICK(o->key, "key"), *pwfile = PICK(o->password_file, "password_file");
#undef PICK
  if (!listen)
    return NULL;
  if (!pwfile && !(pwfile = lg_web_default_passwd())) {
    if (asprintf(err, "--web: no password file: give --web-password FILE") < 0)
      *err = NULL;
    return NULL;
  }
  char line[512] = "";
  FILE *f = fopen(pwfile, "re");
  if (f) {
    if (!fgets(line, sizeof line, f))
      line[0] = '\0';
    fclose(f);
  }
  if (!f || !lg_web_hash_valid(line)) {
    if (asprintf(err, "--web: %s: %s; set the console's admin password first: lungate passwd "
                 "--file %s", pwfile, f ? "not a lungate passwd file" : strerror(errno),
                 pwfile) < 0)
      *err = NULL;
    return NULL;
  }
  struct lg_web *w = calloc(1, sizeof *w);
  if (!w || !(w->password_file = strdup(pwfile))) {
    free(w);
    return NULL;
  }
  w->srv = srv;
  w->https = cert != NULL;
  pthread_mutex_init(&w->lock, NULL);
  pthread_mutex_init(&w->login_lock, NULL);
  struct lg_http_opts ho = {
    .what = "--web", .addr = listen, .cert_file = cert, .key_file = key,
    .thread_per_connection = true, .connection_limit = 64, .timeout_sec = 60,
    .memory_limit = 32768, .handler = web_request, .handler_cls = w,
    .completed = web_completed, .completed_cls = w,
  };
  bool loopback = false;
  if (!(w->http = lg_http_start(&ho, &loopback, err))) {
    pthread_mutex_destroy(&w->lock);
    pthread_mutex_destroy(&w->login_lock);
    free(w->password_file);
    free(w);
    return NULL;
  }
  lg_kv(LG_INFO, "web console", "url=%s://%s/ password_file=%s", w->https ? "https" : "http",
        listen, LG_Q(pwfile));
  if (!loopback && !w->https)
    lg_kv(LG_WARN, "web console: listening beyond loopback without HTTPS: the password and "
          "session cookie cross the network in clear; give --web-cert and --web-key",
          "listen=%s", listen);
  return w;
}

void lg_web_stop(struct lg_web *w)
{
  if (!w)
    return;
  lg_http_stop(w->http);
  pthread_mutex_destroy(&w->lock);
  pthread_mutex_destroy(&w->login_lock);
  free(w->password_file);
  free(w);
}
