/* The iPXE lines that boot each target, printed when serve starts. */
#include "ops/ipxe_lines.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <stdbool.h>
#include <string.h>

#include "cluster/cluster.h"
#include "iscsi/server.h"

/* One sanboot line per address that reaches host:port. */
static void lines_for(FILE *out, const char *iqn, const char *host, unsigned port)
{
  bool wildcard = !strcmp(host, "0.0.0.0") || !strcmp(host, "::");
  if (!strncmp(host, "127.", 4) || !strcmp(host, "::1")) {
    fprintf(out, "  sanboot iscsi:10.0.2.2::%u::%s || reboot\n"
            "  # %s is loopback: only a QEMU VM with user networking reaches it (as 10.0.2.2)\n",
            port, iqn, host);
    return;
  }
  if (!wildcard) {
    bool v6 = strchr(host, ':') != NULL;
    fprintf(out, "  sanboot iscsi:%s%s%s::%u::%s || reboot\n", v6 ? "[" : "", host,
            v6 ? "]" : "", port, iqn);
    return;
  }
  bool any = false;
  struct ifaddrs *ifa;
  if (getifaddrs(&ifa) == 0) {
    for (struct ifaddrs *i = ifa; i; i = i->ifa_next) {
      if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET || (i->ifa_flags & IFF_LOOPBACK))
        continue;
      char a[INET_ADDRSTRLEN];
      inet_ntop(AF_INET, &((struct sockaddr_in *)i->ifa_addr)->sin_addr, a, sizeof a);
      fprintf(out, "  sanboot iscsi:%s::%u::%s || reboot\n", a, port, iqn);
      any = true;
    }
    freeifaddrs(ifa);
  }
  if (!any)
    fprintf(out, "  sanboot iscsi:SERVER-IP::%u::%s || reboot\n", port, iqn);
}

static void portal_lines(FILE *out, const char *iqn, const char *spec)
{
  char host[64];
  unsigned port;
  if (lg_parse_hostport(spec, host, sizeof host, &port) == 0)
    lines_for(out, iqn, host, port);
}

void lg_print_ipxe_lines(FILE *out, const struct lg_model *m, char *const *listen,
                         size_t n_listen)
{
  if (!m->n_targets)
    return;
  /* initiator names under the first target's naming authority */
  const char *iqn0 = m->targets[0].iqn, *colon = strchr(iqn0, ':');
  fprintf(out, "\nBoot from iPXE (one sanboot line per target and address; "
          "QEMU user networking reaches this host as 10.0.2.2):\n\n"
          "  #!ipxe\n  dhcp\n  set initiator-iqn %.*s:${mac:hexhyp}\n",
          colon ? (int)(colon - iqn0) : (int)strlen(iqn0), iqn0);
  for (size_t i = 0; i < m->n_targets; i++) {
    const struct lg_target *t = &m->targets[i];
    struct lg_tpg *tpg = lg_target_tpg((struct lg_target *)t);
    if (!tpg)
      continue;
    if (lg_cluster_entry()) { /* a cluster: every client uses its entry point */
      portal_lines(out, t->iqn, lg_cluster_entry());
    } else if (n_listen) {
      for (size_t k = 0; k < n_listen; k++)
        portal_lines(out, t->iqn, listen[k]);
    } else {
      for (size_t k = 0; k < tpg->n_portals; k++) {
        char spec[96];
        const char *ip = tpg->portals[k].ip;
        bool v6 = strchr(ip, ':') && ip[0] != '[';
        snprintf(spec, sizeof spec, v6 ? "[%s]:%u" : "%s:%u", ip, tpg->portals[k].port);
        portal_lines(out, t->iqn, spec);
      }
    }
  }
  fputc('\n', out);
  fflush(out);
}
