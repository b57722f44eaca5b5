/* lungate: the command and its subcommands. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <ifaddrs.h>
#include <limits.h>
#include <net/if.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctl/ctl.h"
#include "demo.h"
#include "fuse/fuse_view.h"
#include "iscsi/server.h"
#include "target/model.h"
#include "target/overlay_cmd.h"
#include "util/log.h"

#define DEFAULT_IQN_PREFIX "iqn.2025-10.org.lungate:"
#define DEMO_IMAGE "lungate-demo.img"
#define DEMO_OVERLAYS "lungate-demo.overlays"
#define MAX_LISTEN_ARGS 16

static void usage(FILE *f)
{
  fprintf(f,
    "usage: lungate serve [-c CONFIG] [--listen ADDR:PORT]... [--fuse MOUNTPOINT [--fuse-writable]] [-v]\n"
    "       lungate serve --image PATH [--iqn IQN] [--readonly] [--cow DIR] [--listen ADDR:PORT]...\n"
    "       lungate serve                 (no config: serve a demo disk, " DEMO_IMAGE ",\n"
    "                                      each initiator writing to its own overlay)\n"
    "       lungate serve ... [--control SOCKET|none]\n"
    "       lungate ls | sessions | overlays [NAME] | save [FILE] | reload | restore FILE\n"
    "               [--control SOCKET] [--json]   (ask a running gateway)\n"
    "       lungate overlay list|reset|commit|gc [-c CONFIG] ...  (lungate overlay --help)\n"
    "       lungate mount -c CONFIG MOUNTPOINT [--fuse-writable] [--foreground]\n"
    "       lungate demo-disk PATH [SIZE_MIB]\n"
    "\n"
    "serve runs an iSCSI target in the foreground, logging to stderr; SIGTERM or\n"
    "SIGINT finish in-flight commands and stop it.  CONFIG is an rtslib-fb\n"
    "saveconfig.json (targetcli's format).  --listen overrides the config's portals\n"
    "and may be repeated (IPv6: [::]:3260).  --fuse shows every LUN and every\n"
    "client's disk as a file under MOUNTPOINT while the gateway runs (lungate\n"
    "mount: the same with no gateway running).  SIGHUP reloads CONFIG.  The control\n"
    "socket (default %s) answers ls, sessions,\n"
    "overlays, overlay, save and reload.\n", lg_ctl_default_path() ? lg_ctl_default_path()
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
                            const char *cow_dir)
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

/* Tell the user how to boot the demo disk from iPXE. */
static void print_ipxe_lines(const char *iqn, char *const *listen, size_t n_listen)
{
  unsigned port = 3260;
  char host[64] = "";
  if (n_listen)
    lg_parse_hostport(listen[0], host, sizeof host, &port);
  fprintf(stderr, "\nBoot the demo disk from iPXE (this machine's addresses):\n");
  struct ifaddrs *ifa, *i;
  bool any = false;
  if (getifaddrs(&ifa) == 0) {
    for (i = ifa; i; i = i->ifa_next) {
      if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET || (i->ifa_flags & IFF_LOOPBACK))
        continue;
      char a[INET_ADDRSTRLEN];
      inet_ntop(AF_INET, &((struct sockaddr_in *)i->ifa_addr)->sin_addr, a, sizeof a);
      if (*host && strcmp(host, "0.0.0.0") && strcmp(host, a))
        continue;
      fprintf(stderr,
              "\n  #!ipxe\n  dhcp\n  set initiator-iqn " DEFAULT_IQN_PREFIX "client-${mac:hexhyp}\n"
              "  sanboot iscsi:%s::%u::%s || reboot\n", a, port, iqn);
      any = true;
    }
    freeifaddrs(ifa);
  }
  if (!any) /* listening on loopback: a VM with QEMU's user networking gets here */
    fprintf(stderr,
            "\n  #!ipxe\n  dhcp\n  set initiator-iqn " DEFAULT_IQN_PREFIX "client-${mac:hexhyp}\n"
            "  sanboot iscsi:%s::%u::%s || reboot\n", strncmp(host, "127.", 4) ? "SERVER-IP"
            : "10.0.2.2", port, iqn);
  fprintf(stderr, "\n(QEMU user networking reaches this host as 10.0.2.2.)\n\n");
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

