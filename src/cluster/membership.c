/* Cluster membership: who the gateways are and which may take clients.
 *
 * With a RADOS pool ("pool" in the cluster section) each gateway keeps one
 * omap key on the object "lungate.cluster.NAME": its address as the key and
 * {"state", "seq", "time", "clients"} as the value, rewritten every
 * heartbeat_ms with seq one higher.  Every gateway reads all keys at the
 * same pace and judges a peer by its own monotonic clock: a peer whose seq
 * has not moved for dead_after_ms is dead (so clocks need not agree; the
 * wall "time" only spares a starting gateway from trusting a key left by a
 * gateway that died long ago).  A gateway that stops cleanly removes its key.
 * Only "alive" gateways take clients: a starting gateway writes "joining"
 * until its portals listen (a client sent to it earlier would find nobody
 * there), a stopping one "leaving" while it still listens and redirects for
 * two heartbeats, so that every peer has read it before its portals close.
 * RADOS is the shared engine: no protocol of our own, no leader.
 *
 * Without a pool, "gateways" is a fixed list: placement runs over the whole
 * list whether or not a member answers, so an initiator always comes back to
 * the gateway that holds its local overlay, and failover is not possible.
 *
 * Views differ for up to a heartbeat: a gateway that has just started
 * draining (or leaving) sends a login on to a peer that still takes it for
 * alive, and the peer would send it straight back, until the initiator gives
 * up (libiscsi after about ten hops; seen in the soak).  So a gateway
 * remembers whom it redirected lately, and when one of them comes back
 * before its view was read again, it reads the membership at once before it
 * places the login: the peer's new state is in RADOS (written when it
 * changed), and the two agree from then on.
 *
 * Locking: cl.mu guards the peer table, the flags and the redirect memory;
 * RADOS calls are made without it, from the heartbeat thread (and once by
 * lg_cluster_set_draining, and by a login that came back); cl.read_mu makes
 * reads one at a time (applied in the order they were made) and keeps the
 * connection from closing under one.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <rados/librados.h>

#include "cluster/cluster.h"
#include "util/log.h"

#define CL_MAX_PEERS 64
#define CL_RECENT 256                /* initiators redirected lately: a lossy hash table */
#define CL_OBJ_PREFIX "lungate.cluster."

struct cl_peer {
  char addr[LG_CLUSTER_ADDR_MAX];
  char state[16];                    /* as written: "alive", "draining", "joining", "leaving" */
  uint64_t seq;
  uint64_t changed_ms;               /* our monotonic clock when seq last moved */
  bool dead;
  json_t *clients;
};

static struct {
  pthread_mutex_t mu;
  bool on;
  char name[128];
  char self[LG_CLUSTER_ADDR_MAX];
  char entry[LG_CLUSTER_ADDR_MAX];
  bool rados;                        /* membership through a pool; else static */
  unsigned heartbeat_ms, dead_after_ms;
  bool draining;
  enum { CL_JOINING, CL_SERVING, CL_LEAVING } phase;
  struct cl_peer peers[CL_MAX_PEERS]; /* rados: the others; static: the list */
  size_t n_peers;
  lg_cluster_clients_fn clients;
  uint64_t seq;
  rados_t cluster;
  rados_ioctx_t io;
  char obj[160];
  pthread_t thread;
  bool thread_on, stopping;
  pthread_cond_t cv;
  pthread_mutex_t read_mu;
  uint64_t read_ms;                  /* when the last read that worked started */
  struct { uint64_t h, at_ms; } recent[CL_RECENT]; /* initiator hash, when redirected */
} cl = { .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER,
         .read_mu = PTHREAD_MUTEX_INITIALIZER };

static uint64_t now_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Our state as peers read it (cl.mu held). */
static const char *cl_self_state(void)
{
  return cl.phase == CL_JOINING ? "joining" : cl.phase == CL_LEAVING ? "leaving"
         : cl.draining ? "draining" : "alive";
}

