#include "writer.h"

#include <errno.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <chrono>
#include <cstring>

#include "limits.h"
#include "record.h"
#include "recovery.h"

namespace tidemark {

namespace {

// The preparer thread runs this much nicer than the process: below the writer, not starved.
constexpr int kPreparerNice = 5;

// One spin-wait step: tells the core (and a hypervisor) that this is a poll.
inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#endif
}

}  // namespace

void Log::poison(const Status& st) {
  std::lock_guard<std::mutex> lk(mu_);
  if (poisoned_) return;
  poisoned_ = true;
  poison_status_ = st;
  poison_status_.code = Code::kPoisoned;
  poison_status_.message = "the log is poisoned: an earlier " + (st.syscall.empty() ? std::string("operation") : st.syscall) +
                           " failed (" + st.message + "); it refuses all appends, reopen it to recover";
}

Status Log::sync_file(File* file) {
  if (options_.sync != SyncMode::kFdatasync) return Status::Ok();
  auto t0 = std::chrono::steady_clock::now();
  Status s = file->datasync();
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0).count();
  m_syncs_.fetch_add(1, std::memory_order_relaxed);
  m_sync_hist_[bucket_of(static_cast<uint64_t>(us), kHistLatencyBuckets)].fetch_add(1, std::memory_order_relaxed);
  return s;
}

void Log::preparer_main() {
  // Zero-filling spares is background work with a whole segment's time to
  // finish: a lower CPU priority (this thread only) leaves the cores to the JS
  // thread and the writer, which every acknowledgement waits for. Best effort.
  {
    id_t tid = static_cast<id_t>(::syscall(SYS_gettid));
    errno = 0;
    int nice = ::getpriority(PRIO_PROCESS, tid);
    if (errno == 0) (void)::setpriority(PRIO_PROCESS, tid, std::min(nice + kPreparerNice, 19));
  }
  std::unique_lock<std::mutex> lk(prep_mu_);
  while (true) {
    prep_cv_.wait(lk, [&] { return prep_stop_ || (spare_wanted_ && !spare_ready_ && spare_status_.ok()); });
    if (prep_stop_) break;
    spare_wanted_ = false;
    spare_busy_ = true;
    std::string tmp = dir_ + "/" + kSpareTmpName;
    std::string ready = dir_ + "/" + kSpareReadyName;
    const uint64_t bytes = spare_bytes_.load(std::memory_order_relaxed);
    lk.unlock();
    // A rotation renamed the previous spare to its segment name without syncing the
    // directory (rotate): make that durable before the ready name is reused, else a
    // crash could leave the new spare under that name and the old one nameless.
    Status s = sync_dir(dir_);
    ::unlink(tmp.c_str());
    // Reserved (fallocate), the spare reads as zeros over its whole size and is
    // usable at once: it is published as ready now and zero-written afterwards
    // while no append needs it (so syncs of the segment it becomes are
    // data-only), and the writer that takes it stops the fill within one chunk
    // instead of waiting for a whole segment's zero-fill (at 4 KiB x 256 that
    // wait was a ~200 ms stall per rotation). Without a reservation the zero
    // writes are what allocates: the spare is ready only once they are done.
    //
    // The spare gets its open header (version 3, segment.h) here too, synced, and its
    // ready name is made durable (directory fsync) before it is published: a rotation
    // then only renames it, and the first batch written into it is durable with its
    // own fdatasync whichever name a crash leaves it under (recovery.cc row S).
    bool allocated = false;
    if (s.ok()) s = create_allocated_file(tmp, bytes, &allocated);
    if (s.ok() && !allocated) {
      uint64_t reached = 0;
      s = zero_fill_file(tmp, 0, bytes, [] { return false; }, &reached);
      if (!s.ok()) ::unlink(tmp.c_str());
    }
    uint64_t nonce = 0;
    if (s.ok()) {
      s = write_open_header(tmp, &nonce);
      if (!s.ok()) ::unlink(tmp.c_str());
    }
    if (s.ok() && ::rename(tmp.c_str(), ready.c_str()) != 0) {
      s = Status::Errno("rename", errno, ready);
      ::unlink(tmp.c_str());
    }
    if (s.ok()) {
      s = sync_dir(dir_);
      if (!s.ok()) ::unlink(ready.c_str());
    }
    lk.lock();
    if (!s.ok()) {
      spare_busy_ = false;
      spare_status_ = s;
      prep_cv_.notify_all();
      continue;
    }
    spare_ready_ = true;
    spare_path_ = ready;
    spare_known_ = true;
    spare_nonce_ = nonce;
    spare_made_bytes_ = bytes;
    if (allocated) {
      spare_filling_ = true;
      prep_cv_.notify_all();
      lk.unlock();
      uint64_t reached = 0;
      // A failed or stopped fill leaves a usable spare (reserved: it reads as
      // zeros); only syncs of data written where the fill did not reach cost more.
      (void)zero_fill_file(ready, kSegmentDataOffset, bytes,  // after the header
                           [this] {
                             std::lock_guard<std::mutex> g(prep_mu_);
                             return spare_claimed_ || prep_stop_;
                           },
                           &reached);
      lk.lock();
      spare_filling_ = false;
    }
    spare_busy_ = false;
    prep_cv_.notify_all();
  }
  // A prepared spare stays for the next open.
}

