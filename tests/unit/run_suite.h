/* The main() tail every unit test shares: run a Check suite, exit 1 if any
 * test failed. */
#ifndef LUNGATE_TESTS_UNIT_RUN_SUITE_H
#define LUNGATE_TESTS_UNIT_RUN_SUITE_H

#include <check.h>

static inline int lg_run_suite(Suite *s)
{
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}

#endif
