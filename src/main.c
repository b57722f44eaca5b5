/* lungate: the command and its subcommands. */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "cluster/cluster.h"
#include "ctl/ctl.h"
#include "demo.h"
#include "fuse/fuse_view.h"
#include "iscsi/server.h"
#include "ops/ipxe_lines.h"
#include "ops/metrics.h"
#include "target/admin.h"
#include "target/model.h"
#include "target/image_cmd.h"
#include "target/overlay_cmd.h"
#include "util/log.h"
#include "web/web.h"

#define DEFAULT_IQN_PREFIX "iqn.2025-10.org.lungate:"
#define DEMO_IMAGE "lungate-demo.img"
#define DEMO_OVERLAYS "lungate-demo.overlays"
#define MAX_LISTEN_ARGS 16

static void usage(FILE *f)
{
  fprintf(f,
    "usage: lungate serve [-c CONFIG] [--listen ADDR:PORT]... [--fuse MOUNTPOINT [--fuse-writable]]\n"
    "                     [--metrics ADDR:PORT] [--log-level error|warn|info|debug] [-v]\n"
    "       lungate serve --image PATH [--iqn IQN] [--readonly] [--cow DIR] [--listen ADDR:PORT]...\n"
    "       lungate serve --image ISO --cd [--iqn IQN]   (the ISO as a CD-ROM, not a disk)\n"
    "       lungate serve                 (no config: serve a demo disk, " DEMO_IMAGE ",\n"
    "                                      each initiator writing to its own overlay)\n"
    "       lungate serve ... [--control SOCKET|none]\n"
    "       lungate serve ... --web ADDR:PORT [--web-password FILE] [--web-cert PEM --web-key PEM]\n"
    "       lungate passwd [-c CONFIG | --file FILE]   (the web console's admin password)\n"
    "       lungate sessions | overlays [NAME] | save [FILE] | reload | restore FILE | drain\n"
    "               [--control SOCKET] [--json]   (ask a running gateway)\n"
    "       lungate [-c CONFIG] PATH VERB [ARGS...]   (targetcli's object commands: a running\n"
    "               gateway, or CONFIG offline; lungate /iscsi --help)\n"
    "       lungate [-c CONFIG] ls [PATH] [--json]     (targetcli's tree)\n"
    "       lungate [-c CONFIG] saveconfig [FILE]\n"
    "       lungate overlay list|reset|commit|gc [-c CONFIG] ...  (lungate overlay --help)\n"
    "       lungate image publish|list|rollback|prune [-c CONFIG] ...  (lungate image --help)\n"
    "       lungate mount -c CONFIG MOUNTPOINT [--fuse-writable] [--foreground] [--log FILE]\n"
    "       lungate demo-disk PATH [SIZE_MIB]\n"
    "       lungate --version | --help         (man lungate: the whole manual)\n"
    "\n"
    "serve runs an iSCSI target in the foreground, logging to stderr; SIGTERM or\n"
    "SIGINT finish in-flight commands and stop it.  CONFIG is an rtslib-fb\n"
    "saveconfig.json (targetcli's format).  --listen overrides the config's portals\n"
    "and may be repeated (IPv6: [::]:3260).  --fuse shows every LUN and every\n"
    "client's disk as a file under MOUNTPOINT while the gateway runs (lungate\n"
    "mount: the same with no gateway running).  SIGHUP reloads CONFIG.  The control\n"
    "socket (default %s) answers ls, sessions,\n"
    "overlays, overlay, save, reload and the object commands.  --metrics serves Prometheus metrics at\n"
    "http://ADDR:PORT/metrics.  --web serves the web console (log in with the\n"
    "password lungate passwd set; HTTPS with --web-cert and --web-key).  Logs are logfmt lines on stderr; the iPXE lines\n"
    "that boot each target go to stdout.\n", lg_ctl_default_path() ? lg_ctl_default_path()
    : "none: not root and no XDG_RUNTIME_DIR");
}