Status Log::take_spare(std::string* path, uint64_t bytes) {
  std::unique_lock<std::mutex> lk(prep_mu_);
  if (!spare_ready_ && !spare_busy_) {
    // None ready and none in the making: try (again) now; space may be back.
    spare_status_ = Status::Ok();
    spare_wanted_ = true;
    prep_cv_.notify_all();
  }
  prep_cv_.wait(lk, [&] { return spare_ready_ || (!spare_busy_ && !spare_wanted_ && !spare_status_.ok()) || prep_stop_; });
  if (spare_ready_) {
    if (spare_filling_) {
      // Still being zero-written in the background: stop that (within one chunk).
      spare_claimed_ = true;
      prep_cv_.wait(lk, [&] { return !spare_filling_; });
      spare_claimed_ = false;
    }
    *path = spare_path_;
    spare_ready_ = false;  // the next one is wanted once this one is renamed (rotate)
    const bool known = spare_known_;
    const uint64_t made = spare_made_bytes_;
    spare_known_ = false;
    taken_known_ = known;
    taken_nonce_ = spare_nonce_;
    lk.unlock();
    if (known && made == bytes) return Status::Ok();
    // Prepared for another size (segments grow; a record too big for the grown
    // size; a spare kept from an open with other options): resize it first.
    Status s = resize_zeroed_file(*path, bytes);
    if (!s.ok()) ::unlink(path->c_str());
    return s;
  }
  if (prep_stop_) return Status::Make(Code::kClosed, "the log is closing");
  return spare_status_;
}

Status Log::take_spares(const std::vector<uint64_t>& sizes, std::vector<std::string>* paths) {
  paths->clear();
  size_t count = sizes.size();
  if (count == 1) {
    std::string path;
    Status s = take_spare(&path, sizes[0]);
    if (s.ok()) paths->push_back(path);
    return s;
  }
  // Several rotations in one batch: each taken spare moves aside (a *.tmp
  // name, which recovery removes) so the preparer can make the next one under
  // the ready name while we hold it.
  for (size_t i = 0; i < count; i++) {
    std::string path;
    Status s = take_spare(&path, sizes[i]);
    if (!s.ok()) {
      release_spares(paths);
      return s;
    }
    std::string held = dir_ + "/spare.held." + std::to_string(i) + ".tmp";
    if (::rename(path.c_str(), held.c_str()) != 0) {
      s = Status::Errno("rename", errno, held);
      std::vector<std::string> back{path};
      release_spares(&back);
      release_spares(paths);
      return s;
    }
    paths->push_back(held);
    {
      std::lock_guard<std::mutex> lk(prep_mu_);
      if (i + 1 < count) spare_bytes_.store(sizes[i + 1], std::memory_order_relaxed);
      spare_wanted_ = true;
    }
    prep_cv_.notify_all();
  }
  return Status::Ok();
}

void Log::release_spares(std::vector<std::string>* paths) {
  const std::string ready = dir_ + "/" + kSpareReadyName;
  for (const std::string& path : *paths) {
    std::lock_guard<std::mutex> lk(prep_mu_);
    bool is_ready = path == ready;
    if (!spare_ready_ && !spare_busy_ && (is_ready || ::rename(path.c_str(), ready.c_str()) == 0)) {
      // Back as the prepared spare for next time.
      spare_ready_ = true;
      spare_path_ = ready;
      spare_wanted_ = false;
    } else if (!is_ready) {
      ::unlink(path.c_str());
    }
    // (A ready-named one while the preparer is busy: its rename replaces it.)
  }
  paths->clear();
}

Status Log::zero_dirty_tail(Segment* seg) {
  if (seg->dirty_end > seg->write_offset) {
    uint64_t end = std::min(seg->dirty_end, seg->file_bytes);
    AlignedBuffer zeros;
    size_t chunk = static_cast<size_t>(std::min<uint64_t>(end - seg->write_offset, kZeroChunkBytes));
    if (!zeros.resize(chunk)) return Status::OutOfMemory("a zero-fill buffer", chunk);
    memset(zeros.data(), 0, zeros.size());
    for (uint64_t off = seg->write_offset; off < end;) {
      size_t n = static_cast<size_t>(std::min<uint64_t>(end - off, zeros.size()));
      Status s = seg->file->pwrite(zeros.data(), n, off);
      if (!s.ok()) return s;
      off += n;
    }
    Status s = sync_file(seg->file.get());
    if (!s.ok()) {
      s.code = Code::kIo;  // a failed sync is never ENOSPC-clean
      return s;
    }
  }
  seg->dirty_end = 0;
  return Status::Ok();
}

