// The io_uring append path of a Log (see log.h uring_flush, docs/wal.md).
//
// On the JS thread: uring_flush takes the append item at the head of the queue,
// encodes it exactly as write_batch does (chained CRCs, batch header with sector
// CRCs, padding frame to the block boundary), and submits one write linked
// (IOSQE_IO_LINK) to one fdatasync, or a single write on an O_DSYNC / O_DIRECT
// descriptor. The kernel signals the completions on an eventfd (addon.cc polls it
// with libuv); uring_complete then publishes the batch and returns its report.
// One batch in flight at a time: appends that arrive meanwhile form the next one
// (group commit). Everything else (truncations, rotation, close, a batch too big
// for the active segment or kUringBatchBytesMax, zeroing after a clean ENOSPC,
// a poisoned log) is handed to the writer thread (handoff_), only while no
// io_uring batch is in flight, and the JS thread submits nothing until the
// writer's report reached JS: the segments have one owner at a time, and the
// queue's order is the order things take effect.
#include <errno.h>

#include <algorithm>
#include <cstring>

#include "limits.h"
#include "log_uring.h"
#include "record.h"

namespace tidemark {

namespace {

constexpr unsigned kRingEntries = 8;
constexpr uint64_t kUserWrite = 1;
constexpr uint64_t kUserSync = 2;
constexpr unsigned kShortWriteStallsMax = 16;  // as the writer thread's File (file.cc)

}  // namespace

Status Log::uring_setup() {
  if (options_.read_only || options_.io == IoMode::kThread) return Status::Ok();
  auto u = std::make_unique<UringState>();
  std::string reason;
  int err = 0;
  bool ok;
  if (options_.uring_probe_fail) {
    reason = "the io_uring probe was made to fail (TIDEMARK_URING_PROBE_FAIL, tests)";
    err = ENOSYS;
    ok = false;
  } else {
    ok = u->ring.open(kRingEntries, &reason, &err);
  }
  if (!ok) {
    if (options_.io == IoMode::kUring) {
      Status s = Status::Make(Code::kUringUnsupported,
                              "io: 'uring' was asked for, but io_uring is not available here (" + reason +
                                  "); use io: 'auto' or 'thread'",
                              dir_);
      s.err = err;
      return s;
    }
    uring_reason_ = reason;
    return Status::Ok();
  }
  uring_ = std::move(u);
  return Status::Ok();
}

int Log::uring_event_fd() const { return uring_ ? uring_->ring.event_fd() : -1; }

void Log::uring_flush() {
  if (!uring_) return;
  UringState& u = *uring_;
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (u.busy || handoff_ || queue_.empty()) return;
    QueueItem& head = queue_.front();
    // Only the writer thread changes segments_, and it runs only during a handoff.
    std::shared_ptr<Segment> seg = segments_.empty() ? nullptr : segments_.back();
    bool fast = head.kind == ItemKind::kAppend && head.count > 0 && !poisoned_ && seg && seg->file &&
                seg->file->fd() >= 0 && seg->dirty_end <= seg->write_offset && head.buf.size() <= kUringBatchBytesMax;
    if (fast) {
      size_t header = 0, pad = 0;
      fast = seg->write_offset + batch_layout(seg->write_offset, head.buf.size(), seg->version >= 2, block_, &header, &pad) <=
             seg->file_bytes;
    }
    if (!fast) {
      handoff_ = true;
      handoff_pending_ = true;
      cv_.notify_one();
      return;
    }
    u.item = std::move(head);
    queue_.pop_front();
    staged_bytes_ -= std::min(staged_bytes_, u.item.buf.size());
    queued_tickets_ = 0;
    u.seg = std::move(seg);
    u.busy = true;
  }
  Segment& seg = *u.seg;
  uint8_t* base = u.item.buf.data();
  const size_t total = u.item.buf.size();
  const uint64_t off = seg.write_offset;
  const bool v2 = seg.version >= 2;
  const uint32_t prev_crc = seg.tail_crc;
  uint32_t crc = prev_crc;
  u.placed.clear();
  for (size_t pos = 0; pos < total;) {
    size_t fb = frame_bytes(load32(base + pos + 4));
    u.placed.push_back(Placed{&seg, load64(base + pos + 8), pos, crc});
    crc = seal_record(base + pos, crc);
    pos += fb;
  }
  size_t header = 0, pad = 0;
  const uint64_t batch = batch_layout(off, total, v2, block_, &header, &pad);
  for (Placed& p : u.placed) p.offset += off + header;
  Status failure;
  if (!u.buf.resize(static_cast<size_t>(batch))) {
    failure = Status::OutOfMemory("the write buffer of a batch", static_cast<size_t>(batch));
  } else {
    uint8_t* hdr = u.buf.data();
    memcpy(hdr + header, base, total);
    uint8_t* padp = hdr + header + total;
    crc = encode_padding(padp, pad, u.placed.back().index + 1, crc);
    if (v2) {
      encode_batch_header(hdr, header, u.placed.front().index, static_cast<uint32_t>(batch),
                          static_cast<uint32_t>(u.placed.size()), prev_crc);
      ByteSpan rest[2] = {{hdr + header, total}, {padp, pad}};
      uint64_t pad_at = header + total;
      seal_batch_header(hdr, rest, 2, seg.header_crc(), pad_at + kFrameHeaderBytes, pad_at + pad - 8);
    }
    u.off = off;
    u.len = static_cast<size_t>(batch);
    u.done = 0;
    u.pad = pad;
    u.crc = crc;
    u.stalls = 0;
    u.t0 = std::chrono::steady_clock::now();
    failure = seg.file->before_async_write(hdr, u.len, off);
    if (failure.ok()) failure = uring_submit();
  }
  if (!failure.ok()) {
    // Nothing was submitted: the writer thread runs this batch instead and owns
    // whatever error it meets (TM_BUSY for memory, TM_NOSPC, poisoning). Its
    // CRCs are sealed again there from the same seed, to the same values.
    std::lock_guard<std::mutex> lk(mu_);
    staged_bytes_ += u.item.buf.size();
    queue_.push_front(std::move(u.item));
    u.item = QueueItem();
    u.seg.reset();
    u.busy = false;
    handoff_ = true;
    handoff_pending_ = true;
    cv_.notify_one();
  }
}