/* A storage object name and IQN suffix from an image path: [a-z0-9_-]. */
static void name_from_path(const char *path, char *out, size_t len)
{
  const char *base = strrchr(path, '/');
  base = base ? base + 1 : path;
  size_t n = 0;
  for (const char *p = base; *p && *p != '.' && n + 1 < len; p++)
    out[n++] = isalnum((unsigned char)*p) || *p == '-' || *p == '_'
             ? (char)tolower((unsigned char)*p) : '-';
  if (n == 0)
    out[n++] = 'd';
  out[n] = '\0';
}

/* The config of one image as LUN 0 of one target, open to every initiator;
 * with cow_dir, every initiator writes to its own overlay there instead. */
static json_t *image_config(const char *path, const char *iqn, bool readonly,
                            const char *cow_dir, bool cd)
{
  char name[64], abspath[PATH_MAX], defiqn[160];
  name_from_path(path, name, sizeof name);
  if (!realpath(path, abspath))
    snprintf(abspath, sizeof abspath, "%s", path);
  if (!iqn) {
    snprintf(defiqn, sizeof defiqn, DEFAULT_IQN_PREFIX "%s", name);
    iqn = defiqn;
  }
  char so_path[96];
  snprintf(so_path, sizeof so_path, "/backstores/%s/%s", cow_dir ? "cow" : "fileio", name);
  json_t *j = json_pack(
    "{s:[{s:s,s:s,s:s,s:b,s:b}],s:[{s:s,s:s,s:[{s:i,s:b,s:{s:i,s:i,s:i},"
    "s:[{s:s,s:i}],s:[{s:i,s:s}]}]}]}",
    "storage_objects", "plugin", "fileio", "name", name, "dev", abspath,
    "readonly", readonly, "write_back", 1,
    "targets", "wwn", iqn, "fabric", "iscsi", "tpgs", "tag", 1, "enable", 1,
    "attributes", "generate_node_acls", 1, "authentication", 0, "demo_mode_write_protect", 0,
    "portals", "ip_address", "0.0.0.0", "port", 3260,
    "luns", "index", 0, "storage_object", so_path);
  if (j && cd) /* an MMC CD-ROM (read-only) rather than a disk */
    json_object_set_new(json_array_get(json_object_get(j, "storage_objects"), 0),
                        "device_type", json_string("cd"));
  if (j && cow_dir) {
    char absdir[PATH_MAX], base_ref[96];
    if (!realpath(cow_dir, absdir))
      snprintf(absdir, sizeof absdir, "%s", cow_dir);
    snprintf(base_ref, sizeof base_ref, "/backstores/fileio/%s", name);
    json_array_append_new(json_object_get(j, "storage_objects"),
                          json_pack("{s:s,s:s,s:s,s:s,s:b}", "plugin", "cow", "name", name,
                                    "base", base_ref, "overlay_dir", absdir,
                                    "per_initiator", 1));
  }
  return j;
}

#define CTL_FAILED ((struct lg_ctl *)-1)

/* The control socket of `serve --control SOCKET|none` (NULL: the default),
 * bound before the portals listen: NULL when there is none, CTL_FAILED
 * (after saying why) when the one asked for cannot be had. */
static struct lg_ctl *serve_control(const char *control)
{
  if (control && !strcmp(control, "none"))
    return NULL;
  char *err = NULL;
  struct lg_ctl *ctl = lg_ctl_open(control, &err);
  if (!ctl && err) {
    fprintf(stderr, "lungate: %s\n", err);
    free(err);
    return CTL_FAILED;
  }
  return ctl;
}

/* The model a metrics scrape renders: the one new logins get now. */
static struct lg_model *server_model(void *srv)
{
  return lg_server_model(srv);
}

