/* The persistent reservation state machine (src/scsi/pr.c) without a network:
 * table-driven scenarios of PERSISTENT RESERVE OUT commands from three I_T
 * nexuses, the conflict rules per reservation type, the PERSISTENT RESERVE IN
 * answers, and the APTPL state file. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "scsi/pr.h"
#include "run_suite.h"

/* nexus 0 and 1: two initiators; nexus 2: initiator 0 with another ISID */
static struct pr_id ids[3];

static void setup_ids(void)
{
  memset(ids, 0, sizeof ids);
  for (int i = 0; i < 3; i++) {
    snprintf(ids[i].initiator, sizeof ids[i].initiator, "iqn.2025-10.org.test:ini%d", i == 2 ? 0 : i);
    snprintf(ids[i].target, sizeof ids[i].target, "iqn.2025-10.org.test:tgt");
    ids[i].isid[0] = 0x80;
    ids[i].isid[5] = (uint8_t)(i + 1);
    ids[i].tpgt = 1;
  }
}

#define END 0xff                     /* end of a scenario */
#define UA_RES_PREEMPTED 0x2a03
#define UA_RES_RELEASED 0x2a04
#define UA_REG_PREEMPTED 0x2a05

struct step {
  uint8_t who, sa, type;
  uint64_t rk, sark;
  uint8_t flags;                     /* parameter byte 20: APTPL, ALL_TG_PT, SPEC_I_PT */
  enum pr_result rc;
  int n_regs;                        /* after it; -1: not checked */
  int reserved_type;                 /* 0: not reserved; -1: not checked */
  int gen_delta;                     /* PRgeneration change; -1: not checked */
  int ua_to, ua_asc;                 /* a unit attention for nexus ua_to (-1: none expected) */
};

struct scenario {
  const char *what;
  struct step steps[10];
};

#define REG(w, rk, sark, rc, n, g) { w, PR_REGISTER, 0, rk, sark, 0, rc, n, -1, g, -1, 0 }
#define REGI(w, sark, n) { w, PR_REGISTER_IGNORE, 0, 0, sark, 0, PR_OK, n, -1, 1, -1, 0 }
#define RSV(w, type, rk, rc, rt) { w, PR_RESERVE, type, rk, 0, 0, rc, -1, rt, 0, -1, 0 }
#define STOP { END, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 }

