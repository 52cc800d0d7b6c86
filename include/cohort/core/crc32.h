// CRC-32: the checksum of Cohort's wire streams (docs/wire_format.md), codec frames
// (docs/formats.md) and spool files. The polynomial and bit order of zlib's crc32() (gzip,
// PNG, Ethernet: 0xEDB88320 reflected), so any zlib can check what Cohort writes. Computed by
// ISA-L's kernels (PCLMULQDQ / AVX-512 folding, chosen at run time for the CPU), several times
// the speed of zlib's table-driven loop; zlib combines CRCs of pieces.
//
// Thread safety: pure functions.
#pragma once

#include <cstddef>
#include <cstdint>

namespace cohort {

// The CRC-32 of `data` continuing `crc` (0 for the first piece): crc32_update(crc32_update(0,
// a), b) is the CRC of a followed by b, as zlib's crc32(crc, ...) would give.
uint32_t crc32_update(uint32_t crc, const void* data, size_t n);
inline uint32_t crc32_of(const void* data, size_t n) { return crc32_update(0, data, n); }
// The CRC of A followed by B from crc(A), crc(B) and B's length (zlib's crc32_combine64).
uint32_t crc32_combine(uint32_t crc_a, uint32_t crc_b, int64_t length_b);

}  // namespace cohort
