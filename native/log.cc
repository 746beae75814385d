#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <cstring>

#include "crc32c.h"
#include "limits.h"
#include "log_uring.h"
#include "record.h"
#include "recovery.h"

namespace tidemark {

namespace {

constexpr long kTmpfsMagic = 0x01021994;

// O_DIRECT probe and the alignment it needs (statx STATX_DIOALIGN where the kernel has it).
// tmpfs is refused even where the kernel accepts O_DIRECT on it (Linux >= 6.6):
// it has no stable storage, so 'direct' there would be a lie.
Status probe_direct(const std::string& dir, const std::string& path, uint32_t* block) {
  struct statfs sf;
  if (::statfs(dir.c_str(), &sf) == 0 && static_cast<long>(sf.f_type) == kTmpfsMagic) {
    return Status::Make(Code::kDirectUnsupported,
                        "the directory is on tmpfs, which has no stable storage for O_DIRECT; use sync: 'dsync' or "
                        "'fdatasync' there",
                        dir);
  }
  int fd = ::open(path.c_str(), O_RDONLY | O_DIRECT | O_CLOEXEC);
  if (fd < 0) {
    if (errno == EINVAL || errno == EOPNOTSUPP) {
      return Status::Make(Code::kDirectUnsupported,
                          "the filesystem refuses O_DIRECT (tmpfs and some FUSE filesystems do); use sync: 'dsync' or "
                          "'fdatasync' there",
                          path);
    }
    return Status::Errno("open", errno, path);
  }
  *block = kBlockBytesDefault;
#ifdef STATX_DIOALIGN
  struct statx sx;
  if (::statx(fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &sx) == 0 && (sx.stx_mask & STATX_DIOALIGN) != 0) {
    if (sx.stx_dio_offset_align == 0) {
      ::close(fd);
      return Status::Make(Code::kDirectUnsupported, "the filesystem does not support direct I/O on this file", path);
    }
    uint32_t align = std::max<uint32_t>(sx.stx_dio_offset_align, kBlockBytesMin);
    if (align > kBlockBytesMax || (align & (align - 1)) != 0) {
      ::close(fd);
      return Status::Make(Code::kDirectUnsupported,
                          "direct I/O needs " + std::to_string(sx.stx_dio_offset_align) + "-byte alignment (at most " +
                              std::to_string(kBlockBytesMax) + " supported)",
                          path);
    }
    // Batches stay padded to 4 KiB (a multiple of `align`) even where direct I/O
    // accepts 512: a log's block size then never changes with the sync mode, so a
    // reopen in another mode never pads a committed end by rewriting a block that
    // holds acknowledged bytes (promise 2), and 512e disks (4 KiB physical sectors)
    // never see a batch share a physical sector with an earlier one.
  }
#endif
  ::close(fd);
  // A write through O_DIRECT: some filesystems accept the open and refuse the I/O.
  std::string probe = dir + "/direct-probe.tmp";
  fd = ::open(probe.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_DIRECT | O_DSYNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    int err = errno;
    if (err == EINVAL || err == EOPNOTSUPP) {
      return Status::Make(Code::kDirectUnsupported, "the filesystem refuses O_DIRECT", dir);
    }
    return Status::Errno("open", err, probe);
  }
  AlignedBuffer buf;
  if (!buf.resize(*block)) {
    ::close(fd);
    ::unlink(probe.c_str());
    return Status::OutOfMemory("the O_DIRECT probe buffer", *block);
  }
  memset(buf.data(), 0, *block);
  ssize_t n = ::pwrite(fd, buf.data(), *block, 0);
  int err = errno;
  ::close(fd);
  ::unlink(probe.c_str());
  if (n != static_cast<ssize_t>(*block)) {
    if (n < 0 && (err == EINVAL || err == EOPNOTSUPP)) {
      return Status::Make(Code::kDirectUnsupported, "the filesystem refuses O_DIRECT writes", dir);
    }
    return Status::Errno("pwrite", n < 0 ? err : EIO, probe);
  }
  return Status::Ok();
}

// The directory holding `dir` ("/" for "/", "." for a bare name).
std::string parent_dir(const std::string& dir) {
  size_t end = dir.find_last_not_of('/');
  if (end == std::string::npos) return "/";
  size_t slash = dir.rfind('/', end);
  if (slash == std::string::npos) return ".";
  size_t keep = dir.find_last_not_of('/', slash);
  return keep == std::string::npos ? "/" : dir.substr(0, keep + 1);
}

}  // namespace

Status Log::open(const std::string& dir, const LogOptions& options, ReportFn report, std::shared_ptr<Log>* out) {
  std::shared_ptr<Log> log(new Log());
  log->dir_ = dir;
  log->options_ = options;
  log->report_ = std::move(report);

  // Promise 5: one writer per directory. flock locks the open file description,
  // so a second open in this process conflicts too.
  std::string lock_path = dir + "/LOCK";
  if (options.read_only) return open_read_only(log, out);
  int fd;
  do {
    fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) return Status::Errno("open", errno, lock_path);
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int err = errno;
    ::close(fd);
    if (err == EWOULDBLOCK) {
      Status s = Status::Make(Code::kLocked, "another writer holds the log directory's lock", lock_path);
      s.err = err;
      return s;
    }
    return Status::Errno("flock", err, lock_path);
  }
  log->lock_fd_ = fd;