static const struct scenario scenarios[] = {
  { "register, re-register with a wrong key, unregister", {
      REG(0, 0, 0x11, PR_OK, 1, 1),
      REG(0, 0, 0x12, PR_CONFLICT, 1, 0),        /* registered: RK must match */
      REG(0, 0x11, 0x12, PR_OK, 1, 1),           /* change the key */
      REG(0, 0x12, 0, PR_OK, 0, 1),              /* unregister */
      REG(0, 0, 0, PR_OK, 0, 0),                 /* not registered, SARK 0: nothing */
      REG(1, 0x99, 0x22, PR_CONFLICT, 0, 0),     /* not registered: RK must be 0 */
      STOP } },
  { "register and ignore existing key", {
      REGI(0, 0x11, 1), REGI(0, 0x13, 1), REGI(2, 0x14, 2), STOP } },
  { "two ISIDs of one initiator are two nexuses", {
      REGI(0, 0x11, 1), REGI(2, 0x11, 2), RSV(0, PR_EA, 0x11, PR_OK, PR_EA),
      RSV(2, PR_EA, 0x11, PR_CONFLICT, PR_EA), STOP } },
  { "reserve needs a registration and its key", {
      RSV(0, PR_WE, 0, PR_CONFLICT, 0), REGI(0, 0x11, 1),
      RSV(0, PR_WE, 0x12, PR_CONFLICT, 0),
      { 0, PR_RESERVE, 2, 0x11, 0, 0, PR_BAD_CDB, -1, 0, 0, -1, 0 }, /* type 2 is obsolete */
      RSV(0, PR_WE, 0x11, PR_OK, PR_WE),
      RSV(0, PR_WE, 0x11, PR_OK, PR_WE),                 /* again, same type: fine */
      RSV(0, PR_EA, 0x11, PR_CONFLICT, PR_WE),           /* another type: conflict */
      REGI(1, 0x22, 2), RSV(1, PR_WE, 0x22, PR_CONFLICT, PR_WE), STOP } },
  { "release: wrong type, not the holder, registrants-only UA", {
      REGI(0, 0x11, 1), REGI(1, 0x22, 2), RSV(0, PR_WE_RO, 0x11, PR_OK, PR_WE_RO),
      { 1, PR_RELEASE, PR_WE_RO, 0x22, 0, 0, PR_OK, 2, PR_WE_RO, 0, -1, 0 }, /* not holder: no-op */
      { 0, PR_RELEASE, PR_WE, 0x11, 0, 0, PR_BAD_RELEASE, 2, PR_WE_RO, 0, -1, 0 },
      { 0, PR_RELEASE, PR_WE_RO, 0x11, 0, 0, PR_OK, 2, 0, 0, 1, UA_RES_RELEASED }, STOP } },
  { "release of write exclusive tells nobody", {
      REGI(0, 0x11, 1), REGI(1, 0x22, 2), RSV(0, PR_WE, 0x11, PR_OK, PR_WE),
      { 0, PR_RELEASE, PR_WE, 0x11, 0, 0, PR_OK, 2, 0, 0, -1, 0 }, STOP } },
  { "clear removes everything and tells the others", {
      REGI(0, 0x11, 1), REGI(1, 0x22, 2), RSV(1, PR_EA, 0x22, PR_OK, PR_EA),
      { 0, PR_CLEAR, 0, 0x12, 0, 0, PR_CONFLICT, 2, PR_EA, 0, -1, 0 },
      { 0, PR_CLEAR, 0, 0x11, 0, 0, PR_OK, 0, 0, 1, 1, UA_RES_PREEMPTED }, STOP } },
  { "preempt a registration without a reservation", {
      REGI(0, 0x11, 1), REGI(1, 0x22, 2),
      { 1, PR_PREEMPT, PR_EA, 0x22, 0x11, 0, PR_OK, 1, 0, 1, 0, UA_REG_PREEMPTED },
      { 1, PR_PREEMPT, PR_EA, 0x22, 0x77, 0, PR_CONFLICT, 1, 0, 0, -1, 0 }, /* no such key */
      { 1, PR_PREEMPT, PR_EA, 0x22, 0, 0, PR_BAD_PARAM, 1, 0, 0, -1, 0 },  /* SARK 0 */
      STOP } },
  { "preempt the holder's reservation", {
      REGI(0, 0x11, 1), REGI(1, 0x22, 2), RSV(0, PR_WE, 0x11, PR_OK, PR_WE),
      { 1, PR_PREEMPT_ABORT, PR_EA, 0x22, 0x11, 0, PR_OK, 1, PR_EA, 1, 0, UA_REG_PREEMPTED },
      RSV(1, PR_EA, 0x22, PR_OK, PR_EA), STOP } },
  { "all registrants: preempt with SARK 0 takes it over", {
      REGI(0, 0x11, 1), REGI(1, 0x22, 2), REGI(2, 0x33, 3),
      RSV(0, PR_WE_AR, 0x11, PR_OK, PR_WE_AR),
      RSV(1, PR_WE_AR, 0x22, PR_OK, PR_WE_AR),            /* every registrant holds it */
      { 1, PR_PREEMPT, PR_EA, 0x22, 0, 0, PR_OK, 1, PR_EA, 1, 2, UA_REG_PREEMPTED }, STOP } },
  { "all registrants: the reservation lasts until the last one leaves", {
      REGI(0, 0x11, 1), REGI(1, 0x22, 2), RSV(0, PR_EA_AR, 0x11, PR_OK, PR_EA_AR),
      REG(0, 0x11, 0, PR_OK, 1, 1), RSV(1, PR_EA_AR, 0x22, PR_OK, PR_EA_AR),
      { 1, PR_REGISTER, 0, 0x22, 0, 0, PR_OK, 0, 0, 1, -1, 0 }, STOP } },
  { "unregistering the holder releases; registrants only: others told", {
      REGI(0, 0x11, 1), REGI(1, 0x22, 2), RSV(0, PR_EA_RO, 0x11, PR_OK, PR_EA_RO),
      { 0, PR_REGISTER, 0, 0x11, 0, 0, PR_OK, 1, 0, 1, 1, UA_RES_RELEASED }, STOP } },
  { "unsupported fields", {
      { 0, PR_REGISTER, 0, 0, 0x11, 0x04, PR_BAD_PARAM, 0, 0, 0, -1, 0 }, /* ALL_TG_PT */
      { 0, PR_REGISTER, 0, 0, 0x11, 0x08, PR_BAD_PARAM, 0, 0, 0, -1, 0 }, /* SPEC_I_PT */
      { 0, PR_REGISTER_MOVE, 0, 0, 0x11, 0, PR_BAD_CDB, 0, 0, 0, -1, 0 },
      { 0, PR_REGISTER, 0, 0, 0x11, 0x01, PR_BAD_PARAM, 0, 0, 0, -1, 0 }, /* APTPL, no file */
      STOP } },
};

