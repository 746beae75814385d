// Fuzz target: CRC-32C. For any input, the hardware path (SSE4.2+PCLMUL on x86-64, the
// CRC extension on arm64, where the CPU has it), the run-time dispatch and the portable
// table agree, at any alignment; extending is chaining (crc(b, crc(a)) == crc(a || b));
// and short inputs match a bitwise reference.
//
// Input: split u16 | seed u32 | data...
#include <cstring>
#include <vector>

#include "crc32c.h"
#include "crc32c_internal.h"
#include "fuzz_check.h"

namespace {

using tidemark_fuzz::Reader;
namespace ci = tidemark::crc32c_internal;

uint32_t Bitwise(uint32_t crc, const uint8_t* p, size_t n) {
  uint32_t reg = ~crc;
  for (size_t i = 0; i < n; i++) {
    reg ^= p[i];
    for (int bit = 0; bit < 8; bit++) reg = (reg >> 1) ^ ((reg & 1u) ? 0x82F63B78u : 0u);
  }
  return ~reg;
}

// The hardware implementation this CPU runs, or the table when it has none.
uint32_t Hardware(uint32_t crc, const uint8_t* p, size_t n, bool* has) {
#if defined(__x86_64__)
  if (ci::Sse42Supported()) {
    *has = true;
    return ci::ExtendSse42(crc, p, n);
  }
#endif
#if defined(__aarch64__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  if (ci::Arm64Supported()) {
    *has = true;
    return ci::ExtendArm64(crc, p, n);
  }
#endif
  *has = false;
  return ci::ExtendTable(crc, p, n);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* input, size_t input_size) {
  Reader r(input, input_size);
  const uint16_t split_raw = r.u16();
  const uint32_t seed = r.u32();
  const size_t n = r.remaining();
  // Exact-size heap copies, so a read past the end is an ASan report.
  std::vector<uint8_t> data(r.rest(), r.rest() + n);
  const uint8_t* d = data.data();

  const uint32_t table = ci::ExtendTable(seed, d, n);
  bool has_hw = false;
  const uint32_t hw = Hardware(seed, d, n, &has_hw);
  FUZZ_CHECK(hw == table, "hardware %08x != table %08x (n=%zu seed=%08x)", hw, table, n, seed);
  const uint32_t dispatched = tidemark::crc32c_extend(seed, d, n);
  FUZZ_CHECK(dispatched == table, "dispatch (%s) %08x != table %08x (n=%zu)", tidemark::crc32c_implementation(),
             dispatched, table, n);
  if (n <= 4096) {
    const uint32_t bitwise = Bitwise(seed, d, n);
    FUZZ_CHECK(table == bitwise, "table %08x != bitwise %08x (n=%zu)", table, bitwise, n);
  }

  // Chaining: crc(b, crc(a)) == crc(a || b) for the split the input chose.
  const size_t split = n == 0 ? 0 : split_raw % (n + 1);
  const uint32_t chained_table = ci::ExtendTable(ci::ExtendTable(seed, d, split), d + split, n - split);
  FUZZ_CHECK(chained_table == table, "table chain at %zu: %08x != %08x", split, chained_table, table);
  bool ignored = false;
  const uint32_t chained_hw = Hardware(Hardware(seed, d, split, &ignored), d + split, n - split, &ignored);
  FUZZ_CHECK(chained_hw == table, "hardware chain at %zu: %08x != %08x", split, chained_hw, table);

  // Every alignment of the start (the hardware paths align themselves with byte steps).
  const size_t shift = 1 + (split_raw >> 12) % 15;
  std::vector<uint8_t> shifted(n + shift);
  if (n > 0) std::memcpy(shifted.data() + shift, d, n);
  const uint32_t at_shift = Hardware(seed, shifted.data() + shift, n, &ignored);
  FUZZ_CHECK(at_shift == table, "hardware at alignment +%zu: %08x != %08x", shift, at_shift, table);
  const uint32_t table_shift = ci::ExtendTable(seed, shifted.data() + shift, n);
  FUZZ_CHECK(table_shift == table, "table at alignment +%zu: %08x != %08x", shift, table_shift, table);
  return 0;
}
