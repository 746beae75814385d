// See bench_sync.h. io_uring by raw syscalls: io_uring_setup, mmap of the rings,
// io_uring_enter. Only the benchmark uses it; the WAL writer does not.
#include "bench_sync.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#if defined(__linux__) && __has_include(<linux/io_uring.h>) && defined(__NR_io_uring_setup) && defined(__NR_io_uring_enter)
#include <linux/io_uring.h>
#define TIDEMARK_HAVE_URING 1
#else
#define TIDEMARK_HAVE_URING 0
#endif

namespace tidemark {
namespace bench {

size_t align_offset(const void* data, size_t align) {
  const auto address = reinterpret_cast<uintptr_t>(data);
  const uintptr_t mask = static_cast<uintptr_t>(align) - 1;
  return static_cast<size_t>((align - (address & mask)) & mask);
}

#if TIDEMARK_HAVE_URING

namespace {

constexpr unsigned kRingEntries = 2;  // one write, one fdatasync

// One mapped ring. Single-threaded use (the JS thread), so no locking inside.
class Ring {
 public:
  Ring() = default;
  Ring(const Ring&) = delete;
  Ring& operator=(const Ring&) = delete;
  ~Ring() {
    if (sqes_ != nullptr) munmap(sqes_, sqes_bytes_);
    if (cq_map_ != nullptr && cq_map_ != sq_map_) munmap(cq_map_, cq_map_bytes_);
    if (sq_map_ != nullptr) munmap(sq_map_, sq_map_bytes_);
    if (fd_ >= 0) close(fd_);
  }

  int open(std::string* reason) {
    struct io_uring_params params;
    memset(&params, 0, sizeof(params));
    const long fd = syscall(__NR_io_uring_setup, kRingEntries, &params);
    if (fd < 0) {
      const int err = errno;
      *reason = std::string("io_uring_setup: ") + strerror(err);
      return -err;
    }
    fd_ = static_cast<int>(fd);
    sq_map_bytes_ = params.sq_off.array + params.sq_entries * sizeof(uint32_t);
    cq_map_bytes_ = params.cq_off.cqes + params.cq_entries * sizeof(struct io_uring_cqe);
    const bool single = (params.features & IORING_FEAT_SINGLE_MMAP) != 0;
    if (single) sq_map_bytes_ = cq_map_bytes_ = std::max(sq_map_bytes_, cq_map_bytes_);
    void* sq = mmap(nullptr, sq_map_bytes_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd_, IORING_OFF_SQ_RING);
    if (sq == MAP_FAILED) return fail("mmap of the submission ring", reason);
    sq_map_ = sq;
    if (single) {
      cq_map_ = sq_map_;
    } else {
      void* cq = mmap(nullptr, cq_map_bytes_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd_, IORING_OFF_CQ_RING);
      if (cq == MAP_FAILED) return fail("mmap of the completion ring", reason);
      cq_map_ = cq;
    }
    sqes_bytes_ = params.sq_entries * sizeof(struct io_uring_sqe);
    void* sqes = mmap(nullptr, sqes_bytes_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd_, IORING_OFF_SQES);
    if (sqes == MAP_FAILED) return fail("mmap of the submission entries", reason);
    sqes_ = static_cast<struct io_uring_sqe*>(sqes);
    auto* sqb = static_cast<char*>(sq_map_);
    auto* cqb = static_cast<char*>(cq_map_);
    sq_tail_ = reinterpret_cast<uint32_t*>(sqb + params.sq_off.tail);
    sq_mask_ = *reinterpret_cast<uint32_t*>(sqb + params.sq_off.ring_mask);
    sq_array_ = reinterpret_cast<uint32_t*>(sqb + params.sq_off.array);
    cq_head_ = reinterpret_cast<uint32_t*>(cqb + params.cq_off.head);
    cq_tail_ = reinterpret_cast<uint32_t*>(cqb + params.cq_off.tail);
    cq_mask_ = *reinterpret_cast<uint32_t*>(cqb + params.cq_off.ring_mask);
    cqes_ = reinterpret_cast<struct io_uring_cqe*>(cqb + params.cq_off.cqes);
    return 0;
  }