Status Log::rotate(uint64_t first_index, const std::string& spare_path, uint64_t bytes, std::shared_ptr<Segment>* out) {
  auto seg = std::make_shared<Segment>();
  seg->first_index = first_index;
  seg->path = dir_ + "/" + segment_name(first_index);
  seg->file_bytes = bytes;
  seg->last_index = first_index - 1;
  seg->write_offset = kSegmentDataOffset;
  // The prepared spare (spare.wal.ready) already has its open header, synced, and
  // a durable name: the rotation is the rename alone, not synced here (the
  // preparer syncs the directory before it reuses the ready name). A crash leaves
  // the segment under either name, both recovered (recovery.cc row S). Other
  // spares (held under a *.tmp name by a batch that takes several, or kept from
  // a build without open headers) get a header with the first index, synced,
  // then the rename and the directory fsync, as before.
  bool open = false;
  Status s;
  if (spare_path == dir_ + "/" + kSpareReadyName) {
    if (taken_known_) {
      open = true;  // take_spare just returned it, as this open's preparer made it
      seg->header_nonce = taken_nonce_;
    } else {
      s = read_open_header(spare_path, &open, &seg->header_nonce);
      if (!s.ok()) return s;
    }
  }
  taken_known_ = false;
  if (open) {
    seg->version = kSegmentVersionOpen;
    seg->tail_crc = seg->header_crc();
  } else {
    s = write_segment_header(spare_path, first_index, &seg->header_nonce, &seg->tail_crc);
    if (!s.ok()) return s;
  }
  if (::rename(spare_path.c_str(), seg->path.c_str()) != 0) return Status::Errno("rename", errno, seg->path);
  {
    // The spare's name is free again: prepare the next one ahead of need.
    std::lock_guard<std::mutex> lk(prep_mu_);
    spare_bytes_.store(next_segment_bytes(bytes, options_.segment_bytes), std::memory_order_relaxed);
    spare_wanted_ = true;
  }
  prep_cv_.notify_all();
  if (!open) {
    s = sync_dir(dir_);
    if (!s.ok()) return s;
  }
  s = open_segment_files(seg.get(), true, write_flags_);
  if (!s.ok()) return s;
  {
    std::lock_guard<std::mutex> lk(index_mu_);
    segments_.back()->file.reset();  // sealed: no more writes
    if (segments_.back()->first_index == first_index) {
      // The active segment was empty and too small for the next record: the
      // rename above replaced it (atomically: either file is a valid empty segment).
      segments_.back() = seg;
    } else {
      segments_.push_back(seg);
      m_segments_.fetch_add(1, std::memory_order_relaxed);
    }
  }
  *out = std::move(seg);
  return Status::Ok();
}

