/* The iPXE lines that boot each target, printed when serve starts. */
#ifndef LUNGATE_OPS_IPXE_LINES_H
#define LUNGATE_OPS_IPXE_LINES_H

#include <stddef.h>
#include <stdio.h>

#include "target/model.h"

/* Write to out an iPXE script head and one sanboot line per target and
 * portal: the --listen addresses when n_listen > 0, else each target's
 * portals; a wildcard address becomes each of this machine's IPv4
 * addresses, a loopback one QEMU user networking's 10.0.2.2. */
void lg_print_ipxe_lines(FILE *out, const struct lg_model *m, char *const *listen,
                         size_t n_listen);

#endif
