/* iSCSI text keys (RFC 7143 §6, §13): "key=value\0" parsing, and the
 * negotiation of login/operational keys by the RFC's rules. */
#ifndef LUNGATE_ISCSI_KEYS_H
#define LUNGATE_ISCSI_KEYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "target/model.h"

#define ISCSI_KEY_NAME_MAX 63
#define ISCSI_KEY_VALUE_MAX 8192

/* One parsed key=value pair, pointing into the text buffer. */
struct iscsi_kv {
  const char *key;
  const char *value;
};

/* Split text (key=value pairs, each NUL-terminated; the buffer may lack a final
 * NUL) in place into at most max pairs.  Returns the count, or -EINVAL for a
 * pair without '=' or with an over-long key or value, -E2BIG for too many. */
int iscsi_keys_parse(char *text, size_t len, struct iscsi_kv *kv, size_t max);

/* The operational parameters of a connection/session after negotiation. */
struct iscsi_params {
  bool header_digest;                /* CRC32C */
  bool data_digest;
  bool initial_r2t;
  bool immediate_data;
  uint32_t max_recv_dsl_target;      /* what we accept (we declare it) */
  uint32_t max_recv_dsl_initiator;   /* what we may send (they declare it) */
  uint32_t max_burst_length;
  uint32_t first_burst_length;
  uint32_t max_outstanding_r2t;
  uint32_t default_time2wait;
  uint32_t default_time2retain;
  uint32_t max_connections;
  uint32_t error_recovery_level;
  bool data_pdu_in_order;
  bool data_sequence_in_order;
};

/* The RFC defaults (what applies to a key nobody negotiated). */
void iscsi_params_init(struct iscsi_params *p, const struct lg_params *offer);

/* A growing text buffer for responses. */
struct iscsi_text {
  char *buf;
  size_t len, cap;
};
int iscsi_text_add(struct iscsi_text *t, const char *key, const char *value);
void iscsi_text_free(struct iscsi_text *t);

/* Text requests in full feature phase (RFC 7143 §11.10, appendix C).  The
 * one operation lungate answers there is SendTargets, whose value is All,
 * empty (the session's own target) or an iSCSI name (iqn., eui., naa.).
 * Keys are case-sensitive (§6.1): SendTargetsPlease or sENDtARGETS are keys
 * nobody defined.  iscsi_text_ffp() answers kv[0..n):
 *   - a request with one SendTargets of a valid value: the targets (through
 *     send_targets, in the key's place), and Key=NotUnderstood for every
 *     other key (§6.2: what a responder does not understand);
 *   - no keys at all: an empty answer;
 *   - otherwise -- no SendTargets (only keys it does not understand, of
 *     which there is then nothing to answer but NotUnderstood), a bad value
 *     (SendTargets=Alle, SendTargets=A), or the key twice (§6.1 forbids
 *     repeating a key) -- it returns -EPROTO: the caller answers with a
 *     Reject PDU (reason Protocol Error), as Linux's LIO does, and as
 *     initiators expect: libiscsi treats any key but TargetName and
 *     TargetAddress in a Text response to SendTargets as a broken
 *     connection and reconnects, where a Reject fails just that request.
 * Every request gets exactly one of these answers. */
typedef void iscsi_send_targets_fn(void *arg, const char *which, struct iscsi_text *resp);
bool iscsi_send_targets_value_ok(const char *value);
int iscsi_text_ffp(const struct iscsi_kv *kv, int n, struct iscsi_text *resp,
                   iscsi_send_targets_fn *send_targets, void *arg);

enum iscsi_key_result {
  KEY_OK,             /* negotiated, answer added */
  KEY_NOT_OPERATIONAL,/* not an operational key: caller handles it */
  KEY_IRRELEVANT,     /* answered Irrelevant / NotUnderstood */
  KEY_REJECT,         /* value invalid: answered Reject */
};

/* Negotiate one operational key offered by the initiator against what the
 * target offers; updates p and appends the answer to resp. */
enum iscsi_key_result iscsi_negotiate_key(struct iscsi_params *p,
                                          const struct lg_params *offer,
                                          const char *key, const char *value,
                                          struct iscsi_text *resp);

#endif