static int cmd_serve(int argc, char **argv)
{
  static const struct option opts[] = {
    { "config", required_argument, NULL, 'c' },
    { "listen", required_argument, NULL, 'l' },
    { "image", required_argument, NULL, 'i' },
    { "iqn", required_argument, NULL, 'q' },
    { "readonly", no_argument, NULL, 'r' },
    { "cd", no_argument, NULL, 'D' },
    { "cow", required_argument, NULL, 'w' },
    { "verbose", no_argument, NULL, 'v' },
    { "help", no_argument, NULL, 'h' },
    { "fuse", required_argument, NULL, 'F' },
    { "fuse-writable", no_argument, NULL, 'W' },
    { "control", required_argument, NULL, 'C' },
    { "metrics", required_argument, NULL, 'M' },
    { "log-level", required_argument, NULL, 'L' },
    { "web", required_argument, NULL, 'B' },
    { "web-cert", required_argument, NULL, 'E' },
    { "web-key", required_argument, NULL, 'K' },
    { "web-password", required_argument, NULL, 'P' },
    { NULL, 0, NULL, 0 },
  };
  const char *control = NULL;
  const char *config = NULL, *image = NULL, *iqn = NULL, *cow_dir = NULL;
  const char *fuse_mountpoint = NULL, *metrics_addr = NULL;
  struct lg_web_opts web_opts = { 0 };
  enum lg_level level;
  bool fuse_writable = false;
  char *listen[MAX_LISTEN_ARGS];
  size_t n_listen = 0;
  bool readonly = false, cd = false;
  int ch;
  while ((ch = getopt_long(argc, argv, "c:l:i:q:rvh", opts, NULL)) != -1) {
    switch (ch) {
    case 'c': config = optarg; break;
    case 'l':
      if (n_listen == MAX_LISTEN_ARGS) {
        fprintf(stderr, "lungate: at most %d --listen addresses\n", MAX_LISTEN_ARGS);
        return 2;
      }
      listen[n_listen++] = optarg;
      break;
    case 'i': image = optarg; break;
    case 'q': iqn = optarg; break;
    case 'r': readonly = true; break;
    case 'D': cd = true; break;
    case 'w': cow_dir = optarg; break;
    case 'v': lg_log_set_level(LG_DEBUG); break;
    case 'F': fuse_mountpoint = optarg; break;
    case 'W': fuse_writable = true; break;
    case 'C': control = optarg; break;
    case 'M': metrics_addr = optarg; break;
    case 'B': web_opts.listen = optarg; break;
    case 'E': web_opts.cert = optarg; break;
    case 'K': web_opts.key = optarg; break;
    case 'P': web_opts.password_file = optarg; break;
    case 'L':
      if (lg_log_parse_level(optarg, &level) < 0) {
        fprintf(stderr, "lungate serve: --log-level %s: use error, warn, info or debug\n", optarg);
        return 2;
      }
      lg_log_set_level(level);
      break;
    case 'h': usage(stdout); return 0;
    default: usage(stderr); return 2;
    }
  }
  if (fuse_writable && !fuse_mountpoint) {
    fprintf(stderr, "lungate serve: --fuse-writable goes with --fuse MOUNTPOINT\n");
    return 2;
  }
  if (optind < argc) {
    fprintf(stderr, "lungate serve: unexpected argument \"%s\"\n", argv[optind]);
    usage(stderr);
    return 2;
  }
  if (config && image) {
    fprintf(stderr, "lungate serve: give either -c CONFIG or --image PATH, not both\n");
    return 2;
  }
  if (cd && (!image || cow_dir)) {
    fprintf(stderr, "lungate serve: --cd goes with --image ISO and without --cow; in a config, "
                    "set the storage object's \"device_type\": \"cd\"\n");
    return 2;
  }
  if (config && (iqn || readonly || cow_dir)) {
    fprintf(stderr, "lungate serve: --iqn, --readonly and --cow go with --image; in a config, "
                    "set the target's \"wwn\", the storage object's \"readonly\" or a "
                    "\"cow\" storage object\n");
    return 2;
  }

  bool demo = !config && !image;
  if (demo) {
    image = DEMO_IMAGE;
    struct stat st;
    if (stat(image, &st) < 0) {
      int r = demo_disk_create(image, (uint64_t)DEMO_DISK_DEFAULT_MIB << 20);
      if (r < 0) {
        fprintf(stderr, "lungate: cannot create the demo disk %s: %s\n", image, strerror(-r));
        return 1;
      }
      lg_kv(LG_INFO, "created the demo disk (boots lungate's boot program)",
            "path=%s mib=%d", LG_Q(image), DEMO_DISK_DEFAULT_MIB);
    }
    if (!iqn)
      iqn = DEFAULT_IQN_PREFIX "demo";
    if (!cow_dir) /* every PC counts its own boots */
      cow_dir = DEMO_OVERLAYS;
  }

  struct lg_model *model;
  char *err = NULL;
  char config_abs[PATH_MAX];
  struct stat cst;
  if (config && ((stat(config, &cst) < 0 && errno == ENOENT) ||
                 (stat(config, &cst) == 0 && S_ISREG(cst.st_mode) && cst.st_size == 0))) {
    /* targetcli's start: nothing yet; objects are created through the control
     * socket and saveconfig writes the file */
    config = lg_ctl_abspath(config, config_abs, sizeof config_abs);
    json_t *empty = lg_admin_empty();
    model = lg_model_load(empty, config, &err);
    json_decref(empty);
    lg_kv(LG_INFO, "empty configuration: serving nothing until objects are created "
          "(lungate /backstores/fileio create ..., lungate saveconfig writes the file)",
          "config=%s exists=%s", LG_Q(config), stat(config, &cst) == 0 ? "yes" : "no");
  } else if (config) {
    model = lg_model_load_file(config, &err);
  } else {
    struct stat st;
    if (stat(image, &st) < 0) {
      fprintf(stderr, "lungate: --image %s: %s; give the path of a raw disk or ISO image\n",
              image, strerror(errno));
      return 1;
    }
    if (cow_dir && mkdir(cow_dir, 0700) < 0 && errno != EEXIST) {
      fprintf(stderr, "lungate: --cow %s: %s\n", cow_dir, strerror(errno));
      return 1;
    }
    json_t *j = image_config(image, iqn, readonly, cow_dir, cd);
    model = j ? lg_model_load(j, NULL, &err) : NULL;
    json_decref(j);
  }
  if (!model) {
    fprintf(stderr, "lungate: %s\n", err ? err : "out of memory");
    free(err);
    return 1;
  }
  if (!n_listen && demo)
    listen[n_listen++] = "0.0.0.0:3260";
  /* mounted before the portals listen: once they accept, the view is there */
  struct lg_fuse *fuse = NULL;
  if (fuse_mountpoint) {
    fuse = lg_fuse_start(model, fuse_mountpoint, fuse_writable, &err);
    if (!fuse) {
      fprintf(stderr, "lungate: --fuse %s: %s\n", fuse_mountpoint, err ? err : "out of memory");
      free(err);
      lg_model_unref(model);
      return 1;
    }
  }
  /* the cluster first: a login must not be served before the peers are known */
  char cdir[PATH_MAX];
  snprintf(cdir, sizeof cdir, "%s", model->path ? model->path : ".");
  char *slash = strrchr(cdir, '/');
  if (slash)
    *slash = '\0';
  else
    snprintf(cdir, sizeof cdir, ".");
  if (lg_cluster_start(json_object_get(model->json, "cluster"), cdir, lg_ctl_cluster_clients,
                       &err) < 0) {
    fprintf(stderr, "lungate: %s\n", err ? err : "out of memory");
    free(err);
    lg_fuse_stop(fuse);
    lg_model_unref(model);
    return 1;
  }
  struct lg_ctl *ctl = serve_control(control);
  if (ctl == CTL_FAILED) {
    lg_cluster_stop();
    lg_fuse_stop(fuse);
    lg_model_unref(model);
    return 1;
  }
  struct lg_server *srv = lg_server_new(model, listen, n_listen, &err);
  if (!srv) {
    fprintf(stderr, "lungate: %s\n", err ? err : "cannot start");
    free(err);
    lg_ctl_stop(ctl);
    lg_cluster_stop();
    lg_fuse_stop(fuse);
    lg_model_unref(model);
    return 1;
  }
  for (size_t i = 0; i < model->n_targets; i++) {
    struct lg_tpg *tpg = lg_target_tpg(&model->targets[i]);
    for (size_t k = 0; tpg && k < tpg->n_luns; k++) {
      char so[320];
      snprintf(so, sizeof so, "/backstores/%s/%s", tpg->luns[k].so->plugin,
               tpg->luns[k].so->name);
      lg_kv(LG_INFO, "serving", "target=%s lun=%llu storage=%s bytes=%llu mode=%s",
            LG_Q(model->targets[i].iqn), (unsigned long long)tpg->luns[k].index, LG_Q(so),
            (unsigned long long)tpg->luns[k].so->size,
            tpg->luns[k].so->per_initiator ? "overlay-per-initiator"
            : tpg->luns[k].so->readonly ? "read-only" : "read-write");
    }
  }
  struct lg_metrics *metrics = NULL;
  if (metrics_addr && !(metrics = lg_metrics_start(server_model, srv, metrics_addr, &err))) {
    fprintf(stderr, "lungate: %s\n", err ? err : "out of memory");
    free(err);
    lg_ctl_stop(ctl);
    lg_server_free(srv);
    lg_fuse_stop(fuse);
    lg_model_unref(model);
    return 1;
  }
  struct lg_web *web = lg_web_start(srv, model, &web_opts, &err);
  if (!web && err) {
    fprintf(stderr, "lungate: %s\n", err);
    free(err);
    lg_metrics_stop(metrics);
    lg_ctl_stop(ctl);
    lg_server_free(srv);
    lg_fuse_stop(fuse);
    lg_model_unref(model);
    return 1;
  }
  lg_print_ipxe_lines(stdout, model, listen, n_listen);
  if (ctl && lg_ctl_serve(ctl, srv) < 0) {
    lg_ctl_stop(ctl);
    ctl = NULL;
  }
  if (!fuse) { /* the server holds the model: once a reload replaces it, it can go */
    lg_model_unref(model);
    model = NULL;
  }
  lg_cluster_serving(); /* the portals listen: peers may send clients now */
  sd_notify(0, "READY=1"); /* systemd Type=notify: the portals listen */
  int rc = lg_server_run(srv);
  sd_notify(0, "STOPPING=1");
  lg_cluster_stop(); /* our key goes: the peers take our clients at once */
  lg_web_stop(web);
  lg_metrics_stop(metrics);
  lg_ctl_stop(ctl);
  lg_fuse_stop(fuse); /* unmounts; before the model goes */
  lg_server_free(srv);
  lg_model_unref(model);
  lg_info("stopped");
  return rc < 0 ? 1 : 0;
}

