// Primitives for `tidemark bench fsync` (lib/cli/fsync/): what the JS side cannot do with
// node:fs alone. No N-API here (native/addon.cc exposes these); the benchmark times every
// call from JavaScript, so these only do the I/O, never measure it.
//
// - align_offset: how far into a buffer the first byte aligned for O_DIRECT lies.
// - io_uring through raw syscalls (no liburing): a ring of two entries that submits one
//   write linked (IOSQE_IO_LINK) to one fdatasync (IORING_FSYNC_DATASYNC) and waits for both.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace tidemark {
namespace bench {

// Bytes from `data` to the next address that is a multiple of `align` (a power of two).
size_t align_offset(const void* data, size_t align);

// Opens an io_uring. Returns a handle >= 0, or -errno (ENOSYS: not built with
// <linux/io_uring.h> or no such syscall; EPERM: io_uring_disabled or a seccomp filter).
// `*reason` says what failed in words when the result is negative.
int uring_open(std::string* reason);

// On ring `handle`: write `size` bytes of `data` at `offset` of `fd`, linked to an
// fdatasync of `fd`; waits for both completions. Returns the bytes written, or -errno of the
// first failing step (a short write cancels the sync: -ECANCELED is never returned for it,
// the short count is reported as -EIO).
int64_t uring_write_fdatasync(int handle, int fd, const void* data, size_t size, uint64_t offset);

// Closes ring `handle` (unmaps and closes it). Unknown handles are ignored.
void uring_close(int handle);

}  // namespace bench
}  // namespace tidemark