  log->block_ = kBlockBytesDefault;
  switch (options.sync) {
    case SyncMode::kFdatasync:
    case SyncMode::kNone:
      log->write_flags_ = 0;
      break;
    case SyncMode::kDsync:
      log->write_flags_ = kOpenDsync;
      break;
    case SyncMode::kDirect: {
      log->write_flags_ = kOpenDsync | kOpenDirect;
      Status s = probe_direct(dir, lock_path, &log->block_);
      if (!s.ok()) {
        log->release_lock();
        return s;
      }
      break;
    }
  }

  {
    // io: 'uring' / 'auto': probe io_uring now (log_uring.cc); 'auto' falls back silently.
    Status us = log->uring_setup();
    if (!us.ok()) {
      log->release_lock();
      return us;
    }
  }

  RecoveryOptions ro;
  ro.dir = dir;
  ro.block = log->block_;
  ro.repair_tail = options.repair_tail;
  Recovered rec;
  Status s = recover(ro, &rec);
  if (!s.ok()) {
    log->release_lock();
    return s;
  }
  if (rec.segments.empty()) {
    // A new log: its first segment, created, headed and named durably before use.
    auto seg = std::make_shared<Segment>();
    std::string tmp = dir + "/first.wal.tmp";
    s = create_zeroed_file(tmp, first_segment_bytes(options.segment_bytes));
    if (s.ok()) s = write_segment_header(tmp, 1, &seg->header_nonce, &seg->tail_crc);
    std::string path = dir + "/" + segment_name(1);
    if (s.ok() && ::rename(tmp.c_str(), path.c_str()) != 0) s = Status::Errno("rename", errno, path);
    if (s.ok()) s = sync_dir(dir);
    // Promise 1: the log directory's own entry in its parent too (the caller
    // may have created it, or an earlier open may have stopped before this).
    if (s.ok()) s = sync_dir(parent_dir(dir));
    if (!s.ok()) {
      ::unlink(tmp.c_str());
      log->release_lock();
      return s;
    }
    seg->path = path;
    seg->first_index = 1;
    seg->last_index = 0;
    seg->file_bytes = first_segment_bytes(options.segment_bytes);
    seg->write_offset = kSegmentDataOffset;
    rec.segments.push_back(std::move(seg));
    rec.first_index = 1;
    rec.last_index = 0;
  }
  Segment& active = *rec.segments.back();
  s = open_segment_files(&active, true, log->write_flags_);
  if (!s.ok()) {
    log->release_lock();
    return s;
  }
  log->tail_repair_ = rec.tail_repair;
  log->segments_ = std::move(rec.segments);
  log->first_index_.store(rec.first_index);
  log->last_index_.store(rec.last_index);
  log->next_index_ = rec.last_index + 1;
  log->m_segments_.store(log->segments_.size());
  log->spare_bytes_.store(next_segment_bytes(active.file_bytes, options.segment_bytes));

  log->preparer_ = std::thread([raw = log.get()] { raw->preparer_main(); });
  log->writer_ = std::thread([raw = log.get()] { raw->writer_main(); });
  {
    // A spare prepared by an earlier open is reused (resized when taken, if need be).
    std::string ready = dir + "/" + kSpareReadyName;
    struct stat st;
    uint64_t size = 0;
    if (::stat(ready.c_str(), &st) == 0) size = static_cast<uint64_t>(st.st_size);
    bool have = size >= kSegmentBytesMin && size <= kSegmentBytesMax && size % kSegmentAlignBytes == 0;
    if (!have) ::unlink(ready.c_str());
    std::lock_guard<std::mutex> lk(log->prep_mu_);
    if (have) {
      log->spare_ready_ = true;
      log->spare_path_ = ready;
    } else {
      log->spare_wanted_ = true;
    }
  }
  log->prep_cv_.notify_one();
  *out = std::move(log);
  return Status::Ok();
}

