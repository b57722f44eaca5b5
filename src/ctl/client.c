/* The client side of the control socket: `lungate sessions`,
 * `overlays`, `save` and `reload`, and the request/response exchange that
 * `lungate overlay` uses too. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "ctl/ctl.h"
#include "target/overlay_cmd.h"
#include "util/log.h"

#define CTL_REPLY_MAX (64 << 20)
#define CTL_REPLY_TIMEOUT_SEC 600    /* a commit of a large disk takes a while */

const char *lg_ctl_abspath(const char *path, char *buf, size_t len)
{
  char cwd[PATH_MAX];
  if (*path == '/' || !getcwd(cwd, sizeof cwd))
    snprintf(buf, len, "%s", path);
  else if (snprintf(buf, len, "%s/%s", cwd, path) >= (int)len)
    snprintf(buf, len, "%s", path); /* too long to make absolute: leave it as given */
  return buf;
}

json_t *lg_ctl_call(int fd, const json_t *req, char **err)
{
  return lg_ctl_call_progress(fd, req, err, NULL, NULL);
}

json_t *lg_ctl_call_progress(int fd, const json_t *req, char **err,
                             void (*fn)(void *arg, const json_t *progress), void *arg)
{
  *err = NULL;
  char *text = json_dumps(req, JSON_COMPACT);
  size_t len = text ? strlen(text) : 0;
  bool sent = text && write(fd, text, len) == (ssize_t)len && write(fd, "\n", 1) == 1;
  free(text);
  if (!sent) {
    if (asprintf(err, "cannot send to the gateway: %s", strerror(errno)) < 0)
      *err = NULL;
    return NULL;
  }
  struct timeval tv = { .tv_sec = CTL_REPLY_TIMEOUT_SEC };
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  size_t have = 0, cap = 65536;
  char *buf = malloc(cap);
  json_t *res = NULL;
again:
  while (buf && !memchr(buf, '\n', have)) {
    if (have == cap) {
      char *p = cap < CTL_REPLY_MAX ? realloc(buf, cap * 2) : NULL;
      if (!p)
        break;
      buf = p;
      cap *= 2;
    }
    ssize_t n = read(fd, buf + have, cap - have);
    if (n <= 0) {
      if (asprintf(err, "the gateway closed the control connection without an answer%s%s",
                   n < 0 ? ": " : "", n < 0 ? strerror(errno) : "") < 0)
        *err = NULL;
      free(buf);
      return NULL;
    }
    have += (size_t)n;
  }
  json_error_t je;
  res = buf ? json_loadb(buf, have, JSON_DISABLE_EOF_CHECK, &je) : NULL;
  json_t *progress = json_object_get(res, "progress");
  if (json_is_object(progress) && !json_object_get(res, "ok")) { /* not the answer yet */
    if (fn)
      fn(arg, progress);
    json_decref(res);
    res = NULL;
    char *nl = memchr(buf, '\n', have);
    have -= (size_t)(nl + 1 - buf);
    memmove(buf, nl + 1, have);
    goto again;
  }
  free(buf);
  if (!json_is_object(res)) {
    json_decref(res);
    if (asprintf(err, "the gateway's answer is not a JSON object") < 0)
      *err = NULL;
    return NULL;
  }
  return res;
}

int lg_ctl_connect_for(const char *control, const char *config, char **err)
{
  *err = NULL;
  if (control) {
    int fd = lg_ctl_connect(control, err);
    return fd >= 0 ? fd : -2;
  }
  const char *path = lg_ctl_default_path();
  int fd = path ? lg_ctl_connect(path, NULL) : -1;
  if (fd < 0 || !config)
    return fd;
  /* the gateway there may serve another config: then work offline */
  json_t *req = json_pack("{s:s}", "cmd", "hello");
  char *e = NULL;
  json_t *res = lg_ctl_call(fd, req, &e);
  json_decref(req);
  free(e);
  const char *theirs = json_string_value(json_object_get(res, "config"));
  /* a config file that does not exist yet (served empty) compares by its
   * absolute path */
  char a[PATH_MAX], b[PATH_MAX];
  if (theirs && !realpath(theirs, a))
    lg_ctl_abspath(theirs, a, sizeof a);
  if (!realpath(config, b))
    lg_ctl_abspath(config, b, sizeof b);
  bool same = theirs && !strcmp(a, b);
  json_decref(res);
  if (!same) {
    close(fd);
    return -1;
  }
  return fd;
}

static void usage(FILE *f)
{
  fprintf(f,
    "usage: lungate sessions [--control SOCKET] [--json]\n"
    "       lungate overlays [--control SOCKET] [--json] [NAME]\n"
    "       lungate save     [--control SOCKET] [FILE]\n"
    "       lungate reload   [--control SOCKET]\n"
    "       lungate restore  [--control SOCKET] FILE\n"
    "Ask a running gateway through its control socket (default %s).\n",
    lg_ctl_default_path() ? lg_ctl_default_path() : "none: give --control");
}

static const char *jstr(const json_t *o, const char *k)
{
  const char *s = json_string_value(json_object_get(o, k));
  return s ? s : "";
}