static int cmd_serve(int argc, char **argv)
{
  static const struct option opts[] = {
    { "config", required_argument, NULL, 'c' },
    { "listen", required_argument, NULL, 'l' },
    { "image", required_argument, NULL, 'i' },
    { "iqn", required_argument, NULL, 'q' },
    { "readonly", no_argument, NULL, 'r' },
    { "cow", required_argument, NULL, 'w' },
    { "verbose", no_argument, NULL, 'v' },
    { "help", no_argument, NULL, 'h' },
    { "fuse", required_argument, NULL, 'F' },
    { "fuse-writable", no_argument, NULL, 'W' },
    { "control", required_argument, NULL, 'C' },
    { NULL, 0, NULL, 0 },
  };
  const char *control = NULL;
  const char *config = NULL, *image = NULL, *iqn = NULL, *cow_dir = NULL;
  const char *fuse_mountpoint = NULL;
  bool fuse_writable = false;
  char *listen[MAX_LISTEN_ARGS];
  size_t n_listen = 0;
  bool readonly = false;
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
    case 'w': cow_dir = optarg; break;
    case 'v': lg_log_set_level(LG_DEBUG); break;
    case 'F': fuse_mountpoint = optarg; break;
    case 'W': fuse_writable = true; break;
    case 'C': control = optarg; break;
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
      lg_info("created the demo disk %s (%d MiB, boots lungate's boot program)", image,
              DEMO_DISK_DEFAULT_MIB);
    }
    if (!iqn)
      iqn = DEFAULT_IQN_PREFIX "demo";
    if (!cow_dir) /* every PC counts its own boots */
      cow_dir = DEMO_OVERLAYS;
  }

  struct lg_model *model;
  char *err = NULL;
  if (config) {
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
    json_t *j = image_config(image, iqn, readonly, cow_dir);
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
  struct lg_ctl *ctl = serve_control(control);
  if (ctl == CTL_FAILED) {
    lg_fuse_stop(fuse);
    lg_model_unref(model);
    return 1;
  }
  struct lg_server *srv = lg_server_new(model, listen, n_listen, &err);
  if (!srv) {
    fprintf(stderr, "lungate: %s\n", err ? err : "cannot start");
    free(err);
    lg_ctl_stop(ctl);
    lg_fuse_stop(fuse);
    lg_model_unref(model);
    return 1;
  }
  for (size_t i = 0; i < model->n_targets; i++) {
    struct lg_tpg *tpg = lg_target_tpg(&model->targets[i]);
    for (size_t k = 0; tpg && k < tpg->n_luns; k++)
      lg_info("target %s LUN %llu: %s/%s, %llu bytes, %s", model->targets[i].iqn,
              (unsigned long long)tpg->luns[k].index, tpg->luns[k].so->plugin,
              tpg->luns[k].so->name, (unsigned long long)tpg->luns[k].so->size,
              tpg->luns[k].so->per_initiator ? "a private overlay per initiator"
              : tpg->luns[k].so->readonly ? "read-only" : "read-write");
  }
  if (demo)
    print_ipxe_lines(iqn, listen, n_listen);
  if (ctl && lg_ctl_serve(ctl, srv) < 0) {
    lg_ctl_stop(ctl);
    ctl = NULL;
  }
  if (!fuse) { /* the server holds the model: once a reload replaces it, it can go */
    lg_model_unref(model);
    model = NULL;
  }
  int rc = lg_server_run(srv);
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
  if (!strcmp(cmd, "serve"))
    return cmd_serve(argc - 1, argv + 1);
  if (!strcmp(cmd, "mount"))
    return cmd_mount(argc - 1, argv + 1);
  if (!strcmp(cmd, "overlay"))
    return cmd_overlay(argc - 1, argv + 1);
  if (!strcmp(cmd, "ls") || !strcmp(cmd, "sessions") || !strcmp(cmd, "overlays") ||
      !strcmp(cmd, "save") || !strcmp(cmd, "reload") || !strcmp(cmd, "restore"))
    return cmd_ctl(argc - 1, argv + 1);
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