Status Log::open_read_only(std::shared_ptr<Log>& log, std::shared_ptr<Log>* out) {
  // No lock: only a probe whether a writer holds it (its last batch may be in flight).
  RecoveryOptions ro;
  ro.dir = log->dir_;
  ro.block = log->block_;
  ro.read_only = true;
  ro.from_segment = log->options_.from_segment;
  int fd;
  do {
    fd = ::open((log->dir_ + "/LOCK").c_str(), O_RDONLY | O_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  if (fd >= 0) {
    if (::flock(fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK) ro.live_writer = true;
    ::close(fd);  // releases the probe's shared lock at once
  }
  Recovered rec;
  Status s = recover(ro, &rec);
  if (!s.ok()) return s;
  log->damage_ = rec.damage;
  log->torn_path_ = rec.torn_path;
  log->torn_offset_ = rec.torn_offset;
  log->torn_end_ = rec.torn_end;
  log->segments_ = std::move(rec.segments);
  log->first_index_.store(rec.first_index);
  log->last_index_.store(rec.last_index);
  log->next_index_ = rec.last_index + 1;
  log->m_segments_.store(log->segments_.size());
  {
    std::lock_guard<std::mutex> lk(log->mu_);
    log->read_only_ = true;
  }
  // The writer thread only delivers the close report: no append or command is accepted.
  log->writer_ = std::thread([raw = log.get()] { raw->writer_main(); });
  *out = std::move(log);
  return Status::Ok();
}

void Log::segment_infos(std::vector<SegmentInfo>* out) const {
  std::lock_guard<std::mutex> lk(index_mu_);
  out->clear();
  for (const auto& seg : segments_) {
    SegmentInfo info;
    info.path = seg->path;
    info.first_index = seg->first_index;
    info.last_index = seg->last_index;
    info.file_bytes = seg->file_bytes;
    info.end_offset = seg->write_offset;
    info.version = seg->version;
    out->push_back(std::move(info));
  }
}

Log::~Log() {
  shutdown();
  release_lock();
}

void Log::release_lock() {
  if (lock_fd_ >= 0) {
    ::close(lock_fd_);  // releases the flock
    lock_fd_ = -1;
  }
}

void Log::take_free_buffer(AlignedBuffer* out) {
  if (free_buffers_.empty()) return;
  // The largest one: growing a staging buffer means copying it and faulting in
  // fresh pages, on the JS thread.
  size_t best = 0;
  for (size_t i = 1; i < free_buffers_.size(); i++) {
    if (free_buffers_[i].capacity() > free_buffers_[best].capacity()) best = i;
  }
  *out = std::move(free_buffers_[best]);
  free_buffers_.erase(free_buffers_.begin() + static_cast<std::ptrdiff_t>(best));
}

// Under mu_: the staging buffer of `item` could not grow by `bytes`. An item made
// for this call (nothing staged in it) goes again; the caller rejects the append.
void Log::staging_failed(size_t bytes, Status* st) {
  if (!queue_.empty() && queue_.back().kind == ItemKind::kAppend && queue_.back().count == 0) queue_.pop_back();
  *st = Status::OutOfMemory("the staging buffer for " + std::to_string(bytes) + " more bytes of queued records", bytes);
}

QueueItem* Log::staging_item(size_t bytes, Status* st) {
  if (read_only_) {
    *st = Status::Make(Code::kInvalidArgument, "the log is open read-only");
    return nullptr;
  }
  if (closing_) {
    *st = Status::Make(Code::kClosed, "the log is closed");
    return nullptr;
  }
  if (poisoned_) {
    *st = poison_status_;
    return nullptr;
  }
  if (staged_bytes_ + bytes > kStagingBytesMax) {
    *st = Status::Make(Code::kBusy, "too many bytes queued for the writer; wait for pending appends");
    return nullptr;
  }
  if (queue_.empty() || queue_.back().kind != ItemKind::kAppend) {
    queue_.emplace_back();
    QueueItem& item = queue_.back();
    item.first_index = next_index_;
    take_free_buffer(&item.buf);
  }
  return &queue_.back();
}

uint64_t Log::append(const uint8_t* data, uint32_t size, Status* st) {
  size_t bytes = frame_bytes(size);
  std::lock_guard<std::mutex> lk(mu_);
  QueueItem* staged = staging_item(bytes, st);
  if (staged == nullptr) return 0;
  QueueItem& item = *staged;
  uint8_t* at = item.buf.append(bytes);
  if (at == nullptr) {
    staging_failed(bytes, st);
    return 0;
  }
  uint64_t index = next_index_++;
  encode_record(at, index, data, size);
  item.last_index = index;
  item.count++;
  item.last_ticket = ++ticket_;
  staged_bytes_ += bytes;
  queued_tickets_++;
  wake_writer(batch_may_start());
  return index;
}

uint64_t Log::append_many(const std::vector<std::pair<const uint8_t*, uint32_t>>& records, Status* st) {
  size_t bytes = 0;
  for (const auto& r : records) bytes += frame_bytes(r.second);
  if (bytes > kStagingBytesMax) {
    // Could never be queued, however long the caller waits.
    *st = Status::Make(Code::kInvalidArgument, "appendMany: the batch is " + std::to_string(bytes) +
                                                   " bytes framed, above the staging limit of " +
                                                   std::to_string(kStagingBytesMax) + " bytes (1 GiB); split it");
    return 0;
  }
  std::lock_guard<std::mutex> lk(mu_);
  QueueItem* staged = staging_item(bytes, st);
  if (staged == nullptr) return 0;
  QueueItem& item = *staged;
  uint8_t* p = item.buf.append(bytes);
  if (p == nullptr) {
    staging_failed(bytes, st);
    return 0;
  }
  for (const auto& r : records) {
    encode_record(p, next_index_++, r.first, r.second);
    p += frame_bytes(r.second);
  }
  item.last_index = next_index_ - 1;
  item.count += records.size();
  item.last_ticket = ++ticket_;
  staged_bytes_ += bytes;
  queued_tickets_++;
  wake_writer(batch_may_start());
  return next_index_ - 1;
}

uint64_t Log::truncate_after(uint64_t index, Status* st) {
  std::lock_guard<std::mutex> lk(mu_);
  if (read_only_) {
    *st = Status::Make(Code::kInvalidArgument, "the log is open read-only");
    return 0;
  }
  if (closing_) {
    *st = Status::Make(Code::kClosed, "the log is closed");
    return 0;
  }
  if (poisoned_) {
    *st = poison_status_;
    return 0;
  }
  uint64_t first = first_index_.load();
  if (index + 1 < first || index >= next_index_) {
    *st = Status::Make(Code::kOutOfRange, "truncateAfter index " + std::to_string(index) + " is outside [" +
                                              std::to_string(first - 1) + ", " + std::to_string(next_index_ - 1) + "]");
    return 0;
  }
  queue_.emplace_back();
  QueueItem& item = queue_.back();
  item.kind = ItemKind::kTruncateAfter;
  item.arg = index;
  item.command_id = ++command_ids_;
  next_index_ = index + 1;
  wake_writer(true);
  return item.command_id;
}

uint64_t Log::truncate_before(uint64_t index, Status* st) {
  std::lock_guard<std::mutex> lk(mu_);
  if (read_only_) {
    *st = Status::Make(Code::kInvalidArgument, "the log is open read-only");
    return 0;
  }
  if (closing_) {
    *st = Status::Make(Code::kClosed, "the log is closed");
    return 0;
  }
  if (poisoned_) {
    *st = poison_status_;
    return 0;
  }
  if (index > next_index_) {
    *st = Status::Make(Code::kOutOfRange, "truncateBefore index " + std::to_string(index) + " is above the next index " +
                                              std::to_string(next_index_));
    return 0;
  }
  queue_.emplace_back();
  QueueItem& item = queue_.back();
  item.kind = ItemKind::kTruncateBefore;
  item.arg = index;
  item.command_id = ++command_ids_;
  wake_writer(true);
  return item.command_id;
}

void Log::reports_settled(uint64_t count) {
  std::lock_guard<std::mutex> lk(mu_);
  reports_unsettled_ -= std::min(reports_unsettled_, count);
  for (; count > 0 && !unsettled_report_tickets_.empty(); count--) {
    unsettled_tickets_ -= std::min(unsettled_tickets_, unsettled_report_tickets_.front());
    unsettled_report_tickets_.pop_front();
  }
  wake_writer(!queue_.empty() && batch_may_start());
}

bool Log::close() {
  std::lock_guard<std::mutex> lk(mu_);
  if (closing_) return false;
  closing_ = true;
  queue_.emplace_back();
  queue_.back().kind = ItemKind::kClose;
  wake_seq_.fetch_add(1, std::memory_order_release);
  cv_.notify_one();
  return true;
}

void Log::join() {
  if (writer_.joinable()) writer_.join();
  if (preparer_.joinable()) {
    {
      std::lock_guard<std::mutex> lk(prep_mu_);
      prep_stop_ = true;
    }
    prep_cv_.notify_all();
    preparer_.join();
  }
}

void Log::shutdown() {
  uring_drain();
  close();
  if (uring_) {
    // The writer thread runs only on a handoff in io_uring mode: hand it the close.
    std::lock_guard<std::mutex> lk(mu_);
    handoff_ = true;
    handoff_pending_ = true;
    cv_.notify_one();
  }
  join();
  release_lock();
}

bool Log::locate(uint64_t index, std::shared_ptr<Segment>* seg, SparseEntry* entry) const {
  std::lock_guard<std::mutex> lk(index_mu_);
  if (index < first_index_.load() || index > last_index_.load()) return false;
  auto it = std::upper_bound(segments_.begin(), segments_.end(), index,
                             [](uint64_t i, const std::shared_ptr<Segment>& s) { return i < s->first_index; });
  if (it == segments_.begin()) return false;
  const std::shared_ptr<Segment>& s = *(it - 1);
  if (index > s->last_index || s->sparse.empty()) return false;
  auto e = std::upper_bound(s->sparse.begin(), s->sparse.end(), index,
                            [](uint64_t i, const SparseEntry& x) { return i < x.index; });
  if (e == s->sparse.begin()) return false;
  *entry = *(e - 1);
  *seg = s;
  return true;
}

namespace {

Status pread_exact(int fd, const std::string& path, uint8_t* out, size_t n, uint64_t offset) {
  size_t done = 0;
  while (done < n) {
    ssize_t r = ::pread(fd, out + done, n - done, static_cast<off_t>(offset + done));
    if (r < 0) {
      if (errno == EINTR) continue;
      return Status::Errno("pread", errno, path, static_cast<int64_t>(offset + done));
    }
    if (r == 0) return Status::Corruption("segment ends inside a record", path, static_cast<int64_t>(offset + done));
    done += static_cast<size_t>(r);
  }
  return Status::Ok();
}

// A read-ahead window over a segment's read fd.
class ReadWindow {
 public:
  ReadWindow(int fd, const std::string& path, uint64_t file_bytes, size_t ahead)
      : fd_(fd), path_(path), file_bytes_(file_bytes), ahead_(ahead) {}

  // Points `*out` at bytes [offset, offset + n) of the file.
  Status get(uint64_t offset, size_t n, const uint8_t** out) {
    if (offset >= base_ && offset + n <= base_ + len_) {
      *out = buf_.data() + (offset - base_);
      return Status::Ok();
    }
    if (offset + n > file_bytes_) {
      return Status::Corruption("segment ends inside a record", path_, static_cast<int64_t>(offset));
    }
    size_t want = static_cast<size_t>(std::min<uint64_t>(std::max(n, ahead_), file_bytes_ - offset));
    buf_.resize(want);
    Status s = pread_exact(fd_, path_, buf_.data(), want, offset);
    if (!s.ok()) return s;
    base_ = offset;
    len_ = want;
    *out = buf_.data();
    return Status::Ok();
  }

 private:
  int fd_;
  const std::string& path_;
  uint64_t file_bytes_;
  size_t ahead_;
  std::vector<uint8_t> buf_;
  uint64_t base_ = 0;
  size_t len_ = 0;
};

}  // namespace

Status Log::read(uint64_t index, std::vector<uint8_t>* out) {
  std::vector<uint32_t> lengths;
  uint64_t next = 0;
  Status s = read_range(index, index, 0, out, &lengths, &next);
  if (!s.ok()) return s;
  assert(lengths.size() == 1);
  return Status::Ok();
}

Status Log::read_range(uint64_t from, uint64_t to, size_t max_bytes, std::vector<uint8_t>* data,
                       std::vector<uint32_t>* lengths, uint64_t* next) {
  std::shared_lock<std::shared_mutex> cut(cut_mu_);
  std::shared_ptr<Segment> seg;
  SparseEntry entry{};
  if (!locate(from, &seg, &entry)) {
    {
      // A read issued before close() can reach here after the writer closed the log
      // and released its segments (e.g. one that waited for queued truncations).
      std::lock_guard<std::mutex> lk(index_mu_);
      if (segments_released_) return Status::Make(Code::kClosed, "the log is closed");
    }
    return Status::Make(Code::kOutOfRange, "index " + std::to_string(from) + " is outside [" +
                                               std::to_string(first_index()) + ", " + std::to_string(last_index()) + "]");
  }
  uint64_t seg_last;
  {
    std::lock_guard<std::mutex> lk(index_mu_);
    seg_last = seg->last_index;
  }
  to = std::min(to, seg_last);
  data->clear();
  lengths->clear();
  // Read ahead in one pread and walk the frames in memory.
  ReadWindow w(seg->read_fd, seg->path, seg->file_bytes, max_bytes == 0 ? kReadWindowBytes : 4 * kReadWindowBytes);
  uint64_t off = entry.offset;
  uint32_t seed = entry.seed;
  uint64_t expected = entry.index;
  while (expected <= to) {
    const uint8_t* header = nullptr;
    Status s = w.get(off, kFrameHeaderBytes, &header);
    if (!s.ok()) return s;
    uint32_t length = load32(header + 4);
    uint32_t stored = load32(header);
    if ((length & kFrameFlagMask) == kBatchHeaderFlag) {
      // A batch header (v2): not a link of the chain; recovery checked it.
      size_t bytes = length & ~kFrameFlagMask;
      if (bytes < kFrameHeaderBytes || bytes % kFrameAlignBytes != 0 || off + bytes > seg->file_bytes) {
        return Status::Corruption("bad batch header", seg->path, static_cast<int64_t>(off));
      }
      off += bytes;
      continue;
    }
    if ((length & kPadFlag) != 0) {
      size_t total = length & ~kPadFlag;
      if (total < kPadFrameMinBytes || total % kFrameAlignBytes != 0 || off + total > seg->file_bytes) {
        return Status::Corruption("bad padding frame", seg->path, static_cast<int64_t>(off));
      }
      seed = stored;
      off += total;
      continue;
    }
    uint64_t idx = load64(header + 8);
    if (length > kRecordBytesMax || idx != expected || off + frame_bytes(length) > seg->file_bytes) {
      return Status::Corruption("bad record header (index " + std::to_string(expected) + ")", seg->path,
                                static_cast<int64_t>(off));
    }
    if (idx < from) {
      seed = stored;
      off += frame_bytes(length);
      expected++;
      continue;
    }
    if (!lengths->empty() && data->size() + length > max_bytes) break;
    const uint8_t* frame = nullptr;
    s = w.get(off, kFrameHeaderBytes + length, &frame);
    if (!s.ok()) return s;
    if (crc32c_extend(seed, frame + 4, 12 + static_cast<size_t>(length)) != stored) {
      return Status::Corruption("record checksum mismatch (index " + std::to_string(idx) + ")", seg->path,
                                static_cast<int64_t>(off));
    }
    data->insert(data->end(), frame + kFrameHeaderBytes, frame + kFrameHeaderBytes + length);
    lengths->push_back(length);
    seed = stored;
    off += frame_bytes(length);
    expected++;
  }
  *next = expected;
  return Status::Ok();
}

void Log::stats(LogStats* out) const {
  out->appends = m_appends_.load(std::memory_order_relaxed);
  out->batches = m_batches_.load(std::memory_order_relaxed);
  out->syncs = m_syncs_.load(std::memory_order_relaxed);
  out->bytes_written = m_bytes_.load(std::memory_order_relaxed);
  out->padding_bytes = m_padding_.load(std::memory_order_relaxed);
  out->segments = m_segments_.load(std::memory_order_relaxed);
  for (int i = 0; i < kHistBatchBuckets; i++) out->batch_hist[i] = m_batch_hist_[i].load(std::memory_order_relaxed);
  for (int i = 0; i < kHistLatencyBuckets; i++) out->sync_hist[i] = m_sync_hist_[i].load(std::memory_order_relaxed);
}

}  // namespace tidemark
