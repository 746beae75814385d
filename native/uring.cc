// See uring.h.
#include "uring.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <vector>

#if defined(__linux__) && __has_include(<linux/io_uring.h>) && __has_include(<sys/eventfd.h>) && \
    defined(__NR_io_uring_setup) && defined(__NR_io_uring_enter) && defined(__NR_io_uring_register)
#include <linux/io_uring.h>
#include <sys/eventfd.h>
#define TIDEMARK_HAVE_URING 1
#else
#define TIDEMARK_HAVE_URING 0
#endif

namespace tidemark {

#if TIDEMARK_HAVE_URING

namespace {

bool fail(const std::string& what, int e, std::string* reason, int* err) {
  *reason = what + ": " + strerror(e);
  *err = e;
  return false;
}

}  // namespace

Ring::~Ring() {
  if (sqes_ != nullptr) ::munmap(sqes_, sqes_bytes_);
  if (cq_map_ != nullptr && cq_map_ != sq_map_) ::munmap(cq_map_, cq_map_bytes_);
  if (sq_map_ != nullptr) ::munmap(sq_map_, sq_map_bytes_);
  if (fd_ >= 0) ::close(fd_);
  if (event_fd_ >= 0) ::close(event_fd_);
}

bool Ring::open(unsigned entries, std::string* reason, int* err) {
  struct io_uring_params params;
  memset(&params, 0, sizeof(params));
  long fd = ::syscall(__NR_io_uring_setup, entries, &params);
  if (fd < 0) return fail("io_uring_setup", errno, reason, err);
  fd_ = static_cast<int>(fd);
  sq_map_bytes_ = params.sq_off.array + params.sq_entries * sizeof(uint32_t);
  cq_map_bytes_ = params.cq_off.cqes + params.cq_entries * sizeof(struct io_uring_cqe);
  const bool single = (params.features & IORING_FEAT_SINGLE_MMAP) != 0;
  if (single) sq_map_bytes_ = cq_map_bytes_ = std::max(sq_map_bytes_, cq_map_bytes_);
  void* sq = ::mmap(nullptr, sq_map_bytes_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd_, IORING_OFF_SQ_RING);
  if (sq == MAP_FAILED) return fail("mmap of the submission ring", errno, reason, err);
  sq_map_ = sq;
  if (single) {
    cq_map_ = sq_map_;
  } else {
    void* cq = ::mmap(nullptr, cq_map_bytes_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd_, IORING_OFF_CQ_RING);
    if (cq == MAP_FAILED) return fail("mmap of the completion ring", errno, reason, err);
    cq_map_ = cq;
  }
  sqes_bytes_ = params.sq_entries * sizeof(struct io_uring_sqe);
  void* sqes = ::mmap(nullptr, sqes_bytes_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd_, IORING_OFF_SQES);
  if (sqes == MAP_FAILED) return fail("mmap of the submission entries", errno, reason, err);
  sqes_ = static_cast<struct io_uring_sqe*>(sqes);
  auto* sqb = static_cast<char*>(sq_map_);
  auto* cqb = static_cast<char*>(cq_map_);
  sq_head_ = reinterpret_cast<uint32_t*>(sqb + params.sq_off.head);
  sq_tail_ = reinterpret_cast<uint32_t*>(sqb + params.sq_off.tail);
  sq_mask_ = *reinterpret_cast<uint32_t*>(sqb + params.sq_off.ring_mask);
  sq_entries_ = params.sq_entries;
  sq_array_ = reinterpret_cast<uint32_t*>(sqb + params.sq_off.array);
  cq_head_ = reinterpret_cast<uint32_t*>(cqb + params.cq_off.head);
  cq_tail_ = reinterpret_cast<uint32_t*>(cqb + params.cq_off.tail);
  cq_mask_ = *reinterpret_cast<uint32_t*>(cqb + params.cq_off.ring_mask);
  cqes_ = reinterpret_cast<struct io_uring_cqe*>(cqb + params.cq_off.cqes);
  local_tail_ = *sq_tail_;

  // The opcodes the append path uses (IORING_REGISTER_PROBE: Linux >= 5.6).
  {
    const size_t bytes = sizeof(struct io_uring_probe) + 256 * sizeof(struct io_uring_probe_op);
    std::vector<uint8_t> buf(bytes, 0);
    auto* probe = reinterpret_cast<struct io_uring_probe*>(buf.data());
    if (::syscall(__NR_io_uring_register, fd_, IORING_REGISTER_PROBE, probe, 256) < 0) {
      return fail("io_uring_register(IORING_REGISTER_PROBE)", errno, reason, err);
    }
    for (int op : {IORING_OP_WRITE, IORING_OP_FSYNC, IORING_OP_NOP}) {
      if (op > probe->last_op || (probe->ops[op].flags & IO_URING_OP_SUPPORTED) == 0) {
        return fail("io_uring lacks opcode " + std::to_string(op), EOPNOTSUPP, reason, err);
      }
    }
  }
  int efd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (efd < 0) return fail("eventfd", errno, reason, err);
  event_fd_ = efd;
  if (::syscall(__NR_io_uring_register, fd_, IORING_REGISTER_EVENTFD, &event_fd_, 1) < 0) {
    return fail("io_uring_register(IORING_REGISTER_EVENTFD)", errno, reason, err);
  }
  // A submission that really runs (a seccomp filter may allow setup and refuse enter).
  struct io_uring_sqe* nop = next_sqe();
  nop->opcode = IORING_OP_NOP;
  nop->user_data = 0;
  int r = submit();
  if (r < 0) return fail("io_uring_enter", -r, reason, err);
  r = wait_one();
  if (r < 0) return fail("io_uring_enter (wait)", -r, reason, err);
  UringCompletion c;
  if (reap(&c, 1) != 1 || c.res < 0) return fail("io_uring NOP", c.res < 0 ? -c.res : EIO, reason, err);
  clear_event();
  return true;
}

struct io_uring_sqe* Ring::next_sqe() {
  const uint32_t slot = local_tail_ & sq_mask_;
  struct io_uring_sqe* sqe = &sqes_[slot];
  memset(sqe, 0, sizeof(*sqe));
  sq_array_[slot] = slot;
  local_tail_++;
  to_submit_++;
  return sqe;
}

void Ring::queue_write(int fd, const void* data, size_t size, uint64_t offset, bool link, uint64_t user_data) {
  struct io_uring_sqe* sqe = next_sqe();
  sqe->opcode = IORING_OP_WRITE;
  sqe->flags = link ? IOSQE_IO_LINK : 0;
  sqe->fd = fd;
  sqe->addr = reinterpret_cast<uintptr_t>(data);
  sqe->len = static_cast<uint32_t>(size);
  sqe->off = offset;
  sqe->user_data = user_data;
}

void Ring::queue_fdatasync(int fd, uint64_t user_data) {
  struct io_uring_sqe* sqe = next_sqe();
  sqe->opcode = IORING_OP_FSYNC;
  sqe->fd = fd;
  sqe->fsync_flags = IORING_FSYNC_DATASYNC;
  sqe->user_data = user_data;
}

int Ring::submit() {
  __atomic_store_n(sq_tail_, local_tail_, __ATOMIC_RELEASE);
  while (to_submit_ > 0) {
    long r = ::syscall(__NR_io_uring_enter, fd_, to_submit_, 0, 0, nullptr, 0);
    if (r < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      // Take back what the kernel did not consume.
      local_tail_ -= to_submit_;
      __atomic_store_n(sq_tail_, local_tail_, __ATOMIC_RELEASE);
      to_submit_ = 0;
      return -e;
    }
    to_submit_ -= std::min<uint32_t>(to_submit_, static_cast<uint32_t>(r));
  }
  return 0;
}

size_t Ring::reap(UringCompletion* out, size_t max) {
  size_t n = 0;
  uint32_t head = *cq_head_;
  while (n < max && head != __atomic_load_n(cq_tail_, __ATOMIC_ACQUIRE)) {
    const struct io_uring_cqe& cqe = cqes_[head & cq_mask_];
    out[n].user_data = cqe.user_data;
    out[n].res = cqe.res;
    n++;
    head++;
  }
  __atomic_store_n(cq_head_, head, __ATOMIC_RELEASE);
  return n;
}

int Ring::wait_one() {
  while (true) {
    if (*cq_head_ != __atomic_load_n(cq_tail_, __ATOMIC_ACQUIRE)) return 0;
    long r = ::syscall(__NR_io_uring_enter, fd_, 0, 1, IORING_ENTER_GETEVENTS, nullptr, 0);
    if (r < 0 && errno != EINTR) return -errno;
  }
}

void Ring::clear_event() {
  uint64_t v;
  ssize_t r = ::read(event_fd_, &v, sizeof v);
  (void)r;
}

#else  // built without io_uring

Ring::~Ring() {}
bool Ring::open(unsigned, std::string* reason, int* err) {
  *reason = "built without <linux/io_uring.h>";
  *err = ENOSYS;
  return false;
}
void Ring::queue_write(int, const void*, size_t, uint64_t, bool, uint64_t) {}
void Ring::queue_fdatasync(int, uint64_t) {}
int Ring::submit() { return -ENOSYS; }
size_t Ring::reap(UringCompletion*, size_t) { return 0; }
int Ring::wait_one() { return -ENOSYS; }
void Ring::clear_event() {}

#endif

}  // namespace tidemark