static long long jint(const json_t *o, const char *k)
{
  return (long long)json_integer_value(json_object_get(o, k));
}

/* targetcli-style tree */
static void print_ls(const json_t *res)
{
  size_t i, k, l;
  json_t *so, *t, *g, *v;
  char size[32];
  printf("o- / (%s, generation %lld)\n", *jstr(res, "config") ? jstr(res, "config")
                                                            : "no config file",
         jint(res, "generation"));
  printf("  o- backstores\n");
  json_array_foreach(json_object_get(res, "storage_objects"), i, so) {
    lg_human_bytes((uint64_t)jint(so, "size"), size, sizeof size);
    const char *where = *jstr(so, "dev") ? jstr(so, "dev") : *jstr(so, "uri") ? jstr(so, "uri")
                      : *jstr(so, "base") ? jstr(so, "base") : jstr(so, "config");
    printf("  | o- %s/%s [%s, %s%s%s]\n", jstr(so, "plugin"), jstr(so, "name"), where, size,
           json_is_true(json_object_get(so, "readonly")) ? ", read-only" : "",
           json_is_true(json_object_get(so, "per_initiator")) ? ", an overlay per initiator" : "");
  }
  printf("  o- iscsi\n");
  json_array_foreach(json_object_get(res, "targets"), i, t) {
    printf("    o- %s\n", jstr(t, "wwn"));
    json_array_foreach(json_object_get(t, "tpgs"), k, g) {
      printf("      o- tpg%lld [%s, auth: %s, generate_node_acls: %s]\n", jint(g, "tag"),
             json_is_true(json_object_get(g, "enable")) ? "enabled" : "disabled",
             json_is_true(json_object_get(g, "authentication")) ? "CHAP required"
             : json_is_true(json_object_get(g, "chap")) ? "CHAP" : "none",
             json_is_true(json_object_get(g, "generate_node_acls")) ? "yes" : "no");
      printf("        o- acls\n");
      json_array_foreach(json_object_get(g, "node_acls"), l, v) {
        size_t n;
        json_t *mp;
        printf("        | o- %s [mapped LUNs: %zu%s]\n", jstr(v, "node_wwn"),
               json_array_size(json_object_get(v, "mapped_luns")),
               json_is_true(json_object_get(v, "chap")) ? ", CHAP" : "");
        json_array_foreach(json_object_get(v, "mapped_luns"), n, mp)
          printf("        |   o- mapped_lun%lld -> lun%lld [%s]\n", jint(mp, "index"),
                 jint(mp, "tpg_lun"),
                 json_is_true(json_object_get(mp, "write_protect")) ? "ro" : "rw");
      }
      printf("        o- luns\n");
      json_array_foreach(json_object_get(g, "luns"), l, v) {
        lg_human_bytes((uint64_t)jint(v, "size"), size, sizeof size);
        printf("        | o- lun%lld %s [%s%s]\n", jint(v, "index"), jstr(v, "storage_object"),
               size, json_is_true(json_object_get(v, "readonly")) ? ", read-only" : "");
      }
      printf("        o- portals\n");
      json_array_foreach(json_object_get(g, "portals"), l, v)
        printf("          o- %s:%lld\n", jstr(v, "ip_address"), jint(v, "port"));
    }
  }
}

static void print_sessions(const json_t *res)
{
  size_t i, k;
  json_t *s, *l;
  printf("%-44s %-22s %-40s %-8s %-19s %10s %10s\n", "INITIATOR", "ADDRESS", "TARGET", "LUNS",
         "SINCE", "READ", "WRITTEN");
  json_array_foreach(json_object_get(res, "sessions"), i, s) {
    char luns[128] = "", since[32] = "-", rd[32], wr[32], safe[LG_SAFE_MAX];
    json_array_foreach(json_object_get(s, "luns"), k, l) {
      size_t used = strlen(luns);
      snprintf(luns + used, sizeof luns - used, "%s%lld", used ? "," : "", jint(l, "lun"));
    }
    time_t t = (time_t)jint(s, "since");
    struct tm tm;
    if (t)
      strftime(since, sizeof since, "%Y-%m-%d %H:%M:%S", localtime_r(&t, &tm));
    lg_human_bytes((uint64_t)jint(s, "bytes_read"), rd, sizeof rd);
    lg_human_bytes((uint64_t)jint(s, "bytes_written"), wr, sizeof wr);
    printf("%-44s %-22s %-40s %-8s %-19s %10s %10s\n",
           lg_safe(jstr(s, "initiator"), safe, sizeof safe), jstr(s, "peer"),
           json_is_true(json_object_get(s, "discovery")) ? "(discovery)" : jstr(s, "target"),
           *luns ? luns : "-", since, rd, wr);
  }
}