int main(int argc, char **argv)
{
  /* signals are taken by the server's signalfd; no thread may get them */
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  sigaddset(&set, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &set, NULL);

  if (argc < 2) {
    usage(stderr);
    return 2;
  }
  const char *cmd = argv[1];
  if (!strcmp(cmd, "serve")) {
    lg_log_fatal_signals(); /* a gateway that dies says where, in its log */
    return cmd_serve(argc - 1, argv + 1);
  }
  if (!strcmp(cmd, "mount"))
    return cmd_mount(argc - 1, argv + 1);
  if (!strcmp(cmd, "overlay"))
    return cmd_overlay(argc - 1, argv + 1);
  if (!strcmp(cmd, "image"))
    return cmd_image(argc - 1, argv + 1);
  if (cmd[0] == '/' || !strcmp(cmd, "ls") || !strcmp(cmd, "saveconfig") || !strcmp(cmd, "-c") ||
      !strcmp(cmd, "--config") || !strncmp(cmd, "--config=", 9) || !strcmp(cmd, "--control") ||
      !strncmp(cmd, "--control=", 10))
    return cmd_admin(argc - 1, argv + 1);
  if (!strcmp(cmd, "sessions") || !strcmp(cmd, "overlays") || !strcmp(cmd, "drain") ||
      !strcmp(cmd, "save") || !strcmp(cmd, "reload") || !strcmp(cmd, "restore"))
    return cmd_ctl(argc - 1, argv + 1);
  if (!strcmp(cmd, "passwd"))
    return cmd_passwd(argc - 1, argv + 1);
  if (!strcmp(cmd, "demo-disk"))
    return cmd_demo_disk(argc - 1, argv + 1);
  if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
    usage(stdout);
    return 0;
  }
  if (!strcmp(cmd, "--version")) {
    printf("lungate 0.1.0\n");
    return 0;
  }
  fprintf(stderr, "lungate: unknown command \"%s\"\n", cmd);
  usage(stderr);
  return 2;
}
