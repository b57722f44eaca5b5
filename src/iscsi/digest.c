/* CRC32C for header and data digests, through Intel ISA-L's crc32_iscsi (SIMD). */
#include <stddef.h>
#include <isa-l/crc.h>

#include "iscsi/pdu.h"

uint32_t iscsi_crc32c(const void *buf, size_t len, uint32_t crc)
{
  /* ISA-L takes an int length; digests cover at most 16 MiB at a time */
  return crc32_iscsi((unsigned char *)buf, (int)len, crc);
}
