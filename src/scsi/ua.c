/* The unit attention queue (see ua.h). */
#include <string.h>

#include "scsi/ua.h"

void ua_push(struct ua_queue *q, uint16_t asc)
{
  if ((asc >> 8) == 0x29)
    q->n = 0;
  for (unsigned i = 0; i < q->n; i++)
    if (q->asc[i] == asc)
      return;
  if (q->n == UA_QUEUE_MAX) {
    q->asc[UA_QUEUE_MAX - 1] = asc;
    q->overflows++;
    return;
  }
  q->asc[q->n++] = asc;
}

bool ua_pop(struct ua_queue *q, uint16_t *asc)
{
  if (!q->n)
    return false;
  *asc = q->asc[0];
  memmove(q->asc, q->asc + 1, (q->n - 1) * sizeof q->asc[0]);
  q->n--;
  return true;
}