/* Write our key (state, seq, time, clients). */
static int cl_beat(void)
{
  json_t *clients = cl.clients ? cl.clients() : json_array();
  pthread_mutex_lock(&cl.mu);
  json_t *v = json_pack("{s:s,s:I,s:I,s:o}", "state", cl_self_state(),
                        "seq", (json_int_t)++cl.seq, "time", (json_int_t)time(NULL),
                        "clients", clients ? clients : json_array());
  pthread_mutex_unlock(&cl.mu);
  char *text = v ? json_dumps(v, JSON_COMPACT) : NULL;
  json_decref(v);
  if (!text)
    return -ENOMEM;
  const char *keys[1] = { cl.self };
  const char *vals[1] = { text };
  size_t lens[1] = { strlen(text) };
  rados_write_op_t op = rados_create_write_op();
  rados_write_op_create(op, LIBRADOS_CREATE_IDEMPOTENT, NULL);
  rados_write_op_omap_set(op, keys, vals, lens, 1);
  int r = rados_write_op_operate(op, cl.io, cl.obj, NULL, 0);
  rados_release_write_op(op);
  free(text);
  return r;
}

/* Read every key and update the peer table (cl.read_mu held). */
static int cl_read_locked(void)
{
  if (!cl.io)
    return -ENOTCONN; /* stopped */
  uint64_t started = now_ms();
  rados_omap_iter_t it = NULL;
  int rval = 0;
  unsigned char more = 0;
  rados_read_op_t op = rados_create_read_op();
  rados_read_op_omap_get_vals2(op, NULL, NULL, CL_MAX_PEERS * 2, &it, &more, &rval);
  int r = rados_read_op_operate(op, cl.io, cl.obj, 0);
  if (r >= 0 && rval < 0)
    r = rval;
  if (r < 0) {
    rados_release_read_op(op);
    return r;
  }
  uint64_t now = now_ms();
  time_t wall = time(NULL);
  bool seen[CL_MAX_PEERS] = { false };
  pthread_mutex_lock(&cl.mu);
  char *key, *val;
  size_t len;
  while (rados_omap_get_next(it, &key, &val, &len) == 0 && key) {
    if (!strcmp(key, cl.self) || strlen(key) >= LG_CLUSTER_ADDR_MAX)
      continue;
    json_t *j = json_loadb(val, len, 0, NULL);
    if (!j)
      continue;
    size_t i;
    for (i = 0; i < cl.n_peers && strcmp(cl.peers[i].addr, key); i++)
      ;
    if (i == cl.n_peers) {
      if (cl.n_peers == CL_MAX_PEERS) {
        json_decref(j);
        continue;
      }
      struct cl_peer *p = &cl.peers[cl.n_peers++];
      memset(p, 0, sizeof *p);
      snprintf(p->addr, sizeof p->addr, "%s", key);
      p->seq = UINT64_MAX; /* never seen: the first read counts as a change */
      /* a key whose writer's clock says it is old is dead from the start */
      json_int_t t = json_integer_value(json_object_get(j, "time"));
      p->changed_ms = wall - t > (json_int_t)(cl.dead_after_ms / 1000 + 1) ? 0 : now;
    }
    struct cl_peer *p = &cl.peers[i];
    seen[i] = true;
    uint64_t seq = (uint64_t)json_integer_value(json_object_get(j, "seq"));
    if (seq != p->seq) {
      if (p->seq != UINT64_MAX)
        p->changed_ms = now;
      p->seq = seq;
    }
    const char *st = json_string_value(json_object_get(j, "state"));
    snprintf(p->state, sizeof p->state, "%s", st ? st : "alive");
    json_decref(p->clients);
    p->clients = json_incref(json_object_get(j, "clients"));
    bool dead = p->changed_ms + cl.dead_after_ms < now;
    if (dead != p->dead)
      lg_kv(dead ? LG_WARN : LG_INFO, dead ? "cluster: gateway dead" : "cluster: gateway alive",
            "gateway=%s", p->addr);
    p->dead = dead;
    json_decref(j);
  }
  /* keys gone: a gateway that left cleanly */
  for (size_t i = 0; i < cl.n_peers;) {
    if (seen[i]) {
      i++;
      continue;
    }
    lg_kv(LG_INFO, "cluster: gateway left", "gateway=%s", cl.peers[i].addr);
    json_decref(cl.peers[i].clients);
    cl.peers[i] = cl.peers[--cl.n_peers];
    seen[i] = seen[cl.n_peers];
  }
  cl.read_ms = started;
  pthread_mutex_unlock(&cl.mu);
  rados_omap_get_end(it);
  rados_release_read_op(op);
  return 0;
}