Status Log::write_batch(QueueItem& item, bool* durable_any, bool* clean) {
  *durable_any = false;
  *clean = false;
  std::shared_ptr<Segment> seg = segments_.back();
  // Frames an earlier rejected batch left after the committed end are zeroed
  // before anything else is written (or the segment is sealed by a rotation).
  if (seg->dirty_end > seg->write_offset) {
    Status s = zero_dirty_tail(seg.get());
    if (!s.ok()) {
      // ENOSPC again (or no memory for the zeros): nothing of the log changed, the range stays marked.
      if (s.code == Code::kNoSpace || s.code == Code::kBusy) *clean = true;
      return s;
    }
  }
  size_t total = item.buf.size();
  uint8_t* base = item.buf.data();
  placed_.clear();
  // Does a batch of `records` bytes of frames fit at `off` in a segment of `cap`
  // bytes (with a batch header when `v2`, and its padding frame)?
  // Asked once per record: up to `surely` bytes (batch_fits_surely, once per
  // part) without a call; the exact layout only near the segment's end.
  auto fits = [&](uint64_t off, size_t records, bool v2, uint64_t cap, uint64_t surely) {
    return records <= surely || batch_fits(off, records, v2, block_, cap);
  };

  // ENOSPC must reject a batch before any of it is durable: count the
  // rotations the batch needs (the same layout as the loop below) and take
  // that many spares now.
  std::vector<uint64_t> rotations;  // the size of each new segment
  const bool direct = options_.sync == SyncMode::kDirect;
  size_t part_buf_need = 0;  // the largest part's write buffer (all of it in direct mode; else header + padding)
  {
    uint64_t off = seg->write_offset;
    uint64_t cap = seg->file_bytes;
    bool v2 = seg->version >= 2;
    size_t p = 0;
    while (true) {
      size_t start = p;
      const uint64_t surely = batch_fits_surely(off, v2, block_, cap);
      while (p < total) {
        size_t fb = frame_bytes(load32(base + p + 4));
        if (!fits(off, p - start + fb, v2, cap, surely)) break;
        p += fb;
      }
      if (p > start) {
        size_t header = 0, pad = 0;
        size_t batch = static_cast<size_t>(batch_layout(off, p - start, v2, block_, &header, &pad));
        part_buf_need = std::max(part_buf_need, direct ? batch : header + pad);
      }
      if (p == total) break;
      if (p == start && off == kSegmentDataOffset && cap == options_.segment_bytes) {
        *clean = true;
        return Status::Make(Code::kInvalidArgument, "a record does not fit in an empty segment");
      }
      // Segments grow (segment.h); a record too big for the grown size gets a full one.
      cap = next_segment_bytes(cap, options_.segment_bytes);
      if (!batch_fits(kSegmentDataOffset, frame_bytes(load32(base + p + 4)), true, block_, cap)) cap = options_.segment_bytes;
      rotations.push_back(cap);
      off = kSegmentDataOffset;
      v2 = true;  // new segments are written in the current format
    }
  }
  // Spares taken for rotations that did not happen (a failure) go back.
  struct Spares {
    Log* log;
    std::vector<std::string> paths;
    size_t used = 0;
    ~Spares() {
      if (used < paths.size()) {
        std::vector<std::string> rest(paths.begin() + static_cast<std::ptrdiff_t>(used), paths.end());
        log->release_spares(&rest);
      }
    }
  } spares{this, {}, 0};
  // Out of memory is a clean rejection too, found before anything is written.
  if (!part_buf_.reserve(part_buf_need)) {
    *clean = true;
    return Status::OutOfMemory("the write buffer of a batch", part_buf_need);
  }
  if (!rotations.empty()) {
    Status s = take_spares(rotations, &spares.paths);
    if (!s.ok()) {
      // Nothing of the log was touched: a clean rejection, whatever the errno.
      *clean = true;
      return s;
    }
  }

  size_t pos = 0;
  while (pos < total) {
    uint64_t off = seg->write_offset;
    bool v2 = seg->version >= 2;
    size_t start = pos;
    size_t first_placed = placed_.size();
    uint32_t prev_crc = seg->tail_crc;
    uint32_t crc = prev_crc;
    const uint64_t surely = batch_fits_surely(off, v2, block_, seg->file_bytes);
    while (pos < total) {
      uint32_t length = load32(base + pos + 4);
      size_t fb = frame_bytes(length);
      if (!fits(off, pos - start + fb, v2, seg->file_bytes, surely)) break;
      // Offset within the part's records for now; the batch header's size is known below.
      placed_.push_back(Placed{seg.get(), load64(base + pos + 8), pos - start, crc});
      crc = seal_record(base + pos, crc);
      pos += fb;
    }
    bool last_part = pos == total;
    if (pos > start) {
      size_t part_bytes = pos - start;
      size_t header = 0, pad = 0;
      uint64_t batch = batch_layout(off, part_bytes, v2, block_, &header, &pad);
      for (size_t i = first_placed; i < placed_.size(); i++) placed_[i].offset += off + header;
      uint64_t next_index = placed_.back().index + 1;
      // One write of [batch header | records | padding frame]: gathered by pwritev,
      // or copied into one aligned buffer for O_DIRECT.
      if (!part_buf_.resize(static_cast<size_t>(direct ? batch : header + pad))) {
        return Status::OutOfMemory("the write buffer of a batch", static_cast<size_t>(batch));  // not reached: reserved above
      }
      uint8_t* hdr = part_buf_.data();
      const uint8_t* recs = base + start;
      if (direct) {
        memcpy(hdr + header, recs, part_bytes);
        recs = hdr + header;
      }
      uint8_t* padp = direct ? hdr + header + part_bytes : hdr + header;
      crc = encode_padding(padp, pad, next_index, crc);
      if (v2) {
        encode_batch_header(hdr, header, placed_[first_placed].index, static_cast<uint32_t>(batch),
                            static_cast<uint32_t>(placed_.size() - first_placed), prev_crc);
        ByteSpan rest[2] = {{recs, part_bytes}, {padp, pad}};
        uint64_t pad_at = header + part_bytes;
        seal_batch_header(hdr, rest, 2, seg->header_crc(), pad_at + kFrameHeaderBytes, pad_at + pad - 8);
      }
      size_t wlen = static_cast<size_t>(batch);
      auto t0 = std::chrono::steady_clock::now();
      Status s;
      if (direct) {
        s = seg->file->pwrite(hdr, wlen, off);
      } else {
        struct iovec iov[3] = {{hdr, header}, {const_cast<uint8_t*>(recs), part_bytes}, {padp, pad}};
        s = header > 0 ? seg->file->pwritev(iov, 3, off) : seg->file->pwritev(iov + 1, 2, off);
      }
      if (!s.ok()) {
        if (!*durable_any && s.code == Code::kNoSpace) {
          // A clean rejection, but some of [off, off + wlen) may have been
          // written: zero it now (space permitting), or before the next write.
          seg->dirty_end = std::max(seg->dirty_end, off + wlen);
          Status z = zero_dirty_tail(seg.get());
          if (!z.ok() && z.code != Code::kNoSpace && z.code != Code::kBusy) return z;  // not clean: poisons
        }
        return s;
      }
      if (options_.sync == SyncMode::kDsync || options_.sync == SyncMode::kDirect) {
        auto us = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0).count();
        m_syncs_.fetch_add(1, std::memory_order_relaxed);
        m_sync_hist_[bucket_of(static_cast<uint64_t>(us), kHistLatencyBuckets)].fetch_add(1, std::memory_order_relaxed);
      }
      s = sync_file(seg->file.get());
      if (!s.ok()) {
        s.code = Code::kIo;  // a failed sync is never ENOSPC-clean
        return s;
      }
      *durable_any = true;
      seg->write_offset = off + wlen;
      seg->tail_crc = crc;
      m_bytes_.fetch_add(wlen, std::memory_order_relaxed);
      m_padding_.fetch_add(pad, std::memory_order_relaxed);
    }
    if (!last_part) {
      std::string spare;
      uint64_t bytes = options_.segment_bytes;
      if (spares.used < spares.paths.size()) {
        bytes = rotations[spares.used];
        spare = spares.paths[spares.used++];
      } else {
        Status s = take_spare(&spare, bytes);  // not reached: the count above is exact
        if (!s.ok()) return s;
      }
      std::shared_ptr<Segment> next;
      Status s = rotate(load64(base + pos + 8), spare, bytes, &next);
      if (!s.ok()) {
        if (s.code == Code::kNoSpace) s.code = Code::kIo;
        *durable_any = true;  // the directory changed: not a clean rejection
        return s;
      }
      seg = std::move(next);
    }
  }
  // Durable: publish to readers.
  {
    std::lock_guard<std::mutex> lk(index_mu_);
    for (const Placed& p : placed_) {
      p.segment->note_record(p.index, p.offset, p.seed);
      p.segment->last_index = p.index;
    }
    last_index_.store(item.last_index, std::memory_order_release);
  }
  return Status::Ok();
}