/* Build the CDB and parameter list of a step and run it. */
static struct pr_out_result run_step(struct pr_state *st, const struct step *s, bool aptpl_ok,
                                     struct pr_effects *fx)
{
  uint8_t cdb[10] = { 0x5f, s->sa, s->type, 0, 0, 0, 0, 0, PR_PARAM_LEN, 0 };
  uint8_t p[PR_PARAM_LEN] = { 0 };
  for (int i = 0; i < 8; i++) {
    p[i] = (uint8_t)(s->rk >> (56 - 8 * i));
    p[8 + i] = (uint8_t)(s->sark >> (56 - 8 * i));
  }
  p[20] = s->flags;
  return pr_out(st, &ids[s->who], cdb, p, sizeof p, aptpl_ok, fx);
}

START_TEST(test_scenario)
{
  const struct scenario *sc = &scenarios[_i];
  struct pr_state st = { 0 };
  struct pr_effects fx;
  setup_ids();
  for (int k = 0; sc->steps[k].who != END; k++) {
    const struct step *s = &sc->steps[k];
    uint32_t gen = st.generation;
    struct pr_out_result r = run_step(&st, s, false, &fx);
    ck_assert_msg(r.rc == s->rc, "%s, step %d: result %d, want %d", sc->what, k, r.rc, s->rc);
    if (s->n_regs >= 0)
      ck_assert_msg((int)st.n_regs == s->n_regs, "%s, step %d: %zu registrations, want %d",
                    sc->what, k, st.n_regs, s->n_regs);
    if (s->reserved_type >= 0)
      ck_assert_msg((st.reserved ? st.type : 0) == s->reserved_type,
                    "%s, step %d: reservation type %d, want %d", sc->what, k,
                    st.reserved ? st.type : 0, s->reserved_type);
    if (s->gen_delta >= 0)
      ck_assert_msg(st.generation - gen == (uint32_t)s->gen_delta,
                    "%s, step %d: generation +%u, want +%d", sc->what, k, st.generation - gen,
                    s->gen_delta);
    if (s->ua_to >= 0) {
      bool found = false;
      for (size_t i = 0; i < fx.n_ua; i++)
        if (pr_id_equal(&fx.ua[i].id, &ids[s->ua_to]) && fx.ua[i].asc == s->ua_asc)
          found = true;
      ck_assert_msg(found, "%s, step %d: no unit attention %04x for nexus %d", sc->what, k,
                    s->ua_asc, s->ua_to);
    }
  }
  pr_state_clear(&st);
}
END_TEST

/* Which commands conflict, per reservation type, for a registered non-holder
 * (nexus 1) and an unregistered nexus (nexus 2); nexus 0 holds it. */
struct access_row {
  uint8_t type;
  bool reg_read, reg_write, unreg_read, unreg_write; /* allowed? */
};

static const struct access_row access_rows[] = {
  { PR_WE, true, false, true, false },
  { PR_EA, false, false, false, false },
  { PR_WE_RO, true, true, true, false },
  { PR_EA_RO, true, true, false, false },
  { PR_WE_AR, true, true, true, false },
  { PR_EA_AR, true, true, false, false },
};

