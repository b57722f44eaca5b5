/* CHAP authentication for iSCSI login (RFC 7143 §12.1.3, RFC 1994): MD5
 * (CHAP_A=5, the one iPXE speaks) and SHA-256 (CHAP_A=7), one-way and mutual. */
#ifndef LUNGATE_ISCSI_CHAP_H
#define LUNGATE_ISCSI_CHAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "iscsi/keys.h"
#include "target/model.h"

#define CHAP_MAX_DIGEST 32

enum chap_state { CHAP_WAIT_A, CHAP_WAIT_R, CHAP_DONE };

struct iscsi_chap {
  enum chap_state state;
  const struct lg_chap *cred;        /* what the initiator must prove */
  int alg;                           /* 5: MD5, 7: SHA-256 */
  uint8_t id;
  uint8_t challenge[CHAP_MAX_DIGEST];
  size_t challenge_len;
  bool mutual;                       /* the target proved itself too */
};

/* The CHAP keys of one login request. */
struct chap_keys {
  const char *a, *n, *r, *i, *c;
};

/* One step: answer CHAP_A with our challenge, or check CHAP_N/CHAP_R (and
 * answer a mutual challenge).  0: carry on (or done: state CHAP_DONE);
 * -1: authentication failed, *why says how (never a secret). */
int iscsi_chap_step(struct iscsi_chap *ch, const struct chap_keys *k,
                    struct iscsi_text *resp, const char **why);

/* Decode a CHAP binary value, "0x" hex or "0b" base64; -1 if malformed. */
int chap_decode(const char *s, uint8_t *out, size_t max, size_t *len);
/* The CHAP response: H(id || secret || challenge). */
size_t chap_digest(int alg, uint8_t id, const char *secret, const uint8_t *challenge,
                   size_t clen, uint8_t *out);

#endif
