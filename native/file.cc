#include "file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <limits.h>
#include <sys/uio.h>

#include <algorithm>
#include <cassert>
#include <utility>
#include <vector>

#include "limits.h"

namespace tidemark {

Status Status::Errno(const char* syscall, int err, std::string path, int64_t offset) {
  Status s;
  s.code = (err == ENOSPC || err == EDQUOT) ? Code::kNoSpace : Code::kIo;
  s.err = err;
  s.syscall = syscall;
  s.path = std::move(path);
  s.offset = offset;
  s.message = std::string(syscall) + " failed: " + strerror(err);
  return s;
}

namespace {

// One write system call: pwrite, or pwritev over `count` buffers. Test builds may
// make it short (faults::short_write): only a prefix is written, through a
// buffered descriptor so that any length works on an O_DIRECT file too.
ssize_t raw_pwritev(int fd, const std::string& path, const struct iovec* iov, int count, uint64_t offset) {
#ifdef TIDEMARK_FAULTS
  size_t total = 0;
  for (int i = 0; i < count; i++) total += iov[i].iov_len;
  size_t cap = faults::short_write_cap(path, total);
  if (cap < total) {
    std::vector<uint8_t> prefix;
    for (int i = 0; i < count && prefix.size() < cap; i++) {
      auto* p = static_cast<const uint8_t*>(iov[i].iov_base);
      prefix.insert(prefix.end(), p, p + std::min(iov[i].iov_len, cap - prefix.size()));
    }
    int bfd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
    if (bfd < 0) return -1;
    ssize_t n = ::pwrite(bfd, prefix.data(), prefix.size(), static_cast<off_t>(offset));
    int err = errno;
    ::close(bfd);
    errno = err;
    return n;
  }
#else
  (void)path;
#endif
  return count == 1 ? ::pwrite(fd, iov[0].iov_base, iov[0].iov_len, static_cast<off_t>(offset))
                    : ::pwritev(fd, iov, count, static_cast<off_t>(offset));
}

// On an O_DIRECT file a write must start at an aligned offset from an aligned
// buffer. A short write may stop anywhere, so the next write resumes at the
// last boundary of this many bytes before the stop (every direct write of the
// log starts on one, from a buffer aligned to it), rewriting the bytes of this
// same, unacknowledged write between that boundary and the stop.
constexpr size_t kDirectResumeBytes = kBlockBytesMax;
// Short writes in a row that make no progress past such a boundary before it gives up (EIO).
constexpr int kShortWriteStallsMax = 16;

class PosixFile final : public File {
 public:
  PosixFile(int fd, std::string path, bool direct) : fd_(fd), path_(std::move(path)), direct_(direct) {}
  ~PosixFile() override {
    if (fd_ >= 0) ::close(fd_);
  }

  Status pwrite(const void* data, size_t size, uint64_t offset) override {
    struct iovec one = {const_cast<void*>(data), size};
    return write_all(&one, 1, offset, "pwrite");
  }

  // One pwritev(2) (one O_DSYNC write), looping only over short writes.
  Status pwritev(const struct iovec* iov, int count, uint64_t offset) override {
    return write_all(iov, count, offset, "pwritev");
  }
  Status pread(void* data, size_t size, uint64_t offset, size_t* got) override {
    auto* p = static_cast<uint8_t*>(data);
    size_t done = 0;
    while (done < size) {
      ssize_t n = ::pread(fd_, p + done, size - done, static_cast<off_t>(offset + done));
      if (n < 0) {
        if (errno == EINTR) continue;
        return Status::Errno("pread", errno, path_, static_cast<int64_t>(offset + done));
      }
      if (n == 0) break;
      done += static_cast<size_t>(n);
    }
    *got = done;
    return Status::Ok();
  }

  Status datasync() override {
    if (::fdatasync(fd_) != 0) return Status::Errno("fdatasync", errno, path_);
    return Status::Ok();
  }

  Status truncate(uint64_t size) override {
    if (::ftruncate(fd_, static_cast<off_t>(size)) != 0) return Status::Errno("ftruncate", errno, path_);
    return Status::Ok();
  }

  Status allocate(uint64_t offset, uint64_t size) override {
    int rc = ::posix_fallocate(fd_, static_cast<off_t>(offset), static_cast<off_t>(size));
    if (rc != 0) return Status::Errno("fallocate", rc == EINVAL ? EOPNOTSUPP : rc, path_);
    return Status::Ok();
  }

  Status writeback(uint64_t offset, uint64_t size) override {
    if (::sync_file_range(fd_, static_cast<off_t>(offset), static_cast<off_t>(size),
                          SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER) != 0) {
      return Status::Errno("sync_file_range", errno, path_, static_cast<int64_t>(offset));
    }
    return Status::Ok();
  }

