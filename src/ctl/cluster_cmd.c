/* The cluster's gateway-side commands: the clients it serves (published in
 * the heartbeat) and `lungate drain`. */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "cluster/cluster.h"
#include "ctl/ctl.h"
#include "iscsi/iscsi.h"
#include "util/log.h"

static void clients_one(struct iscsi_session *s, void *arg)
{
  if (s->discovery || !s->tsih)
    return;
  size_t i;
  json_t *v;
  json_array_foreach((json_t *)arg, i, v)
    if (!strcasecmp(json_string_value(v), s->initiator))
      return; /* one initiator, several sessions: named once */
  json_array_append_new(arg, json_string(s->initiator));
}

json_t *lg_ctl_cluster_clients(void)
{
  json_t *arr = json_array();
  if (arr)
    iscsi_sessions_foreach(clients_one, arr);
  return arr;
}

struct drain_pick {
  uint16_t skip_below;               /* tsih already asked */
  uint16_t tsih;                     /* the session picked, or 0 */
  char initiator[256];
};

/* The Normal session with the lowest TSIH at or above skip_below. */
static void drain_pick_one(struct iscsi_session *s, void *arg)
{
  struct drain_pick *p = arg;
  if (s->discovery || !s->tsih || s->tsih < p->skip_below || (p->tsih && s->tsih > p->tsih))
    return;
  p->tsih = s->tsih;
  snprintf(p->initiator, sizeof p->initiator, "%s", s->initiator);
}

struct drain_act {
  uint16_t tsih;
  unsigned wait_s;
  bool found, shut;
};

static void drain_ask(struct iscsi_session *s, void *arg)
{
  struct drain_act *a = arg;
  if (s->tsih != a->tsih || s->discovery)
    return;
  a->found = true;
  if (a->shut)
    iscsi_conn_shutdown(s->conn);
  else
    iscsi_send_logout_request(s->conn, a->wait_s);
}

static void drain_find(struct iscsi_session *s, void *arg)
{
  struct drain_act *a = arg;
  if (s->tsih == a->tsih && !s->discovery)
    a->found = true;
}

/* Wait up to ms for session tsih to end; true when it did. */
static bool drain_wait_gone(uint16_t tsih, unsigned ms)
{
  for (unsigned t = 0; t <= ms; t += 50) {
    struct drain_act a = { .tsih = tsih };
    iscsi_sessions_foreach(drain_find, &a);
    if (!a.found)
      return true;
    usleep(50 * 1000);
  }
  return false;
}

json_t *lg_ctl_drain(unsigned wait_s)
{
  if (!lg_cluster_enabled())
    return json_pack("{s:b,s:s}", "ok", 0, "error", "this gateway is in no cluster");
  if (!lg_cluster_failover())
    return json_pack("{s:b,s:s}", "ok", 0, "error", "a static cluster cannot drain: each "
                     "client's overlay is on its own gateway (membership in RADOS can)");
  int r = lg_cluster_set_draining(true);
  if (r < 0)
    return json_pack("{s:b,s:s}", "ok", 0, "error", "cannot publish the draining state");
  /* the peers read every heartbeat: let them see it before a client comes
   * back (two of them, as a leaving gateway waits; at least 1.5 s) */
  unsigned wait_ms = 2 * lg_cluster_heartbeat_ms();
  usleep((wait_ms < 1500 ? 1500 : wait_ms) * 1000u);
  json_t *moved = json_array(), *forced = json_array();
  uint16_t next = 1;
  for (;;) {
    struct drain_pick p = { .skip_below = next };
    iscsi_sessions_foreach(drain_pick_one, &p);
    if (!p.tsih)
      break;
    next = (uint16_t)(p.tsih + 1);
    struct drain_act a = { .tsih = p.tsih, .wait_s = wait_s };
    iscsi_sessions_foreach(drain_ask, &a);
    if (!a.found)
      continue;
    char safe[LG_SAFE_MAX];
    lg_kv(LG_INFO, "drain: logout requested", "initiator=%s tsih=%u within=%us",
          lg_safe(p.initiator, safe, sizeof safe), p.tsih, wait_s);
    if (drain_wait_gone(p.tsih, wait_s * 1000 + 2000)) {
      json_array_append_new(moved, json_string(p.initiator));
      continue;
    }
    /* it did not log out: close its connection (it reconnects and retries) */
    a.shut = true;
    a.found = false;
    iscsi_sessions_foreach(drain_ask, &a);
    lg_kv(LG_WARN, "drain: no logout, connection closed", "initiator=%s tsih=%u",
          lg_safe(p.initiator, safe, sizeof safe), p.tsih);
    drain_wait_gone(p.tsih, 5000);
    json_array_append_new(forced, json_string(p.initiator));
    if (!next)
      break;
  }
  char msg[160];
  snprintf(msg, sizeof msg, "drained: %zu client(s) logged out, %zu disconnected",
           json_array_size(moved), json_array_size(forced));
  return json_pack("{s:b,s:s,s:o,s:o}", "ok", 1, "message", msg, "moved", moved,
                   "disconnected", forced);
}
