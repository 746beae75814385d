// Standalone check of the native CRC-32C (no Node): every implementation this build and
// CPU can run against a bitwise reference, over random data of many lengths, offsets and
// seeds. Used by scripts/crc32c-cross-check.sh to run the arm64 build under qemu-aarch64
// and the x86-64 build under emulated CPUs without SSE4.2 / PCLMUL. Exit status 0 = pass.
#include <cstdio>
#include <vector>

#include "crc32c.h"
#include "crc32c_internal.h"

namespace {

uint32_t Bitwise(uint32_t crc, const uint8_t* p, size_t n) {
  uint32_t reg = ~crc;
  for (size_t i = 0; i < n; i++) {
    reg ^= p[i];
    for (int bit = 0; bit < 8; bit++) reg = (reg >> 1) ^ ((reg & 1u) ? 0x82F63B78u : 0u);
  }
  return ~reg;
}

uint64_t g_state = 0x2545F4914F6CDD1DULL;
uint64_t Next() {  // xorshift64
  g_state ^= g_state << 13;
  g_state ^= g_state >> 7;
  g_state ^= g_state << 17;
  return g_state;
}

}  // namespace

int main() {
  using namespace tidemark;
  std::printf("implementation: %s\n", crc32c_implementation());
  std::vector<uint8_t> buf(150000);
  for (auto& b : buf) b = static_cast<uint8_t>(Next());
  int bad = 0;
  const uint8_t check[] = {'1', '2', '3', '4', '5', '6', '7', '8', '9'};
  if (crc32c(check, sizeof check) != 0xE3069283u) bad++;
  for (int i = 0; i < 2500; i++) {
    const size_t n = i < 1200 ? static_cast<size_t>(i) : static_cast<size_t>(Next() % 140000);
    const size_t offset = Next() % 16;
    const uint32_t seed = i % 3 == 0 ? 0 : static_cast<uint32_t>(Next());
    const uint32_t want = Bitwise(seed, buf.data() + offset, n);
    const uint32_t got = crc32c_extend(seed, buf.data() + offset, n);
    const uint32_t table = crc32c_internal::ExtendTable(seed, buf.data() + offset, n);
    if (got != want || table != want) {
      if (bad++ < 10) std::printf("mismatch: length %zu offset %zu: want %08x got %08x table %08x\n", n, offset, want, got, table);
    }
  }
  std::printf("%s (%d mismatches)\n", bad == 0 ? "ok" : "FAILED", bad);
  return bad == 0 ? 0 : 1;
}