Status Log::find_record(const std::shared_ptr<Segment>& seg, uint64_t index, uint64_t* offset, uint32_t* seed) {
  SparseEntry entry{};
  {
    std::lock_guard<std::mutex> lk(index_mu_);
    auto e = std::upper_bound(seg->sparse.begin(), seg->sparse.end(), index,
                              [](uint64_t i, const SparseEntry& x) { return i < x.index; });
    if (e == seg->sparse.begin()) return Status::Corruption("record not in the sparse index", seg->path, -1);
    entry = *(e - 1);
  }
  uint64_t off = entry.offset;
  uint32_t crc = entry.seed;
  uint64_t expected = entry.index;
  while (true) {
    uint8_t header[kFrameHeaderBytes];
    ssize_t n = ::pread(seg->read_fd, header, sizeof header, static_cast<off_t>(off));
    if (n != static_cast<ssize_t>(sizeof header)) return Status::Errno("pread", n < 0 ? errno : EIO, seg->path, static_cast<int64_t>(off));
    uint32_t length = load32(header + 4);
    if ((length & kFrameFlagMask) == kBatchHeaderFlag) {
      off += length & ~kFrameFlagMask;  // a batch header: not a link of the chain
      continue;
    }
    if ((length & kPadFlag) != 0) {
      crc = load32(header);
      off += length & ~kPadFlag;
      continue;
    }
    if (load64(header + 8) != expected) return Status::Corruption("unexpected record index", seg->path, static_cast<int64_t>(off));
    if (expected == index) {
      *offset = off;
      *seed = crc;
      return Status::Ok();
    }
    crc = load32(header);
    off += frame_bytes(length);
    expected++;
  }
}

