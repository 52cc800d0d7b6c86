#include "cohort/core/crc32.h"

#include <isa-l/crc.h>
#include <zlib.h>

namespace cohort {

uint32_t crc32_update(uint32_t crc, const void* data, size_t n) {
  // ISA-L takes a 64-bit length; its reflected gzip CRC continues zlib's value as is.
  return ::crc32_gzip_refl(crc, static_cast<const unsigned char*>(data), n);
}

uint32_t crc32_combine(uint32_t crc_a, uint32_t crc_b, int64_t length_b) {
  return static_cast<uint32_t>(::crc32_combine64(crc_a, crc_b, static_cast<z_off64_t>(length_b)));
}

}  // namespace cohort
