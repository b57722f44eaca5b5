/* SPC-4 persistent reservations: the PERSISTENT RESERVE OUT state machine,
 * the PERSISTENT RESERVE IN answers, the conflict rules and the APTPL state
 * file (see pr.h).  Supported: REGISTER, REGISTER AND IGNORE EXISTING KEY,
 * RESERVE, RELEASE, CLEAR, PREEMPT, PREEMPT AND ABORT, every reservation type,
 * APTPL.  Not supported (INVALID FIELD, and REPORT CAPABILITIES says so):
 * SPEC_I_PT, ALL_TG_PT, REGISTER AND MOVE, element scope.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "scsi/pr.h"

#define UA_RES_PREEMPTED 0x2a03      /* RESERVATIONS PREEMPTED */
#define UA_RES_RELEASED  0x2a04      /* RESERVATIONS RELEASED */
#define UA_REG_PREEMPTED 0x2a05      /* REGISTRATIONS PREEMPTED */

static uint64_t rd64(const uint8_t *p)
{
  uint64_t v = 0;
  for (int i = 0; i < 8; i++)
    v = v << 8 | p[i];
  return v;
}

static void wr64(uint8_t *p, uint64_t v)
{
  for (int i = 7; i >= 0; i--, v >>= 8)
    p[i] = (uint8_t)v;
}

static void wr32(uint8_t *p, uint32_t v)
{
  p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}

bool pr_id_equal(const struct pr_id *a, const struct pr_id *b)
{
  return !memcmp(a->isid, b->isid, 6) && a->tpgt == b->tpgt &&
         !strcasecmp(a->initiator, b->initiator) && !strcasecmp(a->target, b->target);
}

static int find_reg(const struct pr_state *st, const struct pr_id *id)
{
  for (size_t i = 0; i < st->n_regs; i++)
    if (pr_id_equal(&st->regs[i].id, id))
      return (int)i;
  return -1;
}

bool pr_registered(const struct pr_state *st, const struct pr_id *me)
{
  return find_reg(st, me) >= 0;
}

static bool all_registrants(uint8_t type) { return type == PR_WE_AR || type == PR_EA_AR; }
static bool registrants_only(uint8_t type) { return type == PR_WE_RO || type == PR_EA_RO; }

static bool valid_type(uint8_t type)
{
  return type == PR_WE || type == PR_EA || type == PR_WE_RO || type == PR_EA_RO ||
         type == PR_WE_AR || type == PR_EA_AR;
}

/* Is nexus me a reservation holder (every registrant, for the all-registrants types)? */
static bool holder(const struct pr_state *st, const struct pr_id *me)
{
  if (!st->reserved)
    return false;
  return all_registrants(st->type) ? pr_registered(st, me) : pr_id_equal(&st->holder, me);
}

static void add_ua(struct pr_effects *fx, const struct pr_id *id, uint16_t asc, bool abort)
{
  for (size_t i = 0; i < fx->n_ua; i++) /* one per nexus: the first reason wins */
    if (pr_id_equal(&fx->ua[i].id, id)) {
      fx->ua[i].abort |= abort;
      return;
    }
  if (fx->n_ua < PR_MAX_EFFECTS) {
    fx->ua[fx->n_ua].id = *id;
    fx->ua[fx->n_ua].asc = asc;
    fx->ua[fx->n_ua].abort = abort;
    fx->n_ua++;
  }
}

/* Unit attention to every registrant but me. */
static void ua_registrants(const struct pr_state *st, const struct pr_id *me, uint16_t asc,
                           struct pr_effects *fx)
{
  for (size_t i = 0; i < st->n_regs; i++)
    if (!pr_id_equal(&st->regs[i].id, me))
      add_ua(fx, &st->regs[i].id, asc, false);
}

static void release(struct pr_state *st)
{
  st->reserved = false;
  st->type = 0;
  memset(&st->holder, 0, sizeof st->holder);
}

/* Remove registration i; a holder's reservation goes with it (for the
 * all-registrants types, with the last registration). */
static void remove_reg(struct pr_state *st, size_t i, const struct pr_id *me,
                       struct pr_effects *fx, bool by_unregister)
{
  struct pr_id gone = st->regs[i].id;
  memmove(&st->regs[i], &st->regs[i + 1], (st->n_regs - i - 1) * sizeof st->regs[0]);
  st->n_regs--;
  if (!st->reserved)
    return;
  if (all_registrants(st->type) ? st->n_regs == 0 : pr_id_equal(&st->holder, &gone)) {
    bool ro = registrants_only(st->type);
    release(st);
    if (by_unregister && ro) /* SPC-4 5.12.11.2.3 */
      ua_registrants(st, me, UA_RES_RELEASED, fx);
  }
}