Status Log::do_truncate_after(uint64_t index, bool* clean) {
  *clean = false;
  // Checked again here, where it takes effect: the call checked it against the
  // log as it was then, and operations queued before it (a truncateBefore that
  // raised the first index, a rejected batch) may have changed the range since.
  const uint64_t first = first_index_.load();
  const uint64_t last = last_index_.load();
  if (index + 1 < first || index > last) {
    *clean = true;  // nothing touched, no marker written
    return Status::Make(Code::kOutOfRange, "truncateAfter index " + std::to_string(index) + " is outside [" +
                                               std::to_string(first - 1) + ", " + std::to_string(last) +
                                               "] when it runs (operations queued before it changed the log)");
  }
  if (index == last) return Status::Ok();
  // Intent first (row H of the recovery table): a crash from here on finishes the cut at open.
  std::string marker = dir_ + "/" + kTruncateMarkerName;
  {
    // The last rotation's rename is not synced (rotate): make it durable before a
    // marker can exist, so recovery never finds a TRUNCATE marker beside a spare
    // that holds records (row S refuses that as damage).
    Status d = sync_dir(dir_);
    if (!d.ok()) return d;
    ::unlink(marker.c_str());
    std::unique_ptr<File> f;
    Status s = open_file(marker, kOpenWrite | kOpenCreate, &f);
    if (!s.ok()) {
      *clean = true;  // no marker, no segment touched
      return s;
    }
    uint8_t data[kTruncateMarkerBytes];
    encode_truncate_marker(data, index);
    s = f->pwrite(data, sizeof data, 0);
    if (s.ok()) s = f->datasync();
    if (!s.ok()) {
      // No segment was touched yet. A full disk (ENOSPC/EDQUOT) is a clean
      // rejection once the partial marker is durably gone (else a marker written
      // back later could cut acknowledged records at the next open). Any other
      // write or sync error is final (promise 4): the caller poisons.
      f.reset();
      if (s.code == Code::kNoSpace && ::unlink(marker.c_str()) == 0 && sync_dir(dir_).ok()) *clean = true;
      return s;
    }
    s = sync_dir(dir_);
    if (!s.ok()) return s;
  }
  std::unique_lock<std::shared_mutex> cut_lock(cut_mu_);
  // Whole segments above the cut go, highest first.
  while (true) {
    std::shared_ptr<Segment> victim;
    {
      std::lock_guard<std::mutex> lk(index_mu_);
      if (segments_.size() > 1 && segments_.back()->first_index > index + 1) {
        victim = segments_.back();
        segments_.pop_back();
      }
    }
    if (!victim) break;
    victim->file.reset();
    if (::unlink(victim->path.c_str()) != 0) return Status::Errno("unlink", errno, victim->path);
    m_segments_.fetch_sub(1, std::memory_order_relaxed);
    Status s = sync_dir(dir_);
    if (!s.ok()) return s;
  }
  std::shared_ptr<Segment> seg = segments_.back();
  uint64_t cut = kSegmentDataOffset;
  uint32_t seed = 0;
  if (seg->first_index == index + 1) {
    seed = seg->header_crc();
  } else {
    Status s = find_record(seg, index + 1, &cut, &seed);
    if (!s.ok()) return s;
  }
  {
    std::unique_ptr<File> f;
    Status s = open_file(seg->path, kOpenWrite, &f);
    if (!s.ok()) return s;
    uint64_t end = 0;
    uint32_t crc = 0;
    // The kept records must end with a padding frame, or recovery takes them for an
    // unfinished batch (its "committed end" is the end of the last padding frame) and
    // drops them: pad at the cut even when it lies on a block boundary inside a batch.
    // The padding overwrites only bytes of dropped records (promise 2). A cut at a batch
    // start gets a spare padding frame, which is harmless; only a segment emptied by the
    // cut needs none (its committed end is the data offset).
    bool pad = cut != kSegmentDataOffset;
    if (pad && cut % block_ != 0) {
      // Promise 2: the padding would share a block with kept, acknowledged records.
      // Rebuild the segment in a fresh zero-filled file (the prepared spare when it has
      // the size) and rename it over this one; the old file's sectors are never written.
      f.reset();
      const std::string tmp = dir_ + "/" + kCutTmpName;
      ::unlink(tmp.c_str());
      std::string spare;
      if (seg->file_bytes == options_.segment_bytes && take_spare(&spare, seg->file_bytes).ok()) {
        if (::rename(spare.c_str(), tmp.c_str()) != 0) return Status::Errno("rename", errno, tmp);
        {
          std::lock_guard<std::mutex> lk(prep_mu_);
          spare_wanted_ = true;
        }
        prep_cv_.notify_all();
      } else {
        s = create_zeroed_file(tmp, seg->file_bytes);
        if (!s.ok()) return s;
      }
      seg->file.reset();
      s = rebuild_segment_with_cut(dir_, seg->path, tmp, cut, index + 1, seed, block_, &end, &crc);
      if (!s.ok()) return s;
      m_bytes_.fetch_add(end, std::memory_order_relaxed);
      s = open_segment_files(seg.get(), true, write_flags_);
      if (!s.ok()) return s;
    } else {
      // The cut starts a block (or the segment): only blocks of dropped records are written.
      // Bytes a rejected batch left after the write offset (not yet zeroed) go with
      // the cut: nothing but zeros may follow the committed end (recovery.cc).
      s = cut_segment_tail(f.get(), cut, std::max(seg->write_offset, seg->dirty_end), pad, index + 1, seed, block_, &end,
                           &crc);
      if (!s.ok()) return s;
      if (!seg->file) {
        s = open_segment_files(seg.get(), true, write_flags_);
        if (!s.ok()) return s;
      }
    }
    seg->dirty_end = 0;
    seg->write_offset = end;
    seg->tail_crc = crc;
  }
  {
    std::lock_guard<std::mutex> lk(index_mu_);
    seg->last_index = index;
    while (!seg->sparse.empty() && seg->sparse.back().index > index) seg->sparse.pop_back();
    seg->last_sparse_index = seg->sparse.empty() ? 0 : seg->sparse.back().index;
    seg->last_sparse_offset = seg->sparse.empty() ? 0 : seg->sparse.back().offset;
    last_index_.store(index, std::memory_order_release);
  }
  if (::unlink(marker.c_str()) != 0) return Status::Errno("unlink", errno, marker);
  return sync_dir(dir_);
}

