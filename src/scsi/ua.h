/* The unit attention queue of one I_T nexus on one logical unit (SAM-5 5.14).
 *
 * Conditions are reported oldest first, each once.  A condition already
 * pending is not queued twice.  A reset or power-on condition (ASC 29h)
 * supersedes every condition queued before it (they happened before the
 * reset, which the initiator must handle anyway).  When the queue is full a
 * new condition replaces the newest one, so the initiator always learns of
 * the latest event; the overflow is counted.
 */
#ifndef LUNGATE_SCSI_UA_H
#define LUNGATE_SCSI_UA_H

#include <stdbool.h>
#include <stdint.h>

#define UA_QUEUE_MAX 8

/* ASC/ASCQ of the conditions lungate establishes */
#define UA_POWER_ON_RESET      0x2900  /* POWER ON, RESET, OR BUS DEVICE RESET OCCURRED */
#define UA_BUS_DEVICE_RESET    0x2903  /* BUS DEVICE RESET FUNCTION OCCURRED (LU reset) */
#define UA_MODE_PARAMS_CHANGED 0x2a01
#define UA_RES_PREEMPTED       0x2a03
#define UA_RES_RELEASED        0x2a04
#define UA_REG_PREEMPTED       0x2a05

struct ua_queue {
  uint16_t asc[UA_QUEUE_MAX];
  unsigned n;
  unsigned overflows;                /* conditions that replaced another */
};

/* Establish a condition. */
void ua_push(struct ua_queue *q, uint16_t asc);
/* Take the oldest condition; false when none is pending. */
bool ua_pop(struct ua_queue *q, uint16_t *asc);

#endif