static struct pr_out_result result(enum pr_result rc, unsigned byte, int bit)
{
  return (struct pr_out_result){ rc, byte, bit };
}

/* REGISTER and REGISTER AND IGNORE EXISTING KEY. */
static struct pr_out_result do_register(struct pr_state *st, const struct pr_id *me, bool ignore,
                                        uint64_t rk, uint64_t sark, bool aptpl,
                                        struct pr_effects *fx)
{
  int i = find_reg(st, me);
  if (i < 0) {
    if (!ignore && rk != 0)
      return result(PR_CONFLICT, 0, -1);
    if (sark == 0)
      return result(PR_OK, 0, -1);
    if (st->n_regs >= PR_MAX_REGS)
      return result(PR_NO_SPACE, 0, -1);
    struct pr_reg *r = realloc(st->regs, (st->n_regs + 1) * sizeof *r);
    if (!r)
      return result(PR_NO_SPACE, 0, -1);
    st->regs = r;
    st->regs[st->n_regs].id = *me;
    st->regs[st->n_regs].key = sark;
    st->n_regs++;
  } else {
    if (!ignore && rk != st->regs[i].key)
      return result(PR_CONFLICT, 0, -1);
    if (sark == 0)
      remove_reg(st, (size_t)i, me, fx, true);
    else
      st->regs[i].key = sark;
  }
  st->aptpl = aptpl;
  st->generation++;
  fx->changed = true;
  return result(PR_OK, 0, -1);
}

/* Remove every registration with key sark (but mine); false if there is none. */
static bool preempt_key(struct pr_state *st, const struct pr_id *me, uint64_t sark, bool abort,
                        struct pr_effects *fx)
{
  bool any = false;
  for (size_t i = 0; i < st->n_regs;) {
    if (st->regs[i].key == sark && !pr_id_equal(&st->regs[i].id, me)) {
      add_ua(fx, &st->regs[i].id, UA_REG_PREEMPTED, abort);
      remove_reg(st, i, me, fx, false);
      any = true;
    } else {
      if (st->regs[i].key == sark)
        any = true;
      i++;
    }
  }
  return any;
}

static struct pr_out_result do_preempt(struct pr_state *st, const struct pr_id *me, uint8_t type,
                                       uint64_t sark, bool abort, struct pr_effects *fx)
{
  bool of_reservation = false; /* does SARK name the reservation (its holder's key)? */
  if (st->reserved && all_registrants(st->type)) {
    of_reservation = sark == 0;
  } else if (st->reserved) {
    int h = find_reg(st, &st->holder);
    of_reservation = h >= 0 && st->regs[h].key == sark;
  }
  if (!of_reservation) {
    /* no reservation, or not the holder's key: remove registrations only */
    if (sark == 0)
      return result(PR_BAD_PARAM, 8, -1);
    if (!preempt_key(st, me, sark, abort, fx))
      return result(PR_CONFLICT, 0, -1);
  } else {
    /* preempt the reservation: SARK is the holder's key (or 0 for all-registrants) */
    if (!valid_type(type))
      return result(PR_BAD_CDB, 2, 3);
    uint8_t old_type = st->type;
    bool all = all_registrants(st->type); /* SARK 0: every other registrant goes */
    for (size_t i = 0; i < st->n_regs;) {
      if (!pr_id_equal(&st->regs[i].id, me) && (all || st->regs[i].key == sark)) {
        add_ua(fx, &st->regs[i].id, UA_REG_PREEMPTED, abort);
        memmove(&st->regs[i], &st->regs[i + 1], (st->n_regs - i - 1) * sizeof st->regs[0]);
        st->n_regs--;
      } else {
        i++;
      }
    }
    st->reserved = true;
    st->type = type;
    st->holder = *me;
    if (old_type != type) /* the remaining registrants learn the type changed */
      ua_registrants(st, me, UA_RES_RELEASED, fx);
  }
  st->generation++;
  fx->changed = true;
  return result(PR_OK, 0, -1);
}