Status Log::do_truncate_before(uint64_t index) {
  // Checked again where it takes effect (see do_truncate_after).
  const uint64_t last = last_index_.load();
  if (index > last + 1) {
    return Status::Make(Code::kOutOfRange, "truncateBefore index " + std::to_string(index) +
                                               " is above the next index " + std::to_string(last + 1) +
                                               " when it runs (operations queued before it changed the log)");
  }
  while (true) {
    std::shared_ptr<Segment> victim;
    {
      std::lock_guard<std::mutex> lk(index_mu_);
      if (segments_.size() > 1 && segments_[1]->first_index <= index) {
        victim = segments_.front();
        segments_.erase(segments_.begin());
        first_index_.store(segments_.front()->first_index, std::memory_order_release);
      }
    }
    if (!victim) break;
    // Lowest first, each removal durable before the next: any crash leaves a suffix.
    if (::unlink(victim->path.c_str()) != 0) return Status::Errno("unlink", errno, victim->path);
    m_segments_.fetch_sub(1, std::memory_order_relaxed);
    Status s = sync_dir(dir_);
    if (!s.ok()) return s;
  }
  return Status::Ok();
}

// A clean rejection (nothing of it acknowledged): everything queued behind it was
// numbered after it, so it fails with it; numbering resumes after the kept log.
void Log::fail_queued_after_clean_rejection(std::deque<QueueItem>* items) {
  std::lock_guard<std::mutex> lk(mu_);
  next_index_ = last_index_.load() + 1;
  for (auto& q : queue_) {
    if (q.kind == ItemKind::kAppend) staged_bytes_ -= std::min(staged_bytes_, q.buf.size());
    items->push_back(std::move(q));
  }
  queue_.clear();
  queued_tickets_ = 0;
}

// Promise 4: poisons the log with `s` and fails everything queued; returns the poison status.
Status Log::poison_and_drain(const Status& s, std::deque<QueueItem>* items) {
  poison(s);
  std::lock_guard<std::mutex> lk(mu_);
  for (auto& q : queue_) items->push_back(std::move(q));
  queue_.clear();
  staged_bytes_ = 0;
  queued_tickets_ = 0;
  return poison_status_;
}