  Status size(uint64_t* out) override {
    struct stat st;
    if (::fstat(fd_, &st) != 0) return Status::Errno("fstat", errno, path_);
    *out = static_cast<uint64_t>(st.st_size);
    return Status::Ok();
  }

  const std::string& path() const override { return path_; }
  int fd() const override { return fd_; }

 private:
  // Writes all of `iov`, looping over short writes (see kDirectResumeBytes for O_DIRECT).
  Status write_all(const struct iovec* iov, int count, uint64_t offset, const char* syscall) {
    size_t total = 0;
    for (int i = 0; i < count; i++) total += iov[i].iov_len;
    size_t done = 0;
    int stalls = 0;
    std::vector<struct iovec> rest;
    while (done < total) {
      rest.clear();
      size_t skip = done;
      for (int i = 0; i < count; i++) {
        size_t len = iov[i].iov_len;
        if (skip >= len) {
          skip -= len;
          continue;
        }
        rest.push_back({static_cast<uint8_t*>(iov[i].iov_base) + skip, len - skip});
        skip = 0;
      }
      int n_iov = static_cast<int>(std::min<size_t>(rest.size(), IOV_MAX));
      ssize_t n = raw_pwritev(fd_, path_, rest.data(), n_iov, offset + done);
      if (n < 0) {
        if (errno == EINTR) continue;
        return Status::Errno(syscall, errno, path_, static_cast<int64_t>(offset + done));
      }
      if (n == 0) return Status::Errno(syscall, EIO, path_, static_cast<int64_t>(offset + done));
      size_t reached = done + static_cast<size_t>(n);
      size_t next = direct_ && reached < total ? reached / kDirectResumeBytes * kDirectResumeBytes : reached;
      if (next <= done) {
        if (++stalls > kShortWriteStallsMax) {
          Status st = Status::Errno(syscall, EIO, path_, static_cast<int64_t>(offset + done));
          st.message += " (repeated short O_DIRECT writes without progress)";
          return st;
        }
        continue;
      }
      stalls = 0;
      done = next;
    }
    return Status::Ok();
  }

  int fd_;
  std::string path_;
  bool direct_;
};

}  // namespace

Status open_file(const std::string& path, int flags, std::unique_ptr<File>* out) {
  int oflags = O_CLOEXEC;
  if ((flags & kOpenWrite) != 0) {
    oflags |= O_RDWR;
  } else {
    oflags |= O_RDONLY;
  }
  if ((flags & kOpenCreate) != 0) oflags |= O_CREAT | O_EXCL;
  if ((flags & kOpenDsync) != 0) oflags |= O_DSYNC;
  if ((flags & kOpenDirect) != 0) oflags |= O_DIRECT;
  int fd;
  do {
    fd = ::open(path.c_str(), oflags, 0644);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) return Status::Errno("open", errno, path);
  std::unique_ptr<File> file = std::make_unique<PosixFile>(fd, path, (flags & kOpenDirect) != 0);
#ifdef TIDEMARK_FAULTS
  file = faults::wrap(std::move(file));
#endif
  *out = std::move(file);
  return Status::Ok();
}

Status sync_dir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Status::Errno("open", errno, dir);
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  if (rc != 0) return Status::Errno("fsync", err, dir);
  return Status::Ok();
}

AlignedBuffer::~AlignedBuffer() { free(data_); }

AlignedBuffer::AlignedBuffer(AlignedBuffer&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)),
      capacity_(std::exchange(other.capacity_, 0)) {}

AlignedBuffer& AlignedBuffer::operator=(AlignedBuffer&& other) noexcept {
  if (this != &other) {
    free(data_);
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
    capacity_ = std::exchange(other.capacity_, 0);
  }
  return *this;
}

bool AlignedBuffer::reserve(size_t capacity) {
  if (capacity <= capacity_) return true;
  size_t next = capacity_ == 0 ? 64 * 1024 : capacity_;
  while (next < capacity && next < kGrowDoublingMaxBytes) next *= 2;
  if (next < capacity) next = (capacity + kGrowDoublingMaxBytes - 1) / kGrowDoublingMaxBytes * kGrowDoublingMaxBytes;
  if (next < capacity) return false;  // overflow
  void* p = nullptr;
  int rc;
#ifdef TIDEMARK_FAULTS
  if (faults::alloc_fails(next)) {
    rc = ENOMEM;
  } else
#endif
  rc = posix_memalign(&p, 4096, next);
  if (rc != 0) return false;
  if (size_ > 0) memcpy(p, data_, size_);
  free(data_);
  data_ = static_cast<uint8_t*>(p);
  capacity_ = next;
  return true;
}

uint8_t* AlignedBuffer::append(size_t extra) {
  if (extra > SIZE_MAX - size_ || !reserve(size_ + extra)) return nullptr;
  uint8_t* p = data_ + size_;
  size_ += extra;
  return p;
}

}  // namespace tidemark
