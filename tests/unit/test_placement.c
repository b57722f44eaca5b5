/* Rendezvous placement (src/cluster/placement.c): what the cluster relies on.
 * Stable (same answer every time, in any order of the list), spread (each of
 * three gateways gets a fair share of 3000 initiators), and minimal movement
 * (removing a gateway moves its initiators only; adding one takes only what
 * it then serves). */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "cluster/cluster.h"
#include "run_suite.h"

#define N 3000

static const char *three[] = { "10.77.0.11:3260", "10.77.0.12:3260", "10.77.0.13:3260" };

static void name(char *buf, size_t len, int i)
{
  snprintf(buf, len, "iqn.2026-12.org.lungate.test:client-%d", i);
}

START_TEST(empty_list)
{
  ck_assert_int_eq(lg_place("iqn.x", NULL, 0), -1);
  const char *one[] = { "10.0.0.1:3260" };
  ck_assert_int_eq(lg_place("iqn.x", one, 1), 0);
}
END_TEST

START_TEST(stable_and_order_free)
{
  const char *rev[] = { three[2], three[1], three[0] };
  char ini[80];
  for (int i = 0; i < N; i++) {
    name(ini, sizeof ini, i);
    int a = lg_place(ini, three, 3), b = lg_place(ini, three, 3), c = lg_place(ini, rev, 3);
    ck_assert_int_eq(a, b);
    ck_assert_str_eq(three[a], rev[c]);
  }
}
END_TEST

START_TEST(spread)
{
  int count[3] = { 0 };
  char ini[80];
  for (int i = 0; i < N; i++) {
    name(ini, sizeof ini, i);
    count[lg_place(ini, three, 3)]++;
  }
  for (int k = 0; k < 3; k++) /* a fair share is 1000: within 20 % */
    ck_assert_msg(count[k] > 800 && count[k] < 1200, "gateway %d got %d of %d", k, count[k], N);
  /* and 30 clients, as the cluster test has: each gateway gets some */
  int small[3] = { 0 };
  for (int i = 0; i < 30; i++) {
    snprintf(ini, sizeof ini, "iqn.2026-12.org.lungate.test:c%02d", i);
    small[lg_place(ini, three, 3)]++;
  }
  for (int k = 0; k < 3; k++)
    ck_assert_msg(small[k] > 0, "gateway %d got none of 30", k);
}
END_TEST

START_TEST(removal_moves_only_its_own)
{
  const char *two[] = { three[0], three[2] }; /* the second gateway is gone */
  char ini[80];
  for (int i = 0; i < N; i++) {
    name(ini, sizeof ini, i);
    const char *before = three[lg_place(ini, three, 3)];
    const char *after = two[lg_place(ini, two, 2)];
    if (strcmp(before, three[1]))
      ck_assert_str_eq(before, after); /* not the dead one's: stays */
  }
}
END_TEST

START_TEST(addition_takes_only_what_it_serves)
{
  const char *four[] = { three[0], three[1], three[2], "10.77.0.14:3260" };
  char ini[80];
  int moved = 0;
  for (int i = 0; i < N; i++) {
    name(ini, sizeof ini, i);
    const char *before = three[lg_place(ini, three, 3)];
    const char *after = four[lg_place(ini, four, 4)];
    if (strcmp(before, after)) {
      ck_assert_str_eq(after, four[3]);
      moved++;
    }
  }
  ck_assert_msg(moved > N / 4 * 8 / 10 && moved < N / 4 * 12 / 10, "moved %d", moved);
}
END_TEST

START_TEST(weight_separates_fields)
{
  ck_assert(lg_place_weight("bc", "a") != lg_place_weight("c", "ab"));
}
END_TEST

int main(void)
{
  Suite *s = suite_create("placement");
  TCase *tc = tcase_create("rendezvous");
  tcase_add_test(tc, empty_list);
  tcase_add_test(tc, stable_and_order_free);
  tcase_add_test(tc, spread);
  tcase_add_test(tc, removal_moves_only_its_own);
  tcase_add_test(tc, addition_takes_only_what_it_serves);
  tcase_add_test(tc, weight_separates_fields);
  suite_add_tcase(s, tc);
  return lg_run_suite(s);
}