Status Log::uring_submit() {
  UringState& u = *uring_;
  const int fd = u.seg->file->fd();
  const bool sync = options_.sync == SyncMode::kFdatasync;
  size_t n = u.len - u.done;
#ifdef TIDEMARK_FAULTS
  // Test build: the fault layer's short writes (shortWrite) apply to io_uring writes
  // too: the write is submitted shorter, and the kernel's short count makes the path
  // resubmit the rest as it would after a real short write. O_DIRECT needs whole
  // blocks: the cut is rounded down (where the resume point lands anyway).
  n = faults::short_write_cap(u.seg->path, n);
  if (options_.sync == SyncMode::kDirect) n = n / block_ * block_;
#endif
  u.ring.queue_write(fd, u.buf.data() + u.done, n, u.off + u.done, sync, kUserWrite);
  if (sync) u.ring.queue_fdatasync(fd, kUserSync);
  u.outstanding = sync ? 2 : 1;
  u.write_res = -EIO;
  u.sync_res = -EIO;
  int r = u.ring.submit();
  if (r < 0) {
    u.outstanding = 0;
    return Status::Errno("io_uring_enter", -r, u.seg->path);
  }
  return Status::Ok();
}

std::unique_ptr<BatchReport> Log::uring_complete() {
  if (!uring_) return nullptr;
  UringState& u = *uring_;
  u.ring.clear_event();
  UringCompletion c[kRingEntries];
  size_t n = u.ring.reap(c, kRingEntries);
  for (size_t i = 0; i < n; i++) {
    if (c[i].user_data == kUserWrite) u.write_res = c[i].res;
    if (c[i].user_data == kUserSync) u.sync_res = c[i].res;
    if ((c[i].user_data == kUserWrite || c[i].user_data == kUserSync) && u.outstanding > 0) u.outstanding--;
  }
  if (!u.busy || u.outstanding > 0) return nullptr;
  const bool sync = options_.sync == SyncMode::kFdatasync;
  const bool whole = u.write_res >= 0 && u.done + static_cast<size_t>(u.write_res) >= u.len;
  if (whole && options_.sync != SyncMode::kNone) {
    // A sync ran (fdatasync, or the O_DSYNC write itself), failed or not: counted as the writer counts it.
    auto us = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - u.t0).count();
    m_syncs_.fetch_add(1, std::memory_order_relaxed);
    m_sync_hist_[bucket_of(static_cast<uint64_t>(us), kHistLatencyBuckets)].fetch_add(1, std::memory_order_relaxed);
  }
  Status failure;
  if (u.write_res < 0) {
    failure = Status::Errno("pwrite", -u.write_res, u.seg->path, static_cast<int64_t>(u.off + u.done));
  } else if (u.done + static_cast<size_t>(u.write_res) < u.len) {
    // Short: the linked fdatasync was cancelled. Write the rest (O_DIRECT: from
    // the last block boundary, as file.cc does) and sync again.
    size_t reached = u.done + static_cast<size_t>(u.write_res);
    if (options_.sync == SyncMode::kDirect) reached = reached / block_ * block_;
    if (reached <= u.done) {
      if (++u.stalls >= kShortWriteStallsMax) {
        failure = Status::Errno("pwrite", EIO, u.seg->path, static_cast<int64_t>(u.off + u.done));
        failure.message = "short writes without progress (" + std::to_string(u.stalls) + " in a row)";
      }
    } else {
      u.stalls = 0;
    }
    if (failure.ok()) {
      u.done = std::max(u.done, reached);
      failure = uring_submit();
      if (failure.ok()) return nullptr;
      failure.code = Code::kIo;  // part of the batch may be written: not ENOSPC-clean
    }
  } else if (sync && u.sync_res < 0) {
    failure = Status::Errno("fdatasync", -u.sync_res, u.seg->path);
    failure.code = Code::kIo;  // a failed sync is never ENOSPC-clean
  } else if (sync) {
    failure = u.seg->file->after_async_sync();
    if (!failure.ok()) failure.code = Code::kIo;
  }
  return uring_finish(failure);
}