START_TEST(test_access)
{
  const struct access_row *a = &access_rows[_i];
  struct pr_state st = { 0 };
  struct pr_effects fx;
  setup_ids();
  const struct step reg0 = REGI(0, 0x11, 1), reg1 = REGI(1, 0x22, 2);
  const struct step rsv = RSV(0, a->type, 0x11, PR_OK, a->type);
  ck_assert_int_eq(run_step(&st, &reg0, false, &fx).rc, PR_OK);
  ck_assert_int_eq(run_step(&st, &reg1, false, &fx).rc, PR_OK);
  ck_assert_int_eq(run_step(&st, &rsv, false, &fx).rc, PR_OK);
  static const uint8_t rd[10] = { 0x28 }, wr[10] = { 0x2a }, tur[6] = { 0 }, inq[6] = { 0x12 };
  static const uint8_t sync[10] = { 0x35 };
  ck_assert_msg(!pr_conflict(&st, &ids[0], rd, false) && !pr_conflict(&st, &ids[0], wr, true),
                "type %d: the holder is refused", a->type);
  ck_assert_msg(pr_conflict(&st, &ids[1], rd, false) == !a->reg_read, "type %d: registered read", a->type);
  ck_assert_msg(pr_conflict(&st, &ids[1], wr, true) == !a->reg_write, "type %d: registered write", a->type);
  ck_assert_msg(pr_conflict(&st, &ids[2], rd, false) == !a->unreg_read, "type %d: unregistered read", a->type);
  ck_assert_msg(pr_conflict(&st, &ids[2], wr, true) == !a->unreg_write, "type %d: unregistered write", a->type);
  ck_assert_msg(pr_conflict(&st, &ids[2], sync, false) == !a->unreg_write,
                "type %d: SYNCHRONIZE CACHE goes with writes", a->type);
  ck_assert_msg(!pr_conflict(&st, &ids[2], tur, false) && !pr_conflict(&st, &ids[2], inq, false),
                "type %d: TEST UNIT READY and INQUIRY are always allowed", a->type);
  pr_state_clear(&st);
}
END_TEST

START_TEST(test_reserve6_with_registrations)
{
  struct pr_state st = { 0 };
  struct pr_effects fx;
  setup_ids();
  static const uint8_t reserve6[6] = { 0x16 }, release10[10] = { 0x57 };
  ck_assert(!pr_conflict(&st, &ids[0], reserve6, false));
  const struct step reg = REGI(1, 0x22, 1);
  run_step(&st, &reg, false, &fx);
  /* SPC-4 5.12.3: with any registration, RESERVE and RELEASE conflict for everyone */
  ck_assert(pr_conflict(&st, &ids[0], reserve6, false));
  ck_assert(pr_conflict(&st, &ids[1], release10, false));
  pr_state_clear(&st);
}
END_TEST

START_TEST(test_pr_in)
{
  struct pr_state st = { 0 };
  struct pr_effects fx;
  setup_ids();
  const struct step r0 = REGI(0, 0x1122334455667788ull, 1), r1 = REGI(1, 0x22, 2);
  const struct step rsv = RSV(0, PR_EA_RO, 0x1122334455667788ull, PR_OK, PR_EA_RO);
  run_step(&st, &r0, false, &fx);
  run_step(&st, &r1, false, &fx);
  run_step(&st, &rsv, false, &fx);
  uint8_t d[1024];
  size_t n = pr_in(&st, 0, false, d, sizeof d); /* READ KEYS */
  ck_assert_uint_eq(n, 8 + 16);
  ck_assert_uint_eq(d[3], 2);                    /* PRGENERATION */
  ck_assert_uint_eq(d[7], 16);                   /* ADDITIONAL LENGTH */
  ck_assert_uint_eq(d[8], 0x11);
  ck_assert_uint_eq(d[15], 0x88);
  n = pr_in(&st, 0, false, d, 8);                /* truncated: the length still says 16 */
  ck_assert_uint_eq(n, 24);
  n = pr_in(&st, 1, false, d, sizeof d);         /* READ RESERVATION */
  ck_assert_uint_eq(n, 24);
  ck_assert_uint_eq(d[7], 16);
  ck_assert_uint_eq(d[8], 0x11);
  ck_assert_uint_eq(d[21], PR_EA_RO);
  n = pr_in(&st, 2, true, d, sizeof d);          /* REPORT CAPABILITIES */
  ck_assert_uint_eq(n, 8);
  ck_assert_uint_eq(d[1], 8);
  ck_assert_uint_eq(d[2] & 0x0d, 0x01);          /* PTPL_C; no SIP_C, ATP_C */
  ck_assert_uint_eq(d[4], 0xea);                 /* every type */
  ck_assert_uint_eq(d[5], 0x01);
  n = pr_in(&st, 3, false, d, sizeof d);         /* READ FULL STATUS */
  uint32_t total = (uint32_t)d[4] << 24 | (uint32_t)d[5] << 16 | (uint32_t)d[6] << 8 | d[7];
  ck_assert_uint_eq(n, 8 + total);
  ck_assert_uint_eq(d[8 + 12], 0x01);            /* R_HOLDER of the first */
  ck_assert_uint_eq(d[8 + 24], 0x45);            /* an iSCSI TransportID, format 01b */
  ck_assert(strstr((const char *)d + 8 + 28, "iqn.2025-10.org.test:ini0,i,0x800000000001"));
  pr_state_clear(&st);
}
END_TEST

