// Status: the only error type below addon.cc. Operating errors travel as values;
// programmer errors are assertions.
#pragma once

#include <cerrno>
#include <cstdint>
#include <string>
#include <utility>

namespace tidemark {

enum class Code : int {
  kOk = 0,
  kCorruption = 1,
  kIo = 2,
  kNoSpace = 3,
  kLocked = 4,
  kClosed = 5,
  kPoisoned = 6,
  kDirectUnsupported = 7,
  kInvalidArgument = 8,
  kOutOfRange = 9,
  kBusy = 10,
  kUringUnsupported = 11,  // io: 'uring' asked for where the kernel refuses io_uring
};

struct Status {
  Code code = Code::kOk;
  int err = 0;               // errno, positive, where one applies
  std::string syscall;       // the failing call, where one applies
  std::string path;          // the file the error is about
  int64_t offset = -1;       // the byte offset in `path`, where one applies
  std::string message;       // human text (without the code)

  bool ok() const { return code == Code::kOk; }

  static Status Ok() { return Status{}; }
  static Status Make(Code code, std::string message, std::string path = {}, int64_t offset = -1) {
    Status s;
    s.code = code;
    s.message = std::move(message);
    s.path = std::move(path);
    s.offset = offset;
    return s;
  }
  // An errno from a system call: ENOSPC/EDQUOT become kNoSpace, everything else kIo.
  static Status Errno(const char* syscall, int err, std::string path, int64_t offset = -1);
  // A buffer could not be allocated: kBusy with errno ENOMEM (the caller rejects the
  // operation before anything of it is written; retry with less in flight).
  static Status OutOfMemory(const std::string& what, size_t bytes) {
    Status s = Make(Code::kBusy, "out of memory: " + what + " (" + std::to_string(bytes) +
                                     " bytes) could not be allocated; nothing of it was written");
    s.err = ENOMEM;
    return s;
  }
  static Status Corruption(std::string message, std::string path, int64_t offset) {
    return Make(Code::kCorruption, std::move(message), std::move(path), offset);
  }
};

}  // namespace tidemark
