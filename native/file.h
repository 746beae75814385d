// The File interface the segment code writes through, and its POSIX implementation.
// Test builds (-DTIDEMARK_FAULTS) wrap every file in a fault-injecting layer
// (file_faulty.cc) that keeps unsynced writes apart from synced state.
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "status.h"

namespace tidemark {

class File {
 public:
  virtual ~File() = default;
  // Writes all `size` bytes at `offset` (loops over short writes) or fails.
  virtual Status pwrite(const void* data, size_t size, uint64_t offset) = 0;
  virtual Status pwritev(const struct iovec* iov, int count, uint64_t offset) = 0;
  // Reads up to `size` bytes; `*got` is what was read (short only at end of file).
  virtual Status pread(void* data, size_t size, uint64_t offset, size_t* got) = 0;
  virtual Status datasync() = 0;
  virtual Status truncate(uint64_t size) = 0;
  // Reserves [offset, offset + size). Fails with err EOPNOTSUPP where the filesystem refuses.
  virtual Status allocate(uint64_t offset, uint64_t size) = 0;
  virtual Status size(uint64_t* out) = 0;
  // Starts writeback of [offset, offset + size) and waits for it: bounds how much
  // dirty data a later sync (of any file on the device) queues behind. Not a
  // durability point (no metadata, no cache flush): callers still datasync().
  // The default does nothing (the fault layer models only datasync).
  virtual Status writeback(uint64_t offset, uint64_t size) {
    (void)offset;
    (void)size;
    return Status::Ok();
  }
  virtual const std::string& path() const = 0;
  // The descriptor writes go to (the io_uring append path submits on it); -1: none.
  virtual int fd() const { return -1; }
  // The io_uring path writes and syncs without this interface; it tells the file
  // before each write is submitted and after each fdatasync completed, so that the
  // test build's fault layer (file_faulty.cc) keeps those writes unsynced until then,
  // and can fail them as it fails pwrite/datasync. No-ops otherwise.
  virtual Status before_async_write(const void* data, size_t size, uint64_t offset) {
    (void)data;
    (void)size;
    (void)offset;
    return Status::Ok();
  }
  virtual Status after_async_sync() { return Status::Ok(); }
};

enum OpenFlags : int {
  kOpenRead = 1,
  kOpenWrite = 2,
  kOpenCreate = 4,      // O_CREAT | O_EXCL
  kOpenDsync = 8,       // O_DSYNC
  kOpenDirect = 16,     // O_DIRECT
};

// Opens `path` (always O_CLOEXEC).
Status open_file(const std::string& path, int flags, std::unique_ptr<File>* out);

// fsync on a directory, so that creates, renames and removes in it are durable.
Status sync_dir(const std::string& dir);

// Aligned heap buffer (posix_memalign) for O_DIRECT writes; grows by doubling up to
// kGrowDoublingMaxBytes, then in steps of that size (so a buffer holds at most that
// much slack). Running out of memory is an operating error, never abort(): the
// growing calls return false / nullptr and leave the buffer as it was.
class AlignedBuffer {
 public:
  AlignedBuffer() = default;
  ~AlignedBuffer();
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;
  AlignedBuffer(AlignedBuffer&& other) noexcept;
  AlignedBuffer& operator=(AlignedBuffer&& other) noexcept;

  uint8_t* data() { return data_; }
  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  size_t capacity() const { return capacity_; }
  static constexpr size_t kGrowDoublingMaxBytes = 64 * 1024 * 1024;

  // Makes room for `extra` more bytes and returns a pointer to them (size grows by
  // `extra`), or nullptr when memory runs out.
  [[nodiscard]] uint8_t* append(size_t extra);
  [[nodiscard]] bool reserve(size_t capacity);
  void clear() { size_ = 0; }
  [[nodiscard]] bool resize(size_t size) {
    if (!reserve(size)) return false;
    size_ = size;
    return true;
  }

 private:
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
  size_t capacity_ = 0;
};

#ifdef TIDEMARK_FAULTS
// Fault injection controls (test build only; see file_faulty.cc).
namespace faults {
std::unique_ptr<File> wrap(std::unique_ptr<File> inner);
void reset();                                 // clears every fault and the crashed state; forgets unsynced writes
void fail_sync(int err);                      // every datasync fails with err (0 clears)
void fail_write(int err, uint64_t partial);   // every pwrite to a .wal fails with err after writing `partial` bytes (0 clears)
void fail_allocate(int err);                  // every allocate fails with err (0 clears)
void power_loss(int64_t keep_last_bytes);     // drops unsynced writes (keeping a prefix of the last one when >= 0); then crashed
void crash_at_write(uint64_t nth, uint64_t keep_bytes);  // the nth next .wal pwrite is torn after keep_bytes, then power loss
void crash_at_write_sectors(uint64_t nth, uint64_t seed);
void crash_at_write_byte(uint64_t nth, uint64_t keep_bytes);  // ... torn after exactly keep_bytes (any byte)  // ... torn keeping a seeded random subset of its 512-byte sectors
bool crashed();
uint64_t unsynced_writes();
// The nth next write system call to a .wal file writes only its first `bytes` (through a
// buffered descriptor, so any length works even on an O_DIRECT file) and returns that count:
// a short write. Hook: the byte count the next raw write may write (`size` when none is due).
void short_write(uint64_t nth, uint64_t bytes);
size_t short_write_cap(const std::string& path, size_t size);
// The nth next AlignedBuffer allocation of at least `min_bytes` fails (0 clears). Hook: does this one?
void fail_alloc(uint64_t min_bytes, uint64_t nth);
bool alloc_fails(size_t bytes);
}  // namespace faults
#endif

}  // namespace tidemark
