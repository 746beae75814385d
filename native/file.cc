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

class PosixFile final : public File {
 public:
  PosixFile(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  ~PosixFile() override {
    if (fd_ >= 0) ::close(fd_);
  }

  Status pwrite(const void* data, size_t size, uint64_t offset) override {
    auto* p = static_cast<const uint8_t*>(data);
    while (size > 0) {
      ssize_t n = ::pwrite(fd_, p, size, static_cast<off_t>(offset));
      if (n < 0) {
        if (errno == EINTR) continue;
        return Status::Errno("pwrite", errno, path_, static_cast<int64_t>(offset));
      }
      if (n == 0) return Status::Errno("pwrite", EIO, path_, static_cast<int64_t>(offset));
      p += n;
      size -= static_cast<size_t>(n);
      offset += static_cast<uint64_t>(n);
    }
    return Status::Ok();
  }

  // One pwritev(2) (one O_DSYNC write), looping only over short writes.
  Status pwritev(const struct iovec* iov, int count, uint64_t offset) override {
    std::vector<struct iovec> rest(iov, iov + count);
    size_t first = 0;
    while (first < rest.size()) {
      if (rest[first].iov_len == 0) {
        first++;
        continue;
      }
      int n_iov = static_cast<int>(std::min<size_t>(rest.size() - first, IOV_MAX));
      ssize_t n = ::pwritev(fd_, rest.data() + first, n_iov, static_cast<off_t>(offset));
      if (n < 0) {
        if (errno == EINTR) continue;
        return Status::Errno("pwritev", errno, path_, static_cast<int64_t>(offset));
      }
      if (n == 0) return Status::Errno("pwritev", EIO, path_, static_cast<int64_t>(offset));
      offset += static_cast<uint64_t>(n);
      size_t done = static_cast<size_t>(n);
      while (done > 0) {
        size_t take = std::min(done, rest[first].iov_len);
        rest[first].iov_base = static_cast<uint8_t*>(rest[first].iov_base) + take;
        rest[first].iov_len -= take;
        done -= take;
        if (rest[first].iov_len == 0) first++;
      }
    }
    return Status::Ok();
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

 private:
  int fd_;
  std::string path_;
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
  std::unique_ptr<File> file = std::make_unique<PosixFile>(fd, path);
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

void AlignedBuffer::reserve(size_t capacity) {
  if (capacity <= capacity_) return;
  size_t next = capacity_ == 0 ? 64 * 1024 : capacity_;
  while (next < capacity) next *= 2;
  void* p = nullptr;
  int rc = posix_memalign(&p, 4096, next);
  assert(rc == 0 && "out of memory");
  if (rc != 0) abort();
  if (size_ > 0) memcpy(p, data_, size_);
  free(data_);
  data_ = static_cast<uint8_t*>(p);
  capacity_ = next;
}

uint8_t* AlignedBuffer::append(size_t extra) {
  reserve(size_ + extra);
  uint8_t* p = data_ + size_;
  size_ += extra;
  return p;
}

}  // namespace tidemark