std::unique_ptr<BatchReport> Log::uring_finish(Status failure) {
  UringState& u = *uring_;
  Segment& seg = *u.seg;
  QueueItem item = std::move(u.item);
  u.item = QueueItem();
  u.busy = false;
  auto report = std::make_unique<BatchReport>();
  if (failure.ok()) {
    seg.write_offset = u.off + u.len;
    seg.tail_crc = u.crc;
    m_bytes_.fetch_add(u.len, std::memory_order_relaxed);
    m_padding_.fetch_add(u.pad, std::memory_order_relaxed);
    m_appends_.fetch_add(item.count, std::memory_order_relaxed);
    m_batches_.fetch_add(1, std::memory_order_relaxed);
    m_batch_hist_[bucket_of(item.count, kHistBatchBuckets)].fetch_add(1, std::memory_order_relaxed);
    {
      std::lock_guard<std::mutex> lk(index_mu_);
      for (const Placed& p : u.placed) {
        p.segment->note_record(p.index, p.offset, p.seed);
        p.segment->last_index = p.index;
      }
      last_index_.store(item.last_index, std::memory_order_release);
    }
    report->durable_ticket = item.last_ticket;
  } else if (failure.code == Code::kNoSpace && u.done == 0) {
    // ENOSPC from the write, before anything of the batch was acknowledged: the
    // writer thread owns clean rejections (zeroing what reached the segment,
    // failing what was numbered after it, rolling the index back). It zeroes
    // [write_offset, dirty_end) first and tries this batch once more.
    seg.dirty_end = std::max(seg.dirty_end, u.off + u.len);
    u.seg.reset();
    std::lock_guard<std::mutex> lk(mu_);
    staged_bytes_ += item.buf.size();
    queue_.push_front(std::move(item));
    handoff_ = true;
    handoff_pending_ = true;
    cv_.notify_one();
    return nullptr;
  } else {
    // Promise 4: final. What is queued behind fails on the writer thread (the
    // next flush hands a poisoned log's queue to it).
    poison(failure);
    std::lock_guard<std::mutex> lk(mu_);
    report->failed_ticket = item.last_ticket;
    report->failure = poison_status_;
  }
  u.seg.reset();
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (free_buffers_.size() < kStagingBuffersKept && item.buf.capacity() <= kStagingBufferKeptBytesMax) {
      item.buf.clear();
      free_buffers_.push_back(std::move(item.buf));
    }
  }
  if (u.buf.capacity() > kStagingBufferKeptBytesMax) u.buf = AlignedBuffer();
  report->first_index = first_index_.load();
  report->last_index = last_index_.load();
  return report;
}

void Log::writer_report_delivered() {
  if (!uring_) return;
  std::lock_guard<std::mutex> lk(mu_);
  if (!handoff_pending_) handoff_ = false;
}

void Log::uring_drain() {
  if (!uring_) return;
  UringState& u = *uring_;
  while (u.busy) {
    if (u.ring.wait_one() < 0) break;  // cannot wait: the ring's close at ~Log cancels it
    (void)uring_complete();
  }
}

}  // namespace tidemark