  int64_t write_fdatasync(int fd, const void* data, size_t size, uint64_t offset) {
    uint32_t tail = *sq_tail_;  // only we write the tail
    struct io_uring_sqe* write = push(&tail);
    write->opcode = IORING_OP_WRITE;
    write->flags = IOSQE_IO_LINK;  // the sync starts only after the write completed in full
    write->fd = fd;
    write->addr = reinterpret_cast<uintptr_t>(data);
    write->len = static_cast<uint32_t>(size);
    write->off = offset;
    write->user_data = 1;
    struct io_uring_sqe* sync = push(&tail);
    sync->opcode = IORING_OP_FSYNC;
    sync->fd = fd;
    sync->fsync_flags = IORING_FSYNC_DATASYNC;
    sync->user_data = 2;
    __atomic_store_n(sq_tail_, tail, __ATOMIC_RELEASE);
    unsigned submitted = 0;
    unsigned completed = 0;
    int64_t results[3] = {-EIO, -EIO, -EIO};  // by user_data: [1] the write, [2] the sync
    while (completed < 2) {
      const long r = syscall(__NR_io_uring_enter, fd_, 2 - submitted, 2 - completed, IORING_ENTER_GETEVENTS, nullptr, 0);
      if (r < 0) {
        if (errno == EINTR) continue;
        const int err = errno;
        // Take back the entries the kernel did not consume; wait for those it did (they
        // point at the caller's buffer), so the ring is empty for the next call.
        __atomic_store_n(sq_tail_, *sq_tail_ - (2 - submitted), __ATOMIC_RELEASE);
        while (completed < submitted) {
          if (syscall(__NR_io_uring_enter, fd_, 0, submitted - completed, IORING_ENTER_GETEVENTS, nullptr, 0) < 0 && errno != EINTR) break;
          completed += reap(results);
        }
        return -err;
      }
      submitted += static_cast<unsigned>(r);
      completed += reap(results);
    }
    const int64_t written = results[1];
    const int64_t sync_result = results[2];
    if (written < 0) return written;
    if (static_cast<size_t>(written) != size) return -EIO;  // short write: the linked sync was cancelled
    if (sync_result < 0) return sync_result;
    return written;
  }

 private:
  int fail(const char* what, std::string* reason) {
    const int err = errno;
    *reason = std::string(what) + ": " + strerror(err);
    return -err;
  }

  struct io_uring_sqe* push(uint32_t* tail) {
    const uint32_t slot = *tail & sq_mask_;
    struct io_uring_sqe* sqe = &sqes_[slot];
    memset(sqe, 0, sizeof(*sqe));
    sq_array_[slot] = slot;
    ++*tail;
    return sqe;
  }

  // Takes every completion off the ring; stores each result by its user_data (1 or 2).
  unsigned reap(int64_t* results) {
    unsigned n = 0;
    uint32_t head = *cq_head_;
    while (head != __atomic_load_n(cq_tail_, __ATOMIC_ACQUIRE)) {
      const struct io_uring_cqe& cqe = cqes_[head & cq_mask_];
      if (cqe.user_data == 1 || cqe.user_data == 2) results[cqe.user_data] = cqe.res;
      ++head;
      ++n;
    }
    __atomic_store_n(cq_head_, head, __ATOMIC_RELEASE);
    return n;
  }

  int fd_ = -1;
  void* sq_map_ = nullptr;
  void* cq_map_ = nullptr;
  size_t sq_map_bytes_ = 0;
  size_t cq_map_bytes_ = 0;
  struct io_uring_sqe* sqes_ = nullptr;
  size_t sqes_bytes_ = 0;
  uint32_t* sq_tail_ = nullptr;
  uint32_t sq_mask_ = 0;
  uint32_t* sq_array_ = nullptr;
  uint32_t* cq_head_ = nullptr;
  uint32_t* cq_tail_ = nullptr;
  uint32_t cq_mask_ = 0;
  struct io_uring_cqe* cqes_ = nullptr;
};

std::mutex rings_mutex;
std::vector<std::unique_ptr<Ring>> rings;  // index = handle; closed rings leave a null slot

Ring* find(int handle) {
  std::lock_guard<std::mutex> lock(rings_mutex);
  if (handle < 0 || static_cast<size_t>(handle) >= rings.size()) return nullptr;
  return rings[static_cast<size_t>(handle)].get();
}

}  // namespace

int uring_open(std::string* reason) {
  auto ring = std::make_unique<Ring>();
  const int r = ring->open(reason);
  if (r < 0) return r;
  std::lock_guard<std::mutex> lock(rings_mutex);
  for (size_t i = 0; i < rings.size(); ++i) {
    if (rings[i] == nullptr) {
      rings[i] = std::move(ring);
      return static_cast<int>(i);
    }
  }
  rings.push_back(std::move(ring));
  return static_cast<int>(rings.size() - 1);
}

int64_t uring_write_fdatasync(int handle, int fd, const void* data, size_t size, uint64_t offset) {
  Ring* ring = find(handle);
  if (ring == nullptr) return -EBADF;
  return ring->write_fdatasync(fd, data, size, offset);
}

void uring_close(int handle) {
  std::unique_ptr<Ring> ring;
  {
    std::lock_guard<std::mutex> lock(rings_mutex);
    if (handle < 0 || static_cast<size_t>(handle) >= rings.size()) return;
    ring = std::move(rings[static_cast<size_t>(handle)]);
  }
}

#else  // no io_uring at build time

int uring_open(std::string* reason) {
  *reason = "built without <linux/io_uring.h>";
  return -ENOSYS;
}

int64_t uring_write_fdatasync(int, int, const void*, size_t, uint64_t) { return -ENOSYS; }

void uring_close(int) {}

#endif

}  // namespace bench
}  // namespace tidemark
