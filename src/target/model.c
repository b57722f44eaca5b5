/* Target model look-ups and per-initiator LUN resolution. */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <strings.h>

#include "target/model.h"

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
                                            .write_protect = mp->write_protect };
    } else {
      v[used++] = (struct lg_lun_view){ .index = tpg->luns[i].index, .so = tpg->luns[i].so,
                                        .write_protect = tpg->demo_mode_write_protect };
    }
  }
  qsort(v, used, sizeof *v, cmp_view);
  *out = v;
  return (int)used;
}