static int cl_read(void)
{
  pthread_mutex_lock(&cl.read_mu);
  int r = cl_read_locked();
  pthread_mutex_unlock(&cl.read_mu);
  return r;
}

static void *cl_thread(void *arg)
{
  (void)arg;
  int last = 0;
  pthread_mutex_lock(&cl.mu);
  while (!cl.stopping) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_nsec += (long)(cl.heartbeat_ms % 1000) * 1000000;
    ts.tv_sec += cl.heartbeat_ms / 1000 + ts.tv_nsec / 1000000000;
    ts.tv_nsec %= 1000000000;
    while (!cl.stopping && pthread_cond_timedwait(&cl.cv, &cl.mu, &ts) != ETIMEDOUT)
      ;
    if (cl.stopping)
      break;
    pthread_mutex_unlock(&cl.mu);
    int r = cl_beat();
    if (r >= 0)
      r = cl_read();
    if (r < 0 && last >= 0)
      lg_kv(LG_WARN, "cluster: RADOS heartbeat failed", "object=%s error=%s", cl.obj,
            LG_Q(strerror(-r)));
    else if (r >= 0 && last < 0)
      lg_kv(LG_INFO, "cluster: RADOS heartbeat works again", "object=%s", cl.obj);
    last = r;
    pthread_mutex_lock(&cl.mu);
  }
  pthread_mutex_unlock(&cl.mu);
  return NULL;
}

static int cl_error(char **err, const char *fmt, const char *a, const char *b)
{
  if (asprintf(err, fmt, a, b) < 0)
    *err = NULL;
  return -1;
}

static int cl_addr(const json_t *v, char *out, const char *what, char **err)
{
  const char *s = json_string_value(v);
  if (!s || !*s || strlen(s) >= LG_CLUSTER_ADDR_MAX || !strrchr(s, ':') ||
      strrchr(s, ':')[1] == '\0' || strchr(s, ','))
    return cl_error(err, "cluster: %s%s must be \"IP:PORT\" (an explicit port)", what, "");
  snprintf(out, LG_CLUSTER_ADDR_MAX, "%s", s);
  return 0;
}

static int cl_ms(const json_t *sec, const char *key, unsigned dflt, unsigned *out, char **err)
{
  json_t *v = json_object_get(sec, key);
  if (!v) {
    *out = dflt;
    return 0;
  }
  if (!json_is_integer(v) || json_integer_value(v) < 100 || json_integer_value(v) > 600000)
    return cl_error(err, "cluster: \"%s\" must be a number of milliseconds (100-600000)%s", key,
                    "");
  *out = (unsigned)json_integer_value(v);
  return 0;
}

