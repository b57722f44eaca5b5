/* `lungate PATH VERB ARGS...`, `lungate ls [PATH]` and `lungate saveconfig
 * [FILE]`: targetcli's object commands, sent to a running gateway through
 * its control socket (applied at once, like a reload), or with -c CONFIG
 * and no gateway serving that file, run on the file itself (written
 * atomically after every command).  The operations are target/admin.c's. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctl/ctl.h"
#include "target/admin.h"
#include "target/model.h"

#define MAX_WORDS 64

void lg_admin_usage(FILE *f)
{
  fprintf(f,
    "usage: lungate [-c CONFIG] [--control SOCKET] PATH VERB [ARGS...]\n"
    "       lungate [-c CONFIG] [--control SOCKET] [--json] ls [PATH]\n"
    "       lungate [-c CONFIG] [--control SOCKET] saveconfig [FILE]\n"
    "targetcli's object commands, e.g.\n"
    "  lungate /backstores/fileio create NAME FILE [SIZE]\n"
    "  lungate /backstores/block|qcow2 create NAME DEV; /backstores/nbd create NAME URI;\n"
    "  lungate /backstores/cow create NAME BASE OVERLAY_DIR [per_initiator=true] [quota=SIZE]\n"
    "  lungate /backstores/rbd create NAME POOL IMAGE [snapshot=SNAP] [conf=FILE] [user=ID]\n"
    "  lungate /iscsi create IQN\n"
    "  lungate /iscsi/IQN/tpg1/luns create /backstores/fileio/NAME [lun]\n"
    "  lungate /iscsi/IQN/tpg1/acls create INITIATOR_IQN\n"
    "  lungate /iscsi/IQN/tpg1/portals create IP [PORT]\n"
    "  lungate /iscsi/IQN/tpg1 set attribute generate_node_acls=1\n"
    "  lungate /iscsi/IQN/tpg1/acls/INITIATOR_IQN set auth userid=U password=SECRET\n"
    "  lungate /iscsi/IQN/tpg1 get attribute; ... delete NAME\n"
    "With a gateway answering on its control socket (default %s, or\n"
    "$LUNGATE_CONTROL, or --control), a command applies to it at once: new logins see\n"
    "it, running sessions are untouched; saveconfig writes its config file.  With\n"
    "-c CONFIG (--config CONFIG) and no gateway serving CONFIG, commands edit CONFIG (a missing file\n"
    "is an empty configuration) and write it after each command.\n",
    lg_ctl_default_path() ? lg_ctl_default_path() : "none: give --control");
}

/* targetcli's width: the terminal's, at most 132; 132 when not a terminal. */
static int tree_width(void)
{
  struct winsize ws;
  if (isatty(STDOUT_FILENO) && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
    return ws.ws_col < 132 ? ws.ws_col : 132;
  return 132;
}

static int print_tree(const json_t *cfg, const json_t *sizes, const char *path)
{
  char *err = NULL;
  char *text = lg_admin_tree(cfg, sizes, path, tree_width(), &err);
  if (!text) {
    fprintf(stderr, "lungate ls: %s\n", err ? err : "out of memory");
    free(err);
    return 1;
  }
  printf("%s\n", text);
  free(text);
  return 0;
}

/* The config file for offline commands: a missing or empty file is an empty
 * configuration.  NULL after saying why. */
static json_t *load_offline(const char *config)
{
  struct stat st;
  if (stat(config, &st) < 0 && errno == ENOENT)
    return lg_admin_empty();
  if (stat(config, &st) == 0 && S_ISREG(st.st_mode) && st.st_size == 0)
    return lg_admin_empty();
  json_error_t je;
  json_t *j = json_load_file(config, JSON_REJECT_DUPLICATES, &je);
  if (!j) {
    if (je.line < 0)
      fprintf(stderr, "lungate: %s: cannot read the config: %s\n", config, je.text);
    else
      fprintf(stderr, "lungate: %s:%d:%d: not valid JSON: %s; fix it or give another -c\n",
              config, je.line, je.column, je.text);
    return NULL;
  }
  if (!json_is_object(j)) {
    fprintf(stderr, "lungate: %s: the top level must be a JSON object with "
            "\"storage_objects\" and \"targets\"\n", config);
    json_decref(j);
    return NULL;
  }
  return j;
}

static int save_file(const json_t *cfg, const char *file)
{
  int r = lg_json_save(cfg, file);
  if (r < 0) {
    fprintf(stderr, "lungate: cannot write %s: %s\n", file, strerror(-r));
    return 1;
  }
  return 0;
}

static int run_offline(const char *config, bool as_json, char **words, size_t nw)
{
  json_t *cfg = load_offline(config);
  if (!cfg)
    return 1;
  int rc = 0;
  if (!strcmp(words[0], "ls")) {
    if (as_json) {
      char *text = json_dumps(cfg, JSON_INDENT(2));
      printf("%s\n", text ? text : "null");
      free(text);
    } else {
      rc = print_tree(cfg, NULL, nw > 1 ? words[1] : "/");
    }
  } else if (!strcmp(words[0], "saveconfig")) {
    char abs[PATH_MAX];
    const char *file = nw > 1 ? lg_ctl_abspath(words[1], abs, sizeof abs) : config;
    rc = save_file(cfg, file);
    if (!rc)
      printf("Configuration saved to %s\n", file);
  } else if (nw > 1 && !strcmp(words[1], "ls")) {
    rc = print_tree(cfg, NULL, words[0]);
  } else {
    char cwd[PATH_MAX];
    struct lg_admin_ctx ctx = { .cwd = getcwd(cwd, sizeof cwd) };
    json_t *out = NULL;
    char *msg = NULL;
    if (lg_admin_run(cfg, &ctx, words[0], nw > 1 ? words[1] : NULL, nw > 2 ? nw - 2 : 0,
                     (const char *const *)words + 2, &out, &msg) < 0) {
      fprintf(stderr, "lungate: %s\n", msg ? msg : "out of memory");
      rc = 1;
    } else if (out && (rc = save_file(out, config)) == 0) {
      printf("%s\n", msg);
    } else if (!out) {
      printf("%s\n", msg);
    }
    free(msg);
    json_decref(out);
  }
  json_decref(cfg);
  return rc;
}

static int run_online(int fd, bool as_json, char **words, size_t nw)
{
  json_t *req;
  char abs[PATH_MAX], cwd[PATH_MAX];
  bool ls = !strcmp(words[0], "ls") || (nw > 1 && words[0][0] == '/' && !strcmp(words[1], "ls"));
  const char *ls_path = !strcmp(words[0], "ls") ? (nw > 1 ? words[1] : "/") : words[0];
  if (ls) {
    req = json_pack("{s:s}", "cmd", "ls");
  } else if (!strcmp(words[0], "saveconfig")) {
    req = json_pack("{s:s}", "cmd", "save");
    if (nw > 1)
      json_object_set_new(req, "file", json_string(lg_ctl_abspath(words[1], abs, sizeof abs)));
  } else {
    json_t *args = json_array();
    for (size_t i = 2; i < nw; i++)
      json_array_append_new(args, json_string(words[i]));
    req = json_pack("{s:s,s:s,s:s?,s:o,s:s?}", "cmd", "admin", "path", words[0], "verb",
                    nw > 1 ? words[1] : NULL, "args", args, "cwd",
                    getcwd(cwd, sizeof cwd) ? cwd : NULL);
  }
  char *err = NULL;
  json_t *res = req ? lg_ctl_call(fd, req, &err) : NULL;
  json_decref(req);
  if (!res) {
    fprintf(stderr, "lungate: %s\n", err ? err : "out of memory");
    free(err);
    return 1;
  }
  int rc = json_is_true(json_object_get(res, "ok")) ? 0 : 1;
  const char *e = json_string_value(json_object_get(res, "error"));
  if (as_json) {
    char *text = json_dumps(res, JSON_INDENT(2));
    printf("%s\n", text ? text : "null");
    free(text);
  } else if (rc) {
    fprintf(stderr, "lungate: %s\n", e ? e : "the gateway refused the command");
  } else if (ls) {
    rc = print_tree(json_object_get(res, "saveconfig"), json_object_get(res, "storage_objects"),
                    ls_path);
    if (!rc && !strcmp(ls_path, "/"))
      lg_ctl_print_cluster(json_object_get(res, "cluster"));
  } else if (!strcmp(words[0], "saveconfig")) {
    printf("Configuration saved to %s\n", json_string_value(json_object_get(res, "file")));
  } else {
    const char *m = json_string_value(json_object_get(res, "message"));
    printf("%s\n", m ? m : "");
  }
  json_decref(res);
  return rc;
}

/* ls --paths: the running gateway's paths, or CONFIG's. */
static int print_paths(int fd, const char *config)
{
  json_t *cfg = NULL, *res = NULL;
  if (fd >= 0) {
    char *err = NULL;
    json_t *req = json_pack("{s:s}", "cmd", "ls");
    res = req ? lg_ctl_call(fd, req, &err) : NULL;
    json_decref(req);
    free(err);
    cfg = json_incref(json_object_get(res, "saveconfig"));
  } else {
    cfg = load_offline(config);
  }
  if (!cfg) {
    json_decref(res);
    return 1;
  }
  char *text = lg_admin_paths(cfg);
  if (text && *text)
    printf("%s\n", text);
  free(text);
  json_decref(cfg);
  json_decref(res);
  return 0;
}

int cmd_admin(int argc, char **argv)
{
  const char *config = NULL, *control = NULL;
  bool as_json = false, paths = false;
  char *words[MAX_WORDS];
  size_t nw = 0;
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "-c") || !strcmp(a, "--config") || !strcmp(a, "--control")) {
      if (i + 1 >= argc) {
        fprintf(stderr, "lungate: %s needs a value\n", a);
        return 2;
      }
      if (!strcmp(a, "--control"))
        control = argv[++i];
      else
        config = argv[++i];
    } else if (!strncmp(a, "--config=", 9)) {
      config = a + 9;
    } else if (!strncmp(a, "--control=", 10)) {
      control = a + 10;
    } else if (!strcmp(a, "--json")) {
      as_json = true;
    } else if (!strcmp(a, "--paths")) { /* ls --paths: every path, for completion */
      paths = true;
    } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
      lg_admin_usage(stdout);
      return 0;
    } else if (a[0] == '-' && a[1]) {
      fprintf(stderr, "lungate: unknown option %s\n", a);
      lg_admin_usage(stderr);
      return 2;
    } else if (nw == MAX_WORDS) {
      fprintf(stderr, "lungate: too many arguments\n");
      return 2;
    } else {
      words[nw++] = argv[i];
    }
  }
  if (!nw || (words[0][0] != '/' && strcmp(words[0], "ls") && strcmp(words[0], "saveconfig"))) {
    if (nw)
      fprintf(stderr, "lungate: unknown command \"%s\"\n", words[0]);
    lg_admin_usage(stderr);
    return 2;
  }
  if ((!strcmp(words[0], "ls") || !strcmp(words[0], "saveconfig")) && nw > 2) {
    fprintf(stderr, "lungate %s: too many arguments (usage: %s)\n", words[0],
            !strcmp(words[0], "ls") ? "ls [PATH]" : "saveconfig [FILE]");
    return 2;
  }
  if (paths && strcmp(words[0], "ls")) {
    fprintf(stderr, "lungate: --paths goes with ls\n");
    return 2;
  }
  char *err = NULL;
  int fd = lg_ctl_connect_for(control, config, &err);
  if (fd == -2 || (fd < 0 && !config)) {
    const char *sock = control ? control : lg_ctl_default_path();
    if (err)
      fprintf(stderr, "lungate: %s\n", err);
    else
      fprintf(stderr, "lungate: no gateway answers on the control socket %s: start one "
              "(lungate serve -c CONFIG), give its socket with --control, or give -c CONFIG "
              "to edit a config file\n", sock ? sock : "(none: not root and no "
              "XDG_RUNTIME_DIR)");
    free(err);
    return 1;
  }
  int rc = paths ? print_paths(fd, config)
         : fd >= 0 ? run_online(fd, as_json, words, nw) : run_offline(config, as_json, words, nw);
  if (fd >= 0)
    close(fd);
  return rc;
}