struct pr_out_result pr_out(struct pr_state *st, const struct pr_id *me, const uint8_t *cdb,
                            const uint8_t *param, uint32_t len, bool aptpl_ok,
                            struct pr_effects *fx)
{
  uint8_t sa = cdb[1] & 0x1f, scope = cdb[2] >> 4, type = cdb[2] & 0x0f;
  uint32_t plen = (uint32_t)cdb[5] << 24 | (uint32_t)cdb[6] << 16 | (uint32_t)cdb[7] << 8 | cdb[8];
  fx->n_ua = 0;
  fx->changed = false;
  if (sa > PR_REGISTER_IGNORE) /* REGISTER AND MOVE and beyond */
    return result(PR_BAD_CDB, 1, 4);
  if (len >= 21 && (param[20] & 0x08)) /* SPEC_I_PT */
    return result(PR_BAD_PARAM, 20, 3);
  if (plen != PR_PARAM_LEN || len < PR_PARAM_LEN)
    return result(PR_BAD_LENGTH, 0, -1);
  uint64_t rk = rd64(param), sark = rd64(param + 8);
  bool aptpl = param[20] & 0x01;
  bool reg_sa = sa == PR_REGISTER || sa == PR_REGISTER_IGNORE;
  if (reg_sa && (param[20] & 0x04)) /* ALL_TG_PT */
    return result(PR_BAD_PARAM, 20, 2);
  if (reg_sa && aptpl && !aptpl_ok)
    return result(PR_BAD_PARAM, 20, 0);
  if (reg_sa)
    return do_register(st, me, sa == PR_REGISTER_IGNORE, rk, sark, aptpl, fx);

  int i = find_reg(st, me);
  if (i < 0 || st->regs[i].key != rk)
    return result(PR_CONFLICT, 0, -1);
  if (sa != PR_CLEAR && scope != 0) /* LU_SCOPE only */
    return result(PR_BAD_CDB, 2, 7);
  switch (sa) {
  case PR_RESERVE:
    if (!valid_type(type))
      return result(PR_BAD_CDB, 2, 3);
    if (st->reserved)
      return holder(st, me) && st->type == type ? result(PR_OK, 0, -1)
                                                : result(PR_CONFLICT, 0, -1);
    st->reserved = true;
    st->type = type;
    st->holder = *me;
    fx->changed = true;
    return result(PR_OK, 0, -1);
  case PR_RELEASE:
    if (!holder(st, me))
      return result(PR_OK, 0, -1); /* nothing of ours to release */
    if (st->type != type)
      return result(PR_BAD_RELEASE, 0, -1);
    if (registrants_only(st->type) || all_registrants(st->type))
      ua_registrants(st, me, UA_RES_RELEASED, fx);
    release(st);
    fx->changed = true;
    return result(PR_OK, 0, -1);
  case PR_CLEAR:
    ua_registrants(st, me, UA_RES_PREEMPTED, fx);
    st->n_regs = 0;
    release(st);
    st->generation++;
    fx->changed = true;
    return result(PR_OK, 0, -1);
  case PR_PREEMPT:
  case PR_PREEMPT_ABORT:
    return do_preempt(st, me, type, sark, sa == PR_PREEMPT_ABORT, fx);
  }
  return result(PR_BAD_CDB, 1, 4);
}

/* The iSCSI TransportID (format 01b: name,i,0xISID) of a nexus into d; its length. */
static size_t transport_id(const struct pr_id *id, uint8_t *d)
{
  char s[PR_NAME_MAX + 32];
  int n = snprintf(s, sizeof s, "%s,i,0x%02x%02x%02x%02x%02x%02x", id->initiator, id->isid[0],
                   id->isid[1], id->isid[2], id->isid[3], id->isid[4], id->isid[5]);
  size_t len = ((size_t)n + 1 + 3) & ~(size_t)3; /* with its NUL, to a multiple of 4 */
  memset(d, 0, 4 + len);
  d[0] = 0x40 | 0x05;                /* format 01b, protocol iSCSI */
  d[2] = (uint8_t)(len >> 8);
  d[3] = (uint8_t)len;
  memcpy(d + 4, s, (size_t)n);
  return 4 + len;
}

