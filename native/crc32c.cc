// CRC-32C run-time dispatch: the implementation is picked once, on first use, from what
// the CPU reports (cpuid on x86-64, getauxval(AT_HWCAP) on arm64). The pick is a
// function-local static, so concurrent first calls from several threads are safe.
#include "crc32c.h"

#include <atomic>

#include "crc32c_internal.h"

#if defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
#endif

namespace tidemark {
namespace {

using ExtendFn = uint32_t (*)(uint32_t, const uint8_t*, size_t);

struct Implementation {
  ExtendFn extend;
  const char* name;
};

Implementation Detect() {
#if defined(__x86_64__)
  if (crc32c_internal::Sse42Supported()) return {crc32c_internal::ExtendSse42, "sse42"};
#endif
#if defined(__aarch64__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  if (crc32c_internal::Arm64Supported()) return {crc32c_internal::ExtendArm64, "arm64"};
#endif
  return {crc32c_internal::ExtendTable, "table"};
}

const Implementation& Detected() {
  static const Implementation detected = Detect();
  return detected;
}

std::atomic<bool> g_force_table{false};

}  // namespace

uint32_t crc32c_extend(uint32_t crc, const uint8_t* data, size_t size) {
  if (g_force_table.load(std::memory_order_relaxed)) return crc32c_internal::ExtendTable(crc, data, size);
  return Detected().extend(crc, data, size);
}

const char* crc32c_implementation() {
  return g_force_table.load(std::memory_order_relaxed) ? "table" : Detected().name;
}

void crc32c_force_table(bool force) { g_force_table.store(force, std::memory_order_relaxed); }

}  // namespace tidemark