/* Connect to the pool (conf, user, cluster as in the rbd backstore). */
static int cl_connect(const json_t *sec, const char *config_dir, char **err)
{
  const char *pool = json_string_value(json_object_get(sec, "pool"));
  const char *conf = json_string_value(json_object_get(sec, "conf"));
  const char *user = json_string_value(json_object_get(sec, "user"));
  const char *cname = json_string_value(json_object_get(sec, "ceph_cluster"));
  char client[256], path[PATH_MAX];
  snprintf(client, sizeof client, "%s%s", user && strchr(user, '.') ? "" : "client.",
           user ? user : "admin");
  int r = rados_create2(&cl.cluster, cname ? cname : "ceph", client, 0);
  if (r < 0) {
    cl.cluster = NULL;
    return cl_error(err, "cluster: cannot set up a Ceph client as %s: %s", client, strerror(-r));
  }
  if (conf) {
    if (conf[0] == '/' || !config_dir)
      snprintf(path, sizeof path, "%s", conf);
    else
      snprintf(path, sizeof path, "%s/%s", config_dir, conf);
    r = rados_conf_read_file(cl.cluster, path);
  } else {
    r = rados_conf_read_file(cl.cluster, NULL);
    if (r == -ENOENT || r == -EINVAL)
      r = 0;
  }
  if (r < 0)
    return cl_error(err, "cluster: cannot read Ceph configuration %s: %s", conf ? path : "(default)",
                    strerror(-r));
  rados_conf_parse_env(cl.cluster, NULL);
  /* a heartbeat must not hang: fail fast, and try again next beat */
  char num[16];
  snprintf(num, sizeof num, "%u", cl.dead_after_ms / 1000 + 2);
  rados_conf_set(cl.cluster, "rados_osd_op_timeout", num);
  rados_conf_set(cl.cluster, "rados_mon_op_timeout", num);
  rados_conf_set(cl.cluster, "client_mount_timeout", "30");
  r = rados_connect(cl.cluster);
  if (r < 0)
    return cl_error(err, "cluster: cannot connect to the Ceph cluster as %s: %s", client,
                    strerror(-r));
  r = rados_ioctx_create(cl.cluster, pool, &cl.io);
  if (r < 0) {
    cl.io = NULL;
    return cl_error(err, "cluster: cannot open pool \"%s\": %s", pool, strerror(-r));
  }
  return 0;
}

static void cl_disconnect(void)
{
  pthread_mutex_lock(&cl.read_mu); /* a login's read of the membership ends first */
  if (cl.io)
    rados_ioctx_destroy(cl.io);
  if (cl.cluster)
    rados_shutdown(cl.cluster);
  cl.io = NULL;
  cl.cluster = NULL;
  pthread_mutex_unlock(&cl.read_mu);
}

int lg_cluster_start(const json_t *sec, const char *config_dir, lg_cluster_clients_fn clients,
                     char **err)
{
  *err = NULL;
  if (!sec || json_is_null(sec))
    return 0;
  if (!json_is_object(sec))
    return cl_error(err, "cluster: must be an object%s%s", "", "");
  const char *name = json_string_value(json_object_get(sec, "name"));
  const char *pool = json_string_value(json_object_get(sec, "pool"));
  json_t *list = json_object_get(sec, "gateways");
  if (!name || !*name || strlen(name) >= sizeof cl.name || strchr(name, '/'))
    return cl_error(err, "cluster: \"name\" must be a short name%s%s", "", "");
  if (cl_addr(json_object_get(sec, "address"), cl.self, "\"address\" (this gateway's)", err) < 0)
    return -1;
  if (json_object_get(sec, "entry") &&
      cl_addr(json_object_get(sec, "entry"), cl.entry, "\"entry\"", err) < 0)
    return -1;
  if (cl_ms(sec, "heartbeat_ms", 1000, &cl.heartbeat_ms, err) < 0 ||
      cl_ms(sec, "dead_after_ms", 4000, &cl.dead_after_ms, err) < 0)
    return -1;
  if (cl.dead_after_ms < 2 * cl.heartbeat_ms)
    return cl_error(err, "cluster: \"dead_after_ms\" must be at least twice \"heartbeat_ms\"%s%s",
                    "", "");
  if (!pool == !list)
    return cl_error(err, "cluster: give either \"pool\" (membership in RADOS, failover) or "
                    "\"gateways\" (a static list, no failover)%s%s", "", "");
  snprintf(cl.name, sizeof cl.name, "%s", name);
  cl.clients = clients;
  cl.n_peers = 0;
  if (list) {
    size_t i;
    json_t *v;
    bool self_listed = false;
    if (!json_is_array(list) || json_array_size(list) == 0 || json_array_size(list) > CL_MAX_PEERS)
      return cl_error(err, "cluster: \"gateways\" must be a list of \"IP:PORT\"%s%s", "", "");
    json_array_foreach(list, i, v) {
      struct cl_peer *p = &cl.peers[cl.n_peers++];
      memset(p, 0, sizeof *p);
      if (cl_addr(v, p->addr, "each of \"gateways\"", err) < 0)
        return -1;
      self_listed |= !strcmp(p->addr, cl.self);
    }
    if (!self_listed)
      return cl_error(err, "cluster: \"gateways\" must list this gateway's \"address\" %s%s",
                      cl.self, "");
    cl.rados = false;
    cl.on = true;
    lg_kv(LG_INFO, "cluster: static", "name=%s self=%s gateways=%zu", LG_Q(cl.name), cl.self,
          cl.n_peers);
    return 0;
  }
  cl.rados = true;
  cl.phase = CL_JOINING;
  snprintf(cl.obj, sizeof cl.obj, CL_OBJ_PREFIX "%s", cl.name);
  if (cl_connect(sec, config_dir, err) < 0)
    goto fail;
  int r = cl_beat();
  if (r >= 0)
    r = cl_read();
  if (r < 0) {
    cl_error(err, "cluster: cannot write the heartbeat to %s: %s", cl.obj, strerror(-r));
    goto fail;
  }
  cl.stopping = false;
  /* the thread's waits are deadlines on the monotonic clock, and a condition
   * variable's default clock is the wall clock: with it, every deadline was
   * long past and the thread beat and read RADOS without pause */
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_destroy(&cl.cv);
  pthread_cond_init(&cl.cv, &ca);
  pthread_condattr_destroy(&ca);
  if (pthread_create(&cl.thread, NULL, cl_thread, NULL) != 0) {
    cl_error(err, "cluster: cannot start the heartbeat thread%s%s", "", "");
    goto fail;
  }
  cl.thread_on = true;
  cl.on = true;
  lg_kv(LG_INFO, "cluster: joined", "name=%s self=%s object=%s peers=%zu", LG_Q(cl.name),
        cl.self, cl.obj, cl.n_peers);
  return 0;
fail:
  cl_disconnect();
  return -1;
}

