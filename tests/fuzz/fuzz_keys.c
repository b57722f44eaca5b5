/* Fuzz the text key parser, the negotiation of every key it yields, and the
 * answer to the same keys as a Text request in full feature phase. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "iscsi/keys.h"

static void targets(void *arg, const char *which, struct iscsi_text *resp)
{
  (void)arg;
  iscsi_text_add(resp, "TargetName", which);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  char *text = malloc(size + 1);
  if (!text)
    return 0;
  memcpy(text, data, size);
  text[size] = '\0';
  struct iscsi_kv kv[64];
  int n = iscsi_keys_parse(text, size, kv, 64);
  struct lg_params offer;
  lg_params_default(&offer);
  struct iscsi_params p;
  iscsi_params_init(&p, &offer);
  struct iscsi_text resp = { 0 };
  for (int i = 0; i < n; i++)
    iscsi_negotiate_key(&p, &offer, kv[i].key, kv[i].value, &resp);
  iscsi_text_free(&resp);
  if (n >= 0 && iscsi_text_ffp(kv, n, &resp, targets, NULL) == 0 && n > 0 && !resp.len)
    abort(); /* keys, and no answer at all */
  iscsi_text_free(&resp);
  free(text);
  return 0;
}
