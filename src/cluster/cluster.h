/* Several gateways, one entry point (README "Several gateways").
 *
 * Every gateway of a cluster redirects: a Normal-session login goes to the
 * initiator's home gateway, chosen by rendezvous hashing of the initiator
 * name over the gateways that may take clients (placement.c).  Which those
 * are comes from RADOS heartbeats (membership.c: one omap key per gateway on
 * one object of the cluster's pool), or, without Ceph, from a static list.
 * The process has at most one cluster; lg_cluster_* are safe from any thread.
 */
#ifndef LUNGATE_CLUSTER_CLUSTER_H
#define LUNGATE_CLUSTER_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#define LG_CLUSTER_ADDR_MAX 64       /* "IP:PORT", "[V6]:PORT" */

/* placement.c: rendezvous (highest random weight) hashing.  The index in
 * addrs[0..n) of the gateway that serves initiator: the one whose
 * hash(address, initiator) is highest, so that removing a gateway moves only
 * its own initiators; -1 when n is 0.  Pure: the same inputs, the same answer. */
int lg_place(const char *initiator, const char *const *addrs, size_t n);
/* The weight lg_place compares (exposed for the unit test). */
uint64_t lg_place_weight(const char *initiator, const char *addr);

/* What the cluster needs from the gateway: the initiator names it serves now
 * (a new JSON array of strings), for the heartbeat and `lungate ls`. */
typedef json_t *(*lg_cluster_clients_fn)(void);

/* Join the cluster described by section (the config's "cluster" object; NULL:
 * no cluster, returns 0); config_dir resolves a relative "conf".  With a pool
 * the first heartbeat ("joining": peers send it no client yet) is written and
 * the peers read before it returns.  -1 with a message in *err (malloc'd). */
int lg_cluster_start(const json_t *section, const char *config_dir,
                     lg_cluster_clients_fn clients, char **err);
/* The portals listen: state "alive" (with a pool), clients may come. */
void lg_cluster_serving(void);
/* Stopping: state "leaving" (with a pool), written at once; this gateway's own
 * placement leaves itself out too, so logins still arriving are redirected.
 * Returns how many ms to go on listening (and redirecting) before closing the
 * portals so that every peer has read it; 0 without a pool. */
unsigned lg_cluster_leave(void);
/* Leave: the heartbeat thread ends and this gateway's key is removed, so
 * peers take its clients at once.  No-op without a cluster. */
void lg_cluster_stop(void);
bool lg_cluster_enabled(void);
/* How often peers read the membership (ms); 0 without a pool. */
unsigned lg_cluster_heartbeat_ms(void);
/* Membership in RADOS (clients can move), not a static list. */
bool lg_cluster_failover(void);
/* This gateway's service address, or NULL without a cluster. */
const char *lg_cluster_self(void);
/* The entry point ("IP:PORT") SendTargets names, or NULL. */
const char *lg_cluster_entry(void);
/* Where initiator's Normal session belongs: 1 with another gateway's
 * "IP:PORT" in out (redirect there), 0 when this gateway serves it. */
int lg_cluster_home(const char *initiator, char *out, size_t len);
/* Stop taking new clients (state "draining", written to RADOS at once);
 * -EINVAL without a cluster. */
int lg_cluster_set_draining(bool on);
/* {"name", "mode": "rados"|"static", "failover": bool, "self", "entry",
 *  "gateways": [{"address", "state": "alive"|"dead"|"draining"|"joining"|
 *  "leaving" ("listed" in a static list), "clients":
 *  [...], "self": bool}]}, or NULL without a cluster. */
json_t *lg_cluster_json(void);

#endif