size_t pr_in(const struct pr_state *st, uint8_t sa, bool ptpl_c, uint8_t *d, size_t cap)
{
  uint8_t tmp[24 + 4 + PR_NAME_MAX + 32];
  size_t n = 0;
#define EMIT(p, len) do { size_t l_ = (len); if (n < cap) memcpy(d + n, (p), n + l_ <= cap ? l_ : cap - n); n += l_; } while (0)
  switch (sa) {
  case 0: /* READ KEYS */
    wr32(tmp, st->generation);
    wr32(tmp + 4, (uint32_t)(8 * st->n_regs));
    EMIT(tmp, 8);
    for (size_t i = 0; i < st->n_regs; i++) {
      wr64(tmp, st->regs[i].key);
      EMIT(tmp, 8);
    }
    break;
  case 1: /* READ RESERVATION */
    memset(tmp, 0, 24);
    wr32(tmp, st->generation);
    if (st->reserved) {
      wr32(tmp + 4, 16);
      int h = all_registrants(st->type) ? -1 : find_reg(st, &st->holder);
      wr64(tmp + 8, h >= 0 ? st->regs[h].key : 0);
      tmp[21] = st->type;            /* scope 0: LU_SCOPE */
      EMIT(tmp, 24);
    } else {
      EMIT(tmp, 8);
    }
    break;
  case 2: /* REPORT CAPABILITIES */
    memset(tmp, 0, 8);
    tmp[1] = 8;
    tmp[2] = (uint8_t)(0x10 | (ptpl_c ? 0x01 : 0)); /* CRH; no SIP_C, ATP_C */
    tmp[3] = (uint8_t)(0x80 | (st->aptpl ? 0x01 : 0)); /* TMV, PTPL_A */
    tmp[4] = 0x80 | 0x40 | 0x20 | 0x08 | 0x02; /* WR_EX_AR EX_AC_RO WR_EX_RO EX_AC WR_EX */
    tmp[5] = 0x01;                   /* EX_AC_AR */
    EMIT(tmp, 8);
    break;
  case 3: { /* READ FULL STATUS */
    size_t total = 0;
    for (size_t i = 0; i < st->n_regs; i++)
      total += 24 + transport_id(&st->regs[i].id, tmp + 24);
    wr32(tmp, st->generation);
    wr32(tmp + 4, (uint32_t)total);
    EMIT(tmp, 8);
    for (size_t i = 0; i < st->n_regs; i++) {
      const struct pr_reg *r = &st->regs[i];
      memset(tmp, 0, 24);
      wr64(tmp, r->key);
      bool h = holder(st, &r->id);
      if (h) {
        tmp[12] = 0x01;              /* R_HOLDER */
        tmp[13] = st->type;
      }
      tmp[18] = (uint8_t)(r->id.tpgt >> 8); /* relative target port identifier */
      tmp[19] = (uint8_t)r->id.tpgt;
      size_t tl = transport_id(&r->id, tmp + 24);
      wr32(tmp + 20, (uint32_t)tl);
      EMIT(tmp, 24 + tl);
    }
    break;
  }
  }
#undef EMIT
  return n;
}

bool pr_conflict(const struct pr_state *st, const struct pr_id *me, const uint8_t *cdb,
                 bool writes)
{
  uint8_t op = cdb[0];
  switch (op) {
  case 0x16: case 0x17: case 0x56: case 0x57: /* RESERVE/RELEASE(6/10): SPC-4 5.12.3 */
    return st->n_regs > 0 || st->reserved;
  case 0x00: case 0x03: case 0x12: case 0xa0: case 0xa3: /* TUR, REQUEST SENSE, INQUIRY, */
  case 0x5e: case 0x5f: case 0x25: case 0x1e: case 0x4d: /* REPORT LUNS/OPCODES, PR IN/OUT, */
    return false;                                           /* READ CAPACITY, PREVENT, LOG SENSE */
  case 0x9e:
    if ((cdb[1] & 0x1f) == 0x10)     /* READ CAPACITY(16) */
      return false;
    break;
  }
  if (!st->reserved || holder(st, me))
    return false;
  bool write_like = writes || op == 0x35 || op == 0x91 || op == 0x15 || op == 0x55 ||
                    op == 0x3b || op == 0x04 || op == 0x1b;
  bool reg = pr_registered(st, me);
  switch (st->type) {
  case PR_WE:
    return write_like;
  case PR_EA:
    return true;
  case PR_WE_RO:
  case PR_WE_AR:
    return !reg && write_like;
  case PR_EA_RO:
  case PR_EA_AR:
    return !reg;
  }
  return false;
}

void pr_state_clear(struct pr_state *st)
{
  free(st->regs);
  memset(st, 0, sizeof *st);
}

/* ---- the APTPL state file ---- */

static json_t *id_json(const struct pr_id *id)
{
  char isid[13];
  snprintf(isid, sizeof isid, "%02x%02x%02x%02x%02x%02x", id->isid[0], id->isid[1], id->isid[2],
           id->isid[3], id->isid[4], id->isid[5]);
  return json_pack("{s:s,s:s,s:s,s:i}", "initiator", id->initiator, "isid", isid, "target",
                   id->target, "tpgt", (json_int_t)id->tpgt);
}

