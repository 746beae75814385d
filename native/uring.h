// io_uring by raw syscalls (io_uring_setup / io_uring_enter / io_uring_register,
// rings mapped here): no liburing, so the prebuilt addon has no shared-library
// dependency. Used by the Log's io_uring append path (log_uring.cc); no N-API.
//
// One Ring is used from one thread at a time (the JS thread; the open probe runs
// on a pool thread before JS sees the log). Completions are signalled on an
// eventfd registered with IORING_REGISTER_EVENTFD, which addon.cc watches with a
// uv_poll handle.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

struct io_uring_sqe;  // <linux/io_uring.h>, included by uring.cc only
struct io_uring_cqe;

namespace tidemark {

struct UringCompletion {
  uint64_t user_data = 0;
  int32_t res = 0;
};

class Ring {
 public:
  Ring() = default;
  ~Ring();
  Ring(const Ring&) = delete;
  Ring& operator=(const Ring&) = delete;

  // Sets up a ring of `entries` submission slots with a non-blocking eventfd
  // registered for its completions, and proves that submissions work (a NOP
  // submitted and reaped, and the write and fsync opcodes present per
  // IORING_REGISTER_PROBE). On failure returns false with `*reason` in words
  // (e.g. "io_uring_setup: Operation not permitted" under
  // kernel.io_uring_disabled or a seccomp filter) and `*err` the errno.
  bool open(unsigned entries, std::string* reason, int* err);
  bool is_open() const { return fd_ >= 0; }
  int event_fd() const { return event_fd_; }

  // Queue a write of [data, data + size) at `offset` of `fd`; `link` chains the
  // next queued entry to it (it starts only once this one completed in full).
  void queue_write(int fd, const void* data, size_t size, uint64_t offset, bool link, uint64_t user_data);
  // Queue an fdatasync of `fd`.
  void queue_fdatasync(int fd, uint64_t user_data);
  // Submits everything queued. Returns 0 or -errno (nothing submitted then:
  // the queued entries are taken back).
  int submit();
  // Takes up to `max` completions off the ring without blocking; returns the count.
  size_t reap(UringCompletion* out, size_t max);
  // Blocks until at least one completion is ready (env teardown only).
  int wait_one();
  // Clears the eventfd's counter (after a poll said it is readable).
  void clear_event();

 private:
  ::io_uring_sqe* next_sqe();

  int fd_ = -1;
  int event_fd_ = -1;
  void* sq_map_ = nullptr;
  void* cq_map_ = nullptr;
  size_t sq_map_bytes_ = 0;
  size_t cq_map_bytes_ = 0;
  ::io_uring_sqe* sqes_ = nullptr;
  size_t sqes_bytes_ = 0;
  uint32_t* sq_head_ = nullptr;
  uint32_t* sq_tail_ = nullptr;
  uint32_t sq_mask_ = 0;
  uint32_t sq_entries_ = 0;
  uint32_t* sq_array_ = nullptr;
  uint32_t* cq_head_ = nullptr;
  uint32_t* cq_tail_ = nullptr;
  uint32_t cq_mask_ = 0;
  ::io_uring_cqe* cqes_ = nullptr;
  uint32_t local_tail_ = 0;  // queued, not yet published to the kernel
  uint32_t to_submit_ = 0;
};

}  // namespace tidemark