void lg_cluster_stop(void)
{
  if (!cl.on)
    return;
  if (cl.thread_on) {
    pthread_mutex_lock(&cl.mu);
    cl.stopping = true;
    pthread_cond_broadcast(&cl.cv);
    pthread_mutex_unlock(&cl.mu);
    pthread_join(cl.thread, NULL);
    cl.thread_on = false;
  }
  if (cl.rados) {
    const char *keys[1] = { cl.self };
    rados_write_op_t op = rados_create_write_op();
    rados_write_op_omap_rm_keys(op, keys, 1);
    rados_write_op_operate(op, cl.io, cl.obj, NULL, 0);
    rados_release_write_op(op);
    cl_disconnect();
  }
  pthread_mutex_lock(&cl.mu);
  for (size_t i = 0; i < cl.n_peers; i++)
    json_decref(cl.peers[i].clients);
  cl.n_peers = 0;
  cl.on = false;
  pthread_mutex_unlock(&cl.mu);
}

bool lg_cluster_enabled(void) { return cl.on; }
unsigned lg_cluster_heartbeat_ms(void) { return cl.on && cl.rados ? cl.heartbeat_ms : 0; }
bool lg_cluster_failover(void) { return cl.on && cl.rados; }
const char *lg_cluster_self(void) { return cl.on ? cl.self : NULL; }
const char *lg_cluster_entry(void) { return cl.on && cl.entry[0] ? cl.entry : NULL; }