void Log::writer_main() {
  std::deque<QueueItem> items;
  bool closed = false;
  // Busy-poll: a closed-loop caller's next append comes one JS turn after its
  // report. Sleeping on cv_ makes that append pay two wake-ups (the futex, and
  // on a VM an idle vCPU's exit from halt), about a quarter of a 4 KiB
  // write+fdatasync here. So after posting a report the writer polls wake_seq_
  // for up to busy_poll_us before sleeping, but only while the previous wait
  // was that short: a log that is idle or written sporadically never polls
  // (each idle period costs at most one poll).
  const auto poll_window = std::chrono::microseconds(options_.busy_poll_us);
  bool poll = options_.busy_poll_us > 0;
  auto idle_since = std::chrono::steady_clock::now();
  while (!closed) {
    {
      std::unique_lock<std::mutex> lk(mu_);
      // Gate: see kGateReleaseBytes (log.h).
      const auto deadline = idle_since + poll_window;
      while (!writer_may_take()) {
        if (poll && !uring_) {
          const uint64_t seq = wake_seq_.load(std::memory_order_acquire);
          lk.unlock();
          bool changed = false;
          while (!(changed = wake_seq_.load(std::memory_order_acquire) != seq) &&
                 std::chrono::steady_clock::now() < deadline) {
            cpu_relax();
          }
          lk.lock();
          if (changed) continue;
          poll = false;  // window over: sleep
          continue;
        }
        writer_waiting_ = true;
        cv_.wait(lk);
      }
      writer_waiting_ = false;
      handoff_pending_ = false;
      items.swap(queue_);
      staged_bytes_ = 0;
      queued_tickets_ = 0;
    }
    poll = options_.busy_poll_us > 0 && std::chrono::steady_clock::now() - idle_since <= poll_window;
    auto report = std::make_unique<BatchReport>();
    Status failure;  // once set, everything after it in this iteration fails with it
    for (size_t i = 0; i < items.size(); i++) {
      QueueItem& item = items[i];
      switch (item.kind) {
        case ItemKind::kAppend: {
          if (failure.ok()) {
            bool poisoned;
            Status pst;
            {
              std::lock_guard<std::mutex> lk(mu_);
              poisoned = poisoned_;
              pst = poison_status_;
            }
            if (poisoned) {
              failure = pst;
            } else {
              bool durable_any = false;
              bool clean = false;
              Status s = write_batch(item, &durable_any, &clean);
              // A large batch's write buffer is not kept (bounded memory between batches).
              if (part_buf_.capacity() > kStagingBufferKeptBytesMax) part_buf_ = AlignedBuffer();
              if (s.ok()) {
                report->durable_ticket = item.last_ticket;
                m_appends_.fetch_add(item.count, std::memory_order_relaxed);
                m_batches_.fetch_add(1, std::memory_order_relaxed);
                m_batch_hist_[bucket_of(item.count, kHistBatchBuckets)].fetch_add(1, std::memory_order_relaxed);
              } else if (!durable_any && (clean || s.code == Code::kNoSpace)) {
                // Clean rejection (ENOSPC, or no next segment could be prepared):
                // nothing of it is acknowledged; unacknowledged bytes it left are
                // zeroed (write_batch: now, or before the segment is used again).
                failure = s;
                fail_queued_after_clean_rejection(&items);
              } else {
                failure = poison_and_drain(s, &items);
              }
            }
          }
          if (!failure.ok()) report->failed_ticket = item.last_ticket;
          break;
        }
        case ItemKind::kTruncateAfter:
        case ItemKind::kTruncateBefore: {
          Status s = failure;
          if (s.ok()) {
            std::lock_guard<std::mutex> lk(mu_);
            if (poisoned_) s = poison_status_;
          }
          if (s.ok()) {
            bool clean = false;
            s = item.kind == ItemKind::kTruncateAfter ? do_truncate_after(item.arg, &clean) : do_truncate_before(item.arg);
            if (!s.ok() && s.code == Code::kOutOfRange && item.kind == ItemKind::kTruncateBefore) {
              // Rejected before anything was touched; nothing queued after it depends on it.
            } else if (!s.ok() && clean) {
              // Clean rejection (truncateAfter on a full disk): nothing changed. Appends
              // queued after it were numbered from the cut: they fail with it, as after
              // a clean append rejection, and numbering resumes after the kept log.
              failure = s;
              fail_queued_after_clean_rejection(&items);
            } else if (!s.ok()) {
              failure = poison_and_drain(s, &items);
            }
          }
          report->commands.emplace_back(item.command_id, s);
          break;
        }
        case ItemKind::kClose:
          closed = true;
          break;
      }
    }
    if (report->failed_ticket != 0) report->failure = failure;
    // Recycle staging buffers.
    {
      std::lock_guard<std::mutex> lk(mu_);
      for (auto& item : items) {
        if (item.kind == ItemKind::kAppend && free_buffers_.size() < kStagingBuffersKept &&
            item.buf.capacity() <= kStagingBufferKeptBytesMax) {
          item.buf.clear();
          free_buffers_.push_back(std::move(item.buf));
        }
      }
    }
    items.clear();
    if (closed) {
      {
        // Bytes of a rejected batch still after the committed end must not
        // come back as records at the next open.
        bool poisoned;
        {
          std::lock_guard<std::mutex> lk(mu_);
          poisoned = poisoned_;
        }
        Segment* active = segments_.empty() ? nullptr : segments_.back().get();
        if (!poisoned && active != nullptr && active->file && active->dirty_end > active->write_offset) {
          (void)zero_dirty_tail(active);  // best effort: on failure they can reappear at the next open
        }
      }
      {
        std::lock_guard<std::mutex> lk(prep_mu_);
        prep_stop_ = true;
      }
      prep_cv_.notify_all();
      if (preparer_.joinable()) preparer_.join();
      {
        std::lock_guard<std::mutex> lk(index_mu_);
        for (auto& seg : segments_) seg->file.reset();
        // Their read fds too (a read in flight holds its segment): a closed log keeps
        // no file open until the garbage collector frees it (repeated read-only opens).
        segments_.clear();
        segments_released_ = true;
      }
      release_lock();
      report->closed = true;
    }
    report->first_index = first_index_.load();
    report->last_index = last_index_.load();
    uint64_t hi = std::max(report->durable_ticket, report->failed_ticket);
    report->ack = !report->closed && !uring_ && hi >= reported_ticket_ + 2;
    if (report->ack) {
      // Count before posting so the acknowledgement cannot arrive first.
      std::lock_guard<std::mutex> lk(mu_);
      reports_unsettled_++;
      unsettled_report_tickets_.push_back(hi - reported_ticket_);
      unsettled_tickets_ += hi - reported_ticket_;
    }
    if (hi != 0) reported_ticket_ = hi;
    report_(std::move(report));
    idle_since = std::chrono::steady_clock::now();
  }
}

}  // namespace tidemark
