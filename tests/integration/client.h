/* The login every libiscsi test client here starts with. */
#ifndef LUNGATE_TEST_CLIENT_H
#define LUNGATE_TEST_CLIENT_H

#include <stdio.h>

#include <iscsi/iscsi.h>

/* A normal session from INITIATOR to target IQN at PORTAL, logged in for
 * LUN, no digests, TIMEOUT seconds per command; NULL after saying why on
 * stderr, prefixed with WHO. */
static inline struct iscsi_context *lg_client_login(const char *who, const char *initiator,
                                                    const char *portal, const char *iqn, int lun,
                                                    int timeout)
{
  struct iscsi_context *iscsi = iscsi_create_context(initiator);
  if (!iscsi) {
    fprintf(stderr, "%s: cannot create an iSCSI context\n", who);
    return NULL;
  }
  iscsi_set_targetname(iscsi, iqn);
  iscsi_set_session_type(iscsi, ISCSI_SESSION_NORMAL);
  iscsi_set_header_digest(iscsi, ISCSI_HEADER_DIGEST_NONE);
  iscsi_set_timeout(iscsi, timeout);
  if (iscsi_full_connect_sync(iscsi, portal, lun) != 0) {
    fprintf(stderr, "%s: login: %s\n", who, iscsi_get_error(iscsi));
    iscsi_destroy_context(iscsi);
    return NULL;
  }
  return iscsi;
}

#endif
