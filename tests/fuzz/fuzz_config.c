/* Fuzz the configuration loader with arbitrary JSON text. */
#include <stdint.h>
#include <stdlib.h>

#include "target/model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  json_t *j = json_loadb((const char *)data, size, 0, NULL);
  if (!j)
    return 0;
  char *err = NULL;
  struct lg_model *m = lg_model_load(j, "fuzz.json", &err);
  lg_model_unref(m);
  free(err);
  json_decref(j);
  return 0;
}