/* The cluster block of `lungate ls` and `lungate sessions`. */
void lg_ctl_print_cluster(const json_t *cj)
{
  if (!json_is_object(cj))
    return;
  size_t i, k;
  json_t *g, *c;
  const char *entry = json_string_value(json_object_get(cj, "entry"));
  printf("o- cluster %s [%s membership, entry %s, %s]\n", jstr(cj, "name"), jstr(cj, "mode"),
         entry ? entry : "none",
         json_is_true(json_object_get(cj, "failover")) ? "failover on Ceph"
         : "failover is not possible: local overlays");
  json_array_foreach(json_object_get(cj, "gateways"), i, g) {
    json_t *cl = json_object_get(g, "clients");
    printf("  o- %s [%s%s, %zu client(s)]\n", jstr(g, "address"), jstr(g, "state"),
           json_is_true(json_object_get(g, "self")) ? ", this gateway" : "",
           json_array_size(cl));
    json_array_foreach(cl, k, c) {
      char safe[LG_SAFE_MAX];
      printf("  | o- %s\n", lg_safe(json_string_value(c), safe, sizeof safe));
    }
  }
}

static void print_overlays(const json_t *res)
{
  size_t i;
  json_t *v;
  printf("%-40s %-44s %10s %10s  %-16s %s\n", "TARGET/LUN", "INITIATOR", "ALLOCATED", "QUOTA",
         "LAST USE", "LIVE");
  json_array_foreach(json_object_get(res, "overlays"), i, v) {
    char alloc[32], quota[32] = "-", when[32] = "-", safe[LG_SAFE_MAX];
    lg_human_bytes((uint64_t)jint(v, "allocated"), alloc, sizeof alloc);
    if (jint(v, "quota"))
      lg_human_bytes((uint64_t)jint(v, "quota"), quota, sizeof quota);
    time_t t = (time_t)jint(v, "last_use");
    struct tm tm;
    if (t)
      strftime(when, sizeof when, "%Y-%m-%d %H:%M", localtime_r(&t, &tm));
    const char *ini = json_string_value(json_object_get(v, "initiator"));
    printf("%-40s %-44s %10s %10s  %-16s %s\n",
           *jstr(v, "luns") ? jstr(v, "luns") : jstr(v, "storage"),
           ini ? lg_safe(ini, safe, sizeof safe) : "(shared)", alloc, quota, when,
           json_is_true(json_object_get(v, "live")) ? "live" : "-");
  }
}

int cmd_ctl(int argc, char **argv)
{
  static const struct option opts[] = {
    { "control", required_argument, NULL, 'C' },
    { "json", no_argument, NULL, 'j' },
    { "help", no_argument, NULL, 'h' },
    { NULL, 0, NULL, 0 },
  };
  const char *sub = argv[0], *control = NULL;
  bool as_json = false;
  int ch;
  optind = 1;
  while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    switch (ch) {
    case 'C': control = optarg; break;
    case 'j': as_json = true; break;
    case 'h': usage(stdout); return 0;
    default: usage(stderr); return 2;
    }
  }
  int nrest = argc - optind;
  const char *arg = nrest ? argv[optind] : NULL;
  bool takes_arg = !strcmp(sub, "save") || !strcmp(sub, "overlays");
  bool needs_arg = !strcmp(sub, "restore");
  if (nrest > (takes_arg || needs_arg ? 1 : 0) || (needs_arg && !nrest)) {
    usage(stderr);
    return 2;
  }
  if (!control && !(control = lg_ctl_default_path())) {
    fprintf(stderr, "lungate %s: give the gateway's control socket with --control SOCKET\n", sub);
    return 2;
  }
  char *err = NULL, abs[PATH_MAX];
  int fd = lg_ctl_connect(control, &err);
  if (fd < 0) {
    fprintf(stderr, "lungate %s: %s\n", sub, err ? err : "out of memory");
    free(err);
    return 1;
  }
  json_t *req = json_pack("{s:s}", "cmd", sub);
  if (arg && (!strcmp(sub, "save") || needs_arg))
    json_object_set_new(req, "file", json_string(lg_ctl_abspath(arg, abs, sizeof abs)));
  else if (arg)
    json_object_set_new(req, "name", json_string(arg));
  json_t *res = lg_ctl_call(fd, req, &err);
  json_decref(req);
  close(fd);
  if (!res) {
    fprintf(stderr, "lungate %s: %s\n", sub, err ? err : "out of memory");
    free(err);
    return 1;
  }
  int rc = json_is_true(json_object_get(res, "ok")) ? 0 : 1;
  if (as_json) {
    char *text = json_dumps(res, JSON_INDENT(2));
    printf("%s\n", text ? text : "null");
    free(text);
  } else if (!strcmp(sub, "overlays")) {
    print_overlays(res);
    rc = lg_ovl_print("", res); /* messages and errors */
  } else if (rc) {
    fprintf(stderr, "lungate %s: %s\n", sub, jstr(res, "error"));
  } else if (!strcmp(sub, "ls")) {
    print_ls(res);
  } else if (!strcmp(sub, "sessions")) {
    print_sessions(res);
    lg_ctl_print_cluster(json_object_get(res, "cluster"));
  } else if (!strcmp(sub, "drain")) {
    printf("%s\n", jstr(res, "message"));
  } else if (!strcmp(sub, "save")) {
    printf("saved the configuration to %s\n", jstr(res, "file"));
  } else {
    printf("%s: %s\n", needs_arg ? "restored" : "reloaded", jstr(res, "message"));
  }
  json_decref(res);
  return rc;
}
