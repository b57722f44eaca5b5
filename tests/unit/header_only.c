/* Compiles if include/lungate/backstore.h is self-contained. */
#include "lungate/backstore.h"
const struct lg_backstore_ops *header_only_probe;