static int id_parse(const json_t *j, struct pr_id *id)
{
  const char *ini = json_string_value(json_object_get(j, "initiator"));
  const char *isid = json_string_value(json_object_get(j, "isid"));
  const char *tgt = json_string_value(json_object_get(j, "target"));
  json_t *tpgt = json_object_get(j, "tpgt");
  memset(id, 0, sizeof *id);
  if (!ini || !isid || !tgt || !json_is_integer(tpgt) || strlen(ini) >= PR_NAME_MAX ||
      strlen(tgt) >= PR_NAME_MAX || strlen(isid) != 12)
    return -EINVAL;
  for (int i = 0; i < 6; i++) {
    unsigned v;
    if (sscanf(isid + 2 * i, "%2x", &v) != 1)
      return -EINVAL;
    id->isid[i] = (uint8_t)v;
  }
  strcpy(id->initiator, ini);
  strcpy(id->target, tgt);
  id->tpgt = (uint16_t)json_integer_value(tpgt);
  return 0;
}

int pr_save(const struct pr_state *st, const char *path)
{
  if (!st->aptpl) {
    if (unlink(path) < 0 && errno != ENOENT)
      return -errno;
    return 0;
  }
  json_t *regs = json_array();
  for (size_t i = 0; regs && i < st->n_regs; i++) {
    char key[19];
    snprintf(key, sizeof key, "0x%016llx", (unsigned long long)st->regs[i].key);
    json_t *r = id_json(&st->regs[i].id);
    if (r)
      json_object_set_new(r, "key", json_string(key));
    json_array_append_new(regs, r);
  }
  json_t *res = json_null();
  if (st->reserved) {
    res = json_pack("{s:i}", "type", (json_int_t)st->type);
    if (res && !all_registrants(st->type))
      json_object_set_new(res, "holder", id_json(&st->holder));
  }
  json_t *j = json_pack("{s:i,s:I,s:b,s:o,s:o}", "version", 1, "generation",
                        (json_int_t)st->generation, "aptpl", 1, "registrations", regs,
                        "reservation", res);
  if (!j)
    return -ENOMEM;
  char tmp[PATH_MAX];
  if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp) {
    json_decref(j);
    return -ENAMETOOLONG;
  }
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    json_decref(j);
    return -errno;
  }
  int r = json_dumpfd(j, fd, JSON_INDENT(2)) == 0 && write(fd, "\n", 1) == 1 ? 0 : -EIO;
  json_decref(j);
  if (r == 0 && fsync(fd) < 0)
    r = -errno;
  if (close(fd) < 0 && r == 0)
    r = -errno;
  if (r == 0 && rename(tmp, path) < 0)
    r = -errno;
  if (r < 0) {
    unlink(tmp);
    return r;
  }
  char dir[PATH_MAX];
  snprintf(dir, sizeof dir, "%s", path);
  int dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    fsync(dfd);
    close(dfd);
  }
  return 0;
}

int pr_load(struct pr_state *st, const char *path)
{
  pr_state_clear(st);
  json_error_t je;
  json_t *j = json_load_file(path, 0, &je);
  if (!j)
    return access(path, F_OK) < 0 && errno == ENOENT ? 0 : -EINVAL;
  int r = -EINVAL;
  json_t *regs = json_object_get(j, "registrations"), *res = json_object_get(j, "reservation");
  json_t *gen = json_object_get(j, "generation");
  if (json_integer_value(json_object_get(j, "version")) != 1 || !json_is_array(regs) ||
      !json_is_integer(gen) || json_array_size(regs) > PR_MAX_REGS)
    goto out;
  st->regs = calloc(json_array_size(regs) + 1, sizeof *st->regs);
  if (!st->regs) {
    r = -ENOMEM;
    goto out;
  }
  size_t i;
  json_t *e;
  json_array_foreach(regs, i, e) {
    const char *key = json_string_value(json_object_get(e, "key"));
    char *end;
    if (!key || id_parse(e, &st->regs[i].id) < 0)
      goto out;
    st->regs[i].key = strtoull(key, &end, 16);
    if (*end || st->regs[i].key == 0)
      goto out;
    st->n_regs = i + 1;
  }
  st->generation = (uint32_t)json_integer_value(gen);
  st->aptpl = true;
  if (json_is_object(res)) {
    json_int_t type = json_integer_value(json_object_get(res, "type"));
    if (!valid_type((uint8_t)type) || type > 15)
      goto out;
    st->type = (uint8_t)type;
    if (!all_registrants(st->type) &&
        (id_parse(json_object_get(res, "holder"), &st->holder) < 0 ||
         find_reg(st, &st->holder) < 0))
      goto out;
    st->reserved = true;
  }
  r = 0;
out:
  json_decref(j);
  if (r < 0)
    pr_state_clear(st);
  return r;
}
