/* Target model look-ups and per-initiator LUN resolution. */
#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <errno.h>
#include <stdlib.h>
#include <strings.h>

#include "target/model.h"

void lg_io_lock_init(pthread_rwlock_t *lock)
{
  pthread_rwlockattr_t a;
  pthread_rwlockattr_init(&a);
  pthread_rwlockattr_setkind_np(&a, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
  pthread_rwlock_init(lock, &a);
  pthread_rwlockattr_destroy(&a);
}

struct lg_target *lg_model_find_target(struct lg_model *m, const char *iqn)
{
  for (size_t i = 0; i < m->n_targets; i++)
    if (!strcasecmp(m->targets[i].iqn, iqn))
      return &m->targets[i];
  return NULL;
}

struct lg_tpg *lg_target_tpg(struct lg_target *t)
{
  for (size_t i = 0; i < t->n_tpgs; i++)
    if (t->tpgs[i].enable)
      return &t->tpgs[i];
  return NULL;
}

bool lg_name_match(const char *pat, const char *name)
{
  /* iterative '*' matching with one backtrack point, case-insensitive */
  const char *star = NULL, *resume = NULL;
  while (*name) {
    if (*pat == '*') {
      star = pat++;
      resume = name;
    } else if (tolower((unsigned char)*pat) == tolower((unsigned char)*name)) {
      pat++;
      name++;
    } else if (star) {
      pat = star + 1;
      name = ++resume;
    } else {
      return false;
    }
  }
  while (*pat == '*')
    pat++;
  return *pat == '\0';
}

static int cmp_view(const void *a, const void *b)
{
  const struct lg_lun_view *x = a, *y = b;
  return x->index < y->index ? -1 : x->index > y->index;
}

const struct lg_acl *lg_tpg_find_acl(const struct lg_tpg *tpg, const char *initiator)
{
  for (size_t i = 0; i < tpg->n_acls; i++) /* an exact name wins over patterns */
    if (!strcasecmp(tpg->acls[i].node_wwn, initiator))
      return &tpg->acls[i];
  for (size_t i = 0; i < tpg->n_acls; i++)
    if (lg_name_match(tpg->acls[i].node_wwn, initiator))
      return &tpg->acls[i];
  return NULL;
}

int lg_tpg_resolve(const struct lg_tpg *tpg, const char *initiator,
                   struct lg_lun_view **out)
{
  const struct lg_acl *acl = lg_tpg_find_acl(tpg, initiator);
  if (!acl && !tpg->generate_node_acls)
    return -EACCES;
  size_t n = acl ? acl->n_mapped : tpg->n_luns;
  struct lg_lun_view *v = calloc(n + 1, sizeof *v);
  if (!v)
    return -ENOMEM;
  size_t used = 0;
  for (size_t i = 0; i < n; i++) {
    if (acl) {
      const struct lg_mapped_lun *mp = &acl->mapped[i];
      for (size_t k = 0; k < tpg->n_luns; k++)
        if (tpg->luns[k].index == mp->tpg_lun)
          v[used++] = (struct lg_lun_view){ .index = mp->index, .so = tpg->luns[k].so,
                                            .write_protect = mp->write_protect,
                                            .stats = &tpg->luns[k].stats };
    } else {
      v[used++] = (struct lg_lun_view){ .index = tpg->luns[i].index, .so = tpg->luns[i].so,
                                        .write_protect = tpg->demo_mode_write_protect,
                                        .stats = &tpg->luns[i].stats };
    }
  }
  qsort(v, used, sizeof *v, cmp_view);
  *out = v;
  return (int)used;
}

int lg_cidr_parse(const char *s, struct lg_cidr *out)
{
  char buf[64];
  snprintf(buf, sizeof buf, "%s", s);
  char *slash = strchr(buf, '/');
  long prefix = -1;
  if (slash) {
    char *end;
    *slash = '\0';
    prefix = strtol(slash + 1, &end, 10);
    if (!slash[1] || *end || prefix < 0)
      return -EINVAL;
  }
  struct in_addr a4;
  memset(out, 0, sizeof *out);
  if (inet_pton(AF_INET, buf, &a4) == 1) {
    if (prefix > 32)
      return -EINVAL;
    out->addr[10] = out->addr[11] = 0xff;
    memcpy(out->addr + 12, &a4, 4);
    out->prefix = 96 + (unsigned)(prefix < 0 ? 32 : prefix);
    return 0;
  }
  if (inet_pton(AF_INET6, buf, out->addr) == 1 && prefix <= 128) {
    out->prefix = (unsigned)(prefix < 0 ? 128 : prefix);
    return 0;
  }
  return -EINVAL;
}

static bool cidr_match(const struct lg_cidr *c, size_t n, const uint8_t addr[16])
{
  if (!c)
    return true;
  for (size_t i = 0; i < n; i++) {
    unsigned bits = c[i].prefix, k = 0;
    for (; bits >= 8; bits -= 8, k++)
      if (c[i].addr[k] != addr[k])
        break;
    if (bits >= 8)
      continue;
    if (bits == 0 || ((c[i].addr[k] ^ addr[k]) & (0xff00 >> bits)) == 0)
      return true;
  }
  return false;
}

bool lg_address_allowed(const struct lg_tpg *tpg, const char *initiator,
                        const struct sockaddr *sa)
{
  uint8_t addr[16] = { 0 };
  if (sa->sa_family == AF_INET) {
    addr[10] = addr[11] = 0xff;
    memcpy(addr + 12, &((const struct sockaddr_in *)sa)->sin_addr, 4);
  } else if (sa->sa_family == AF_INET6) {
    memcpy(addr, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
  }
  const struct lg_acl *acl = lg_tpg_find_acl(tpg, initiator);
  if (sa->sa_family != AF_INET && sa->sa_family != AF_INET6) /* e.g. a socketpair */
    return !tpg->allowed && !(acl && acl->allowed);
  return cidr_match(tpg->allowed, tpg->n_allowed, addr) &&
         (!acl || cidr_match(acl->allowed, acl->n_allowed, addr));
}