int lg_cluster_home(const char *initiator, char *out, size_t len)
{
  if (!cl.on)
    return 0;
  const char *cand[CL_MAX_PEERS + 1];
  size_t n = 0;
  uint64_t h = lg_place_weight(initiator, "");
  size_t slot = (size_t)(h % CL_RECENT);
  if (cl.rados) {
    /* back soon after we sent it away, and our view is no newer than that:
     * the gateway we sent it to disagrees, so read what it wrote */
    pthread_mutex_lock(&cl.mu);
    uint64_t at = cl.recent[slot].at_ms;
    bool back = cl.recent[slot].h == h && at >= cl.read_ms && now_ms() - at < cl.dead_after_ms;
    pthread_mutex_unlock(&cl.mu);
    if (back) {
      char safe[LG_SAFE_MAX];
      int r = cl_read();
      lg_kv(LG_INFO, "cluster: a redirected login came back: membership read again",
            "initiator=%s%s%s", lg_safe(initiator, safe, sizeof safe), r < 0 ? " error=" : "",
            r < 0 ? LG_Q(strerror(-r)) : "");
    }
  }
  pthread_mutex_lock(&cl.mu);
  if (!cl.rados) {
    for (size_t i = 0; i < cl.n_peers; i++)
      cand[n++] = cl.peers[i].addr; /* all of them: the overlay lives on one */
  } else {
    if (cl.phase == CL_SERVING && !cl.draining)
      cand[n++] = cl.self;
    for (size_t i = 0; i < cl.n_peers; i++)
      if (!cl.peers[i].dead && !strcmp(cl.peers[i].state, "alive"))
        cand[n++] = cl.peers[i].addr;
  }
  int k = lg_place(initiator, cand, n);
  int r = k >= 0 && strcmp(cand[k], cl.self) ? 1 : 0;
  if (r) {
    snprintf(out, len, "%s", cand[k]);
    if (cl.rados) { /* (a static list's view never changes: nothing to read again) */
      cl.recent[slot].h = h;
      cl.recent[slot].at_ms = now_ms();
    }
  }
  pthread_mutex_unlock(&cl.mu);
  return r; /* nobody else can take it (all draining or dead): serve it here */
}

void lg_cluster_serving(void)
{
  if (!cl.on || !cl.rados)
    return;
  pthread_mutex_lock(&cl.mu);
  cl.phase = CL_SERVING;
  pthread_mutex_unlock(&cl.mu);
  if (cl_beat() < 0) /* the heartbeat thread says it again within heartbeat_ms */
    lg_kv(LG_WARN, "cluster: cannot publish the alive state yet", "object=%s", cl.obj);
}

unsigned lg_cluster_leave(void)
{
  if (!cl.on || !cl.rados)
    return 0;
  pthread_mutex_lock(&cl.mu);
  cl.phase = CL_LEAVING;
  pthread_mutex_unlock(&cl.mu);
  lg_kv(LG_INFO, "cluster: leaving", "self=%s", cl.self);
  if (cl_beat() < 0)
    return 0; /* the peers cannot learn it from us: they will see the key go */
  return 2 * cl.heartbeat_ms;
}

int lg_cluster_set_draining(bool on)
{
  if (!cl.on)
    return -EINVAL;
  pthread_mutex_lock(&cl.mu);
  cl.draining = on;
  pthread_mutex_unlock(&cl.mu);
  lg_kv(LG_INFO, on ? "cluster: draining" : "cluster: taking clients again", "self=%s", cl.self);
  return cl.rados ? cl_beat() : 0; /* peers see it at their next read */
}

json_t *lg_cluster_json(void)
{
  if (!cl.on)
    return NULL;
  json_t *mine = cl.clients ? cl.clients() : json_array();
  json_t *gws = json_array();
  pthread_mutex_lock(&cl.mu);
  if (cl.rados)
    json_array_append_new(gws, json_pack("{s:s,s:s,s:o,s:b}", "address", cl.self, "state",
                                         cl_self_state(), "clients",
                                         mine ? mine : json_array(), "self", 1));
  for (size_t i = 0; i < cl.n_peers; i++) {
    const struct cl_peer *p = &cl.peers[i];
    bool self = !strcmp(p->addr, cl.self);
    const char *state = !cl.rados ? (self && cl.draining ? "draining" : "listed")
                        : p->dead ? "dead" : p->state;
    json_t *clients = self ? json_incref(mine) : json_incref(p->clients);
    json_array_append_new(gws, json_pack("{s:s,s:s,s:o,s:b}", "address", p->addr, "state",
                                         state, "clients", clients ? clients : json_array(),
                                         "self", self));
  }
  json_t *res = json_pack("{s:s,s:s,s:b,s:s,s:s?,s:o}", "name", cl.name, "mode",
                          cl.rados ? "rados" : "static", "failover", cl.rados, "self", cl.self,
                          "entry", cl.entry[0] ? cl.entry : NULL, "gateways", gws);
  pthread_mutex_unlock(&cl.mu);
  if (!cl.rados)
    json_decref(mine);
  return res;
}
