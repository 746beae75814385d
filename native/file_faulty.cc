// Test-only fault layer under the File interface (compiled only into the
// tidemark_faults addon, with -DTIDEMARK_FAULTS).
//
// Model of the disk: every write reaches the real file at once (like the page
// cache, so reads see it), and its undo image (the bytes it replaced) is kept
// in a journal until the file is fdatasync'd. A simulated power loss replays
// the journal backwards, restoring every unsynced byte, optionally keeping a
// 512-byte-aligned prefix of the last write (a torn write; crash_at_write_byte:
// a prefix of any length, the last persisted sector part new, part old), and then marks the
// machine crashed: every later operation fails with EIO. Directory entries are
// not modelled (renames and unlinks are durable at once).
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <mutex>
#include <vector>

#include "file.h"

namespace tidemark {
namespace faults {
namespace {

struct Undo {
  std::string path;
  uint64_t offset;
  std::vector<uint8_t> old_bytes;   // what was there (within the old size)
  uint64_t old_size;                // file size before the write
  uint64_t length;                  // bytes written
};

struct State {
  std::mutex mu;
  std::vector<Undo> journal;
  int fail_sync = 0;
  int fail_write = 0;
  uint64_t fail_write_partial = 0;
  int fail_allocate = 0;
  bool crashed = false;
  uint64_t crash_countdown = 0;     // 0: off; n: the nth next .wal write is torn
  uint64_t crash_keep = 0;
  uint64_t crash_sector_seed = 0;   // nonzero: keep a random subset of the torn write's sectors instead of a prefix
  bool crash_exact = false;         // keep exactly crash_keep bytes (a tear at any byte), not a 512-byte multiple
  // Hooks called from inside FaultyFile (under `mu`): their own mutex.
  std::mutex hook_mu;
  uint64_t short_countdown = 0;     // 0: off; n: the nth next raw .wal write is short
  uint64_t short_bytes = 0;
  uint64_t alloc_min = 0;           // 0: off; else the alloc_countdown-th allocation of >= alloc_min bytes fails
  uint64_t alloc_countdown = 0;
};

State& state() {
  static State s;
  return s;
}

bool is_wal(const std::string& path) { return path.size() > 4 && path.compare(path.size() - 4, 4, ".wal") == 0; }

// Writes a crash_at_write countdown counts: segments, and a segment being rebuilt by
// a cut (recovery.h kCutTmpName), which becomes the segment by rename.
bool is_segment_write(const std::string& path) {
  static const std::string cut = "/cut.wal.tmp";
  return is_wal(path) || (path.size() > cut.size() && path.compare(path.size() - cut.size(), cut.size(), cut) == 0);
}

// Restores the 512-byte sectors of one journal entry whose bit in a seeded
// random sequence is clear: a torn write that persisted sectors out of order.
void undo_sectors(const Undo& u, uint64_t seed) {
  int fd = ::open(u.path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return;
  uint64_t x = seed;
  for (uint64_t at = 0; at < u.length; at += 512) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    if ((x & 1) != 0) continue;  // this sector reached the disk
    uint64_t end = std::min<uint64_t>(at + 512, u.length);
    if (at < u.old_bytes.size()) {
      size_t n = static_cast<size_t>(std::min<uint64_t>(end, u.old_bytes.size()) - at);
      ssize_t rc = ::pwrite(fd, u.old_bytes.data() + at, n, static_cast<off_t>(u.offset + at));
      (void)rc;
    }
  }
  ::fsync(fd);
  ::close(fd);
}

// Restores one journal entry, keeping the first `keep` bytes of the write.
void undo_entry(const Undo& u, uint64_t keep) {
  int fd = ::open(u.path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return;  // removed since: nothing to restore
  if (keep < u.length) {
    uint64_t from = u.offset + keep;
    uint64_t old_end = u.offset + u.old_bytes.size();
    if (from < old_end) {
      size_t n = static_cast<size_t>(old_end - from);
      ssize_t rc = ::pwrite(fd, u.old_bytes.data() + (from - u.offset), n, static_cast<off_t>(from));
      (void)rc;
    }
    if (u.offset + u.length > u.old_size) {
      int rc = ::ftruncate(fd, static_cast<off_t>(std::max(u.old_size, from)));
      (void)rc;
    }
  }
  ::fsync(fd);
  ::close(fd);
}

void power_loss_locked(State& s, int64_t keep_last_bytes) {
  for (size_t i = s.journal.size(); i > 0; i--) {
    const Undo& u = s.journal[i - 1];
    if (i == s.journal.size() && s.crash_sector_seed != 0) {
      undo_sectors(u, s.crash_sector_seed);
      continue;
    }
    uint64_t keep = 0;
    if (i == s.journal.size() && keep_last_bytes > 0) {
      keep = static_cast<uint64_t>(keep_last_bytes);
      if (!s.crash_exact) keep = keep / 512 * 512;
    }
    undo_entry(u, keep);
  }
  s.journal.clear();
  s.crashed = true;
}

class FaultyFile final : public File {
 public:
  explicit FaultyFile(std::unique_ptr<File> inner) : inner_(std::move(inner)) {}

  Status pwrite(const void* data, size_t size, uint64_t offset) override {
    State& s = state();
    std::lock_guard<std::mutex> lk(s.mu);
    if (s.crashed) return Status::Errno("pwrite", EIO, path(), static_cast<int64_t>(offset));
    bool wal = is_wal(path());
    if (wal && s.fail_write != 0) {
      size_t partial = static_cast<size_t>(std::min<uint64_t>(s.fail_write_partial, size));
      if (partial > 0) {
        Status st = journaled_write(s, data, partial, offset);
        if (!st.ok()) return st;
      }
      return Status::Errno("pwrite", s.fail_write, path(), static_cast<int64_t>(offset + partial));
    }
    Status st = journaled_write(s, data, size, offset);
    if (!st.ok()) return st;
    if (is_segment_write(path()) && s.crash_countdown > 0 && --s.crash_countdown == 0) {
      power_loss_locked(s, static_cast<int64_t>(std::min<uint64_t>(s.crash_keep, size)));
      return Status::Errno("pwrite", EIO, path(), static_cast<int64_t>(offset));
    }
    return Status::Ok();
  }

  Status pwritev(const struct iovec* iov, int count, uint64_t offset) override {
    std::vector<uint8_t> joined;
    for (int i = 0; i < count; i++) {
      auto* p = static_cast<const uint8_t*>(iov[i].iov_base);
      joined.insert(joined.end(), p, p + iov[i].iov_len);
    }
    return pwrite(joined.data(), joined.size(), offset);
  }

  Status pread(void* data, size_t size, uint64_t offset, size_t* got) override {
    return inner_->pread(data, size, offset, got);
  }

  Status datasync() override {
    State& s = state();
    std::lock_guard<std::mutex> lk(s.mu);
    if (s.crashed) return Status::Errno("fdatasync", EIO, path());
    // A failed sync keeps its writes unsynced: a later power loss drops them.
    if (s.fail_sync != 0) return Status::Errno("fdatasync", s.fail_sync, path());
    Status st = inner_->datasync();
    if (!st.ok()) return st;
    s.journal.erase(std::remove_if(s.journal.begin(), s.journal.end(), [&](const Undo& u) { return u.path == path(); }),
                    s.journal.end());
    return Status::Ok();
  }

  Status truncate(uint64_t size) override {
    State& s = state();
    std::lock_guard<std::mutex> lk(s.mu);
    if (s.crashed) return Status::Errno("ftruncate", EIO, path());
    return inner_->truncate(size);
  }

  Status allocate(uint64_t offset, uint64_t size) override {
    State& s = state();
    std::lock_guard<std::mutex> lk(s.mu);
    if (s.crashed) return Status::Errno("fallocate", EIO, path());
    if (s.fail_allocate != 0) return Status::Errno("fallocate", s.fail_allocate, path());
    return inner_->allocate(offset, size);
  }

  Status size(uint64_t* out) override { return inner_->size(out); }
  const std::string& path() const override { return inner_->path(); }
  int fd() const override { return inner_->fd(); }

  // The io_uring path (log_uring.cc): its writes are journaled like pwrite's (the
  // undo image taken before the kernel writes) and its fdatasyncs forget them like
  // datasync(). A write that a fault is due for is not submitted: a torn write
  // (crashAtWrite*) is made here, as pwrite makes it, and the error returned; the
  // log then hands the batch to its writer thread, whose pwrite meets the same
  // fault state (crashed: EIO; failWrite: the partial write and the errno).
  // Short writes (shortWrite) are not modelled for it. A write already submitted
  // when a power loss is simulated may land after the undo (like a disk that
  // persisted an in-flight write); it is never acknowledged (after_async_sync
  // fails once crashed).
  Status before_async_write(const void* data, size_t size, uint64_t offset) override {
    State& s = state();
    std::lock_guard<std::mutex> lk(s.mu);
    if (s.crashed) return Status::Errno("pwrite", EIO, path(), static_cast<int64_t>(offset));
    if (is_wal(path()) && s.fail_write != 0) return Status::Errno("pwrite", s.fail_write, path(), static_cast<int64_t>(offset));
    if (is_segment_write(path()) && s.crash_countdown > 0 && --s.crash_countdown == 0) {
      Status st = journaled_write(s, data, size, offset);
      if (!st.ok()) return st;
      power_loss_locked(s, static_cast<int64_t>(std::min<uint64_t>(s.crash_keep, size)));
      return Status::Errno("pwrite", EIO, path(), static_cast<int64_t>(offset));
    }
    Undo u;
    Status st = undo_image(size, offset, &u);
    if (!st.ok()) return st;
    s.journal.push_back(std::move(u));
    return Status::Ok();
  }

  Status after_async_sync() override {
    State& s = state();
    std::lock_guard<std::mutex> lk(s.mu);
    if (s.crashed) return Status::Errno("fdatasync", EIO, path());
    if (s.fail_sync != 0) return Status::Errno("fdatasync", s.fail_sync, path());
    s.journal.erase(std::remove_if(s.journal.begin(), s.journal.end(), [&](const Undo& u) { return u.path == path(); }),
                    s.journal.end());
    return Status::Ok();
  }

 private:
  Status journaled_write(State& s, const void* data, size_t size, uint64_t offset) {
    Undo u;
    Status st = undo_image(size, offset, &u);
    if (!st.ok()) return st;
    st = inner_->pwrite(data, size, offset);
    if (!st.ok()) return st;
    s.journal.push_back(std::move(u));
    return Status::Ok();
  }

  // What a write of `size` bytes at `offset` is about to replace.
  Status undo_image(size_t size, uint64_t offset, Undo* out) {
    Undo& u = *out;
    u.path = path();
    u.offset = offset;
    u.length = size;
    Status st = inner_->size(&u.old_size);
    if (!st.ok()) return st;
    if (offset < u.old_size) {
      size_t n = static_cast<size_t>(std::min<uint64_t>(size, u.old_size - offset));
      u.old_bytes.resize(n);
      // Through a buffered descriptor of its own: the file's may be O_DIRECT, which
      // refuses this unaligned buffer.
      int fd = ::open(path().c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0) return Status::Errno("open", errno, path());
      ssize_t got = ::pread(fd, u.old_bytes.data(), n, static_cast<off_t>(offset));
      int err = errno;
      ::close(fd);
      if (got < 0) return Status::Errno("pread", err, path(), static_cast<int64_t>(offset));
      u.old_bytes.resize(static_cast<size_t>(got));
    }
    return Status::Ok();
  }

  std::unique_ptr<File> inner_;
};

}  // namespace

std::unique_ptr<File> wrap(std::unique_ptr<File> inner) { return std::make_unique<FaultyFile>(std::move(inner)); }

void reset() {
  State& s = state();
  std::lock_guard<std::mutex> lk(s.mu);
  s.journal.clear();
  s.fail_sync = 0;
  s.fail_write = 0;
  s.fail_write_partial = 0;
  s.fail_allocate = 0;
  s.crashed = false;
  s.crash_countdown = 0;
  s.crash_keep = 0;
  s.crash_sector_seed = 0;
  s.crash_exact = false;
  std::lock_guard<std::mutex> hk(s.hook_mu);
  s.short_countdown = 0;
  s.short_bytes = 0;
  s.alloc_min = 0;
  s.alloc_countdown = 0;
}

void fail_sync(int err) {
  std::lock_guard<std::mutex> lk(state().mu);
  state().fail_sync = err;
}

void fail_write(int err, uint64_t partial) {
  std::lock_guard<std::mutex> lk(state().mu);
  state().fail_write = err;
  state().fail_write_partial = partial;
}

void fail_allocate(int err) {
  std::lock_guard<std::mutex> lk(state().mu);
  state().fail_allocate = err;
}

void power_loss(int64_t keep_last_bytes) {
  std::lock_guard<std::mutex> lk(state().mu);
  power_loss_locked(state(), keep_last_bytes);
}

void crash_at_write(uint64_t nth, uint64_t keep_bytes) {
  std::lock_guard<std::mutex> lk(state().mu);
  state().crash_countdown = nth;
  state().crash_keep = keep_bytes;
  state().crash_sector_seed = 0;
  state().crash_exact = false;
}

void crash_at_write_byte(uint64_t nth, uint64_t keep_bytes) {
  std::lock_guard<std::mutex> lk(state().mu);
  state().crash_countdown = nth;
  state().crash_keep = keep_bytes;
  state().crash_sector_seed = 0;
  state().crash_exact = true;
}

void crash_at_write_sectors(uint64_t nth, uint64_t seed) {
  std::lock_guard<std::mutex> lk(state().mu);
  state().crash_countdown = nth;
  state().crash_keep = 0;
  state().crash_sector_seed = seed == 0 ? 1 : seed;
  state().crash_exact = false;
}

void short_write(uint64_t nth, uint64_t bytes) {
  std::lock_guard<std::mutex> lk(state().hook_mu);
  state().short_countdown = nth;
  state().short_bytes = bytes;
}

size_t short_write_cap(const std::string& path, size_t size) {
  State& s = state();
  std::lock_guard<std::mutex> lk(s.hook_mu);
  if (s.short_countdown == 0 || !is_wal(path)) return size;
  if (--s.short_countdown != 0) return size;
  return static_cast<size_t>(std::min<uint64_t>(s.short_bytes, size));
}

void fail_alloc(uint64_t min_bytes, uint64_t nth) {
  std::lock_guard<std::mutex> lk(state().hook_mu);
  state().alloc_min = min_bytes;
  state().alloc_countdown = min_bytes == 0 ? 0 : nth;
}

bool alloc_fails(size_t bytes) {
  State& s = state();
  std::lock_guard<std::mutex> lk(s.hook_mu);
  if (s.alloc_countdown == 0 || bytes < s.alloc_min) return false;
  return --s.alloc_countdown == 0;
}

bool crashed() {
  std::lock_guard<std::mutex> lk(state().mu);
  return state().crashed;
}

uint64_t unsynced_writes() {
  std::lock_guard<std::mutex> lk(state().mu);
  return state().journal.size();
}

}  // namespace faults
}  // namespace tidemark
