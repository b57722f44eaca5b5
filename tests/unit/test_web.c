/* The web console's password file (src/web/auth.c): lines checked against
 * PBKDF2-HMAC-SHA256 values computed by Python's hashlib (another
 * implementation), malformed lines refused, and lg_web_hash's own lines
 * verifying.  Each row is a line, a password and what lg_web_verify says. */
#include <check.h>
#include <string.h>

#include <sys/socket.h>

#include "ops/http.h"
#include "web/web.h"
#include "run_suite.h"

#define SALT "000102030405060708090a0b0c0d0e0f"
#define H1 "53c4c1fad7c2d4e7c947a913b3450a85834cf127c9ab55ab8dc2051f5b6245cd"

static const struct {
  const char *line, *password;
  int want;                          /* 1 match, 0 no match, -1 malformed */
} rows[] = {
  { "pbkdf2-sha256$1000$" SALT "$" H1, "Classroom-Console-42", 1 },
  { "pbkdf2-sha256$1000$" SALT "$" H1 "\n", "Classroom-Console-42", 1 },
  { "pbkdf2-sha256$1000$" SALT "$" H1, "classroom-console-42", 0 },
  { "pbkdf2-sha256$1000$" SALT "$" H1, "Classroom-Console-4", 0 },
  { "pbkdf2-sha256$1000$" SALT "$" H1, "", 0 },
  { "pbkdf2-sha256$1001$" SALT "$" H1, "Classroom-Console-42", 0 },
  { "pbkdf2-sha256$1000$" SALT "$"
    "c5b301b1fd61bced63f00642a2304ec674519fbd7cd83c4bc83dafe1743f9855", "", 1 },
  { "pbkdf2-sha256$2000$" SALT "$"
    "3a5579bc7535bd9fb43cdda77c8d0c48387c797d4a4a5bc7f74188ef554db2ea", "p\xc3\xa4ssw\xc3\xb6rd", 1 },
  { "", "x", -1 },
  { "Classroom-Console-42", "Classroom-Console-42", -1 },                /* a plain password */
  { "pbkdf2-sha1$1000$" SALT "$" H1, "Classroom-Console-42", -1 },
  { "pbkdf2-sha256$999$" SALT "$" H1, "Classroom-Console-42", -1 },        /* too few iterations */
  { "pbkdf2-sha256$1000$" SALT H1, "Classroom-Console-42", -1 },           /* no separator */
  { "pbkdf2-sha256$1000$0001$" H1, "Classroom-Console-42", -1 },           /* short salt */
  { "pbkdf2-sha256$1000$" SALT "$" "53C4C1FAD7C2D4E7C947A913B3450A85834CF127C9AB55AB8DC2051F5B6245CD",
    "Classroom-Console-42", -1 },                                          /* upper-case hex */
  { "pbkdf2-sha256$1000$" SALT "$" H1 "00", "Classroom-Console-42", -1 },  /* long hash */
  { "pbkdf2-sha256$1000$" SALT "$" "zz", "Classroom-Console-42", -1 },
};

START_TEST(test_verify)
{
  int got = lg_web_verify(rows[_i].line, rows[_i].password);
  ck_assert_msg(got == rows[_i].want, "row %d: lg_web_verify gave %d, want %d", _i, got,
                rows[_i].want);
  ck_assert_msg(lg_web_hash_valid(rows[_i].line) == (rows[_i].want >= 0),
                "row %d: lg_web_hash_valid disagrees", _i);
}
END_TEST

/* lg_web_hash: a fresh salt each time, and its lines verify. */
START_TEST(test_hash)
{
  char a[256], b[256];
  ck_assert_int_eq(lg_web_hash("room-admin-pass", 1000, a, sizeof a), 0);
  ck_assert_int_eq(lg_web_hash("room-admin-pass", 1000, b, sizeof b), 0);
  ck_assert_msg(strcmp(a, b), "two hashes of one password are equal: no fresh salt");
  ck_assert_msg(!strstr(a, "room-admin-pass"), "the line holds the password");
  ck_assert_int_eq(lg_web_verify(a, "room-admin-pass"), 1);
  ck_assert_int_eq(lg_web_verify(b, "room-admin-pass"), 1);
  ck_assert_int_eq(lg_web_verify(a, "room-admin-pas"), 0);
  char tiny[16];
  ck_assert_int_lt(lg_web_hash("x", 1000, tiny, sizeof tiny), 0);
}
END_TEST

/* --web / --metrics addresses: which count as loopback (anything else
 * without HTTPS makes the console warn). */
static const struct {
  const char *spec;
  int want;                          /* 1 loopback, 0 not, -1 refused */
} addrs[] = {
  { "127.0.0.1:8080", 1 }, { "127.9.8.7:1", 1 }, { "[::1]:8080", 1 },
  { "0.0.0.0:8080", 0 }, { "10.0.0.1:8080", 0 }, { "192.168.1.5:443", 0 }, { "[::]:8080", 0 },
  { "[fe80::1]:8080", 0 }, { "128.0.0.1:80", 0 },
  { "localhost:8080", -1 }, { "127.0.0.1", -1 }, { "127.0.0.1:0", -1 },
  { "127.0.0.1:65536", -1 }, { "::1:8080", -1 }, { "", -1 },
};

START_TEST(test_addr)
{
  struct sockaddr_storage ss;
  bool lo = false;
  int got = lg_http_parse_addr(addrs[_i].spec, &ss, &lo);
  got = got < 0 ? -1 : lo;
  ck_assert_msg(got == addrs[_i].want, "row %d (%s): got %d, want %d", _i, addrs[_i].spec, got,
                addrs[_i].want);
}
END_TEST

int main(void)
{
  Suite *s = suite_create("web");
  TCase *tc = tcase_create("password file");
  tcase_add_loop_test(tc, test_verify, 0, (int)(sizeof rows / sizeof rows[0]));
  tcase_add_test(tc, test_hash);
  tcase_add_loop_test(tc, test_addr, 0, (int)(sizeof addrs / sizeof addrs[0]));
  suite_add_tcase(s, tc);
  return lg_run_suite(s);
}