START_TEST(test_aptpl_file)
{
  char dir[] = "/tmp/lungate-test-pr-XXXXXX", path[256];
  ck_assert(mkdtemp(dir));
  snprintf(path, sizeof path, "%s/state.json", dir);
  struct pr_state st = { 0 }, back = { 0 };
  struct pr_effects fx;
  setup_ids();
  const struct step r0 = { 0, PR_REGISTER_IGNORE, 0, 0, 0xfedcba9876543210ull, 0x01, PR_OK, 1, -1, 1, -1, 0 };
  /* the last REGISTER's APTPL bit is the one that counts */
  const struct step r1 = { 1, PR_REGISTER_IGNORE, 0, 0, 0x22, 0x01, PR_OK, 2, -1, 1, -1, 0 };
  const struct step rsv = RSV(1, PR_WE, 0x22, PR_OK, PR_WE);
  ck_assert_int_eq(run_step(&st, &r0, true, &fx).rc, PR_OK);
  ck_assert(st.aptpl);
  run_step(&st, &r1, true, &fx);
  run_step(&st, &rsv, true, &fx);
  ck_assert_int_eq(pr_save(&st, path), 0);
  ck_assert_int_eq(pr_load(&back, path), 0);
  ck_assert_uint_eq(back.n_regs, 2);
  ck_assert(back.regs[0].key == 0xfedcba9876543210ull);
  ck_assert(pr_id_equal(&back.regs[0].id, &ids[0]) && pr_id_equal(&back.regs[1].id, &ids[1]));
  ck_assert(back.reserved && back.type == PR_WE && pr_id_equal(&back.holder, &ids[1]));
  ck_assert_uint_eq(back.generation, st.generation);
  ck_assert(back.aptpl);
  /* APTPL off: the file goes, and a missing file is an empty state */
  const struct step off = { 0, PR_REGISTER, 0, 0xfedcba9876543210ull, 0x33, 0, PR_OK, 2, -1, 1, -1, 0 };
  run_step(&st, &off, true, &fx);
  ck_assert(!st.aptpl);
  ck_assert_int_eq(pr_save(&st, path), 0);
  ck_assert_int_ne(access(path, F_OK), 0);
  ck_assert_int_eq(pr_load(&back, path), 0);
  ck_assert_uint_eq(back.n_regs, 0);
  /* not a state file */
  FILE *f = fopen(path, "w");
  fputs("{\"version\": 7}", f);
  fclose(f);
  ck_assert_int_lt(pr_load(&back, path), 0);
  ck_assert_uint_eq(back.n_regs, 0);
  unlink(path);
  rmdir(dir);
  pr_state_clear(&st);
  pr_state_clear(&back);
}
END_TEST

int main(void)
{
  Suite *s = suite_create("pr");
  TCase *tc = tcase_create("pr");
  tcase_add_loop_test(tc, test_scenario, 0, sizeof scenarios / sizeof scenarios[0]);
  tcase_add_loop_test(tc, test_access, 0, sizeof access_rows / sizeof access_rows[0]);
  tcase_add_test(tc, test_reserve6_with_registrations);
  tcase_add_test(tc, test_pr_in);
  tcase_add_test(tc, test_aptpl_file);
  suite_add_tcase(s, tc);
  return lg_run_suite(s);
}
