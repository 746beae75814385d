// Recovery: the torn-versus-corrupt rule.
//
// A segment is scanned frame by frame from offset 4096, each frame's CRC
// chained from the previous one (the first from the segment header's CRC).
// A batch always ends with a padding frame on a block boundary, so the end of
// the last complete batch ("committed end") is known. The scan of a segment
// stops at the first frame that is all zero ("zero"), does not verify ("bad"),
// or runs off the file ("eof").
//
// Decision table (one test per row in test/log/recovery.test.ts):
//
//  row | where                      | what the scan finds                                  | verdict
//  ----+----------------------------+------------------------------------------------------+--------------------------------
//  A   | any segment                | header bad (magic, version, CRC, or index != name)   | TM_CORRUPTION (offset 0)
//  B   | sealed (not last) segment  | header all zero                                      | TM_CORRUPTION (offset 0)
//  C   | last segment               | header all zero                                      | empty segment; any bytes after
//      |                            |                                                      | it are an unacknowledged first
//      |                            |                                                      | batch: zeroed (torn)
//  D   | sealed segment             | stops (bad/zero/eof) before its committed end, or    | TM_CORRUPTION at the stop offset
//      |                            | has a bad frame                                      |
//  E   | any two segments in order  | first index of a segment != last index of the        | TM_CORRUPTION (offset 4096 of the
//      |                            | previous + 1                                         | later segment)
//  F   | last segment               | clean: zero frame at the committed end, and only     | nothing to do
//      |                            | zero bytes after                                     |
//  G   | last segment               | bad frame or records after the committed end, and    | torn tail: the incomplete batch is
//      |                            | no valid frame after the stop (rows H, I)            | dropped: bytes from the committed
//      |                            |                                                      | end are zeroed durably, log opens
//  H   | last segment               | a bad frame at P whose stored CRC, used as the seed, | TM_CORRUPTION at P (valid data
//      |                            | verifies the frame right after it                    | after a bad record)
//  I   | last segment               | a bad or zero frame at P, and at some later 512-byte | TM_CORRUPTION at P (valid data
//      |                            | boundary B a padding trailer (crc, "TMPD") at B-8    | after a bad record)
//      |                            | whose CRC verifies a frame at B with index > last    |
//  J   | TRUNCATE marker present    | (a truncateAfter(i) was interrupted)                 | segments above i+1 removed,
//      |                            |                                                      | records > i cut as in
//      |                            |                                                      | truncateAfter, marker removed
//
// "Committed end" also drops complete records after the last padding: they
// belong to a batch whose write did not finish, so it was never acknowledged.
#include "recovery.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "crc32c.h"
#include "limits.h"
#include "record.h"

namespace tidemark {

void encode_truncate_marker(uint8_t* out, uint64_t last_index) {
  memset(out, 0, kTruncateMarkerBytes);
  store64(out, kTruncateMarkerMagic);
  store64(out + 8, last_index);
  store32(out + 16, crc32c_extend(0, out, 16));
}

bool decode_truncate_marker(const uint8_t* data, size_t size, uint64_t* last_index) {
  if (size != kTruncateMarkerBytes) return false;
  if (load64(data) != kTruncateMarkerMagic) return false;
  if (load32(data + 16) != crc32c_extend(0, data, 16)) return false;
  *last_index = load64(data + 8);
  return true;
}

namespace {

// A read window over a file: get(offset, n) returns a pointer to n bytes, or
// nullptr past the end of the file.
class Window {
 public:
  Window(int fd, std::string path, uint64_t file_bytes) : fd_(fd), path_(std::move(path)), file_bytes_(file_bytes) {}

  Status get(uint64_t offset, size_t n, const uint8_t** out) {
    *out = nullptr;
    if (offset + n > file_bytes_) return Status::Ok();
    if (offset >= base_ && offset + n <= base_ + len_) {
      *out = buf_.data() + (offset - base_);
      return Status::Ok();
    }
    size_t want = static_cast<size_t>(std::min<uint64_t>(std::max(n, kScanWindowBytes), file_bytes_ - offset));
    buf_.resize(want);
    size_t done = 0;
    while (done < want) {
      ssize_t r = ::pread(fd_, buf_.data() + done, want - done, static_cast<off_t>(offset + done));
      if (r < 0) {
        if (errno == EINTR) continue;
        return Status::Errno("pread", errno, path_, static_cast<int64_t>(offset + done));
      }
      if (r == 0) break;
      done += static_cast<size_t>(r);
    }
    base_ = offset;
    len_ = done;
    if (done < n) return Status::Errno("pread", EIO, path_, static_cast<int64_t>(offset));
    *out = buf_.data();
    return Status::Ok();
  }

 private:
  int fd_;
  std::string path_;
  uint64_t file_bytes_;
  std::vector<uint8_t> buf_;
  uint64_t base_ = 0;
  size_t len_ = 0;
};

struct ScanResult {
  uint64_t stop = 0;            // offset where the scan stopped
  FrameCheck stop_frame;        // what is there (kZero, kBad, or kRecord above the truncation point)
  bool eof = false;             // ran off the file
  bool cut_at_stop = false;     // stopped at a record above the truncation point
  uint64_t committed_end = 0;   // end of the last padding frame (or data offset)
  uint64_t committed_last = 0;  // last record index before committed_end
  uint32_t committed_crc = 0;   // chain seed at committed_end
  uint64_t stop_last = 0;       // last valid record index before stop
  uint32_t stop_crc = 0;        // chain seed at stop
};

Status scan_segment(Window* w, Segment* seg, uint32_t seed, uint64_t stop_after, ScanResult* r) {
  uint64_t off = kSegmentDataOffset;
  uint64_t expected = seg->first_index;
  r->committed_end = off;
  r->committed_last = expected - 1;
  r->committed_crc = seed;
  std::vector<SparseEntry> pending;  // sparse entries of the current (uncommitted) batch
  uint64_t last_sparse_index = 0, last_sparse_offset = 0;
  bool have_sparse = false;
  while (true) {
    const uint8_t* p = nullptr;
    if (off + kFrameHeaderBytes > seg->file_bytes) {
      r->eof = true;
      break;
    }
    Status s = w->get(off, kFrameHeaderBytes, &p);
    if (!s.ok()) return s;
    uint32_t length = load32(p + 4);
    size_t need = kFrameHeaderBytes;
    if ((length & kPadFlag) != 0) {
      need = length & ~kPadFlag;
    } else if (length <= kRecordBytesMax) {
      need = frame_bytes(length);
    }
    size_t avail = static_cast<size_t>(seg->file_bytes - off);
    FrameCheck f;
    if (need > avail || need < kFrameHeaderBytes) {
      f = check_frame(p, kFrameHeaderBytes, seed, expected, kRecordBytesMax);
      if (f.kind != FrameKind::kZero) f.kind = FrameKind::kBad;
    } else {
      s = w->get(off, need, &p);
      if (!s.ok()) return s;
      f = check_frame(p, need, seed, expected, kRecordBytesMax);
    }
    if (f.kind == FrameKind::kRecord && f.index > stop_after) {
      r->cut_at_stop = true;
      r->stop = off;
      r->stop_frame = f;
      break;
    }
    if (f.kind == FrameKind::kZero || f.kind == FrameKind::kBad) {
      r->stop = off;
      r->stop_frame = f;
      break;
    }
    if (f.kind == FrameKind::kRecord) {
      if (!have_sparse || f.index - last_sparse_index >= kSparseEveryRecords || off - last_sparse_offset >= kSparseEveryBytes) {
        pending.push_back(SparseEntry{f.index, off, seed});
        last_sparse_index = f.index;
        last_sparse_offset = off;
        have_sparse = true;
      }
      expected = f.index + 1;
      r->stop_last = f.index;
    }
    seed = f.crc;
    off += f.size;
    r->stop_crc = seed;
    if (f.kind == FrameKind::kPadding) {
      r->committed_end = off;
      r->committed_last = expected - 1;
      r->committed_crc = seed;
      seg->sparse.insert(seg->sparse.end(), pending.begin(), pending.end());
      pending.clear();
    }
  }
  if (r->eof) r->stop = off;
  if (r->stop_last == 0) r->stop_last = seg->first_index - 1;
  if (r->stop == kSegmentDataOffset) r->stop_crc = r->committed_crc;
  if (r->cut_at_stop) {
    // Records up to the cut are complete batches (they were durable when the
    // truncation began): keep them all.
    seg->sparse.insert(seg->sparse.end(), pending.begin(), pending.end());
  }
  return Status::Ok();
}

// Rows H and I: is there a valid frame after the bad/zero frame at `stop`?
Status valid_after(Window* w, Segment* seg, const ScanResult& r, bool* found) {
  *found = false;
  const FrameCheck& bad = r.stop_frame;
  const uint8_t* p = nullptr;
  // Row H: the bad frame's own stored CRC seeds the next frame.
  if (bad.kind == FrameKind::kBad && bad.size > 0 && r.stop + bad.size + kFrameHeaderBytes <= seg->file_bytes) {
    uint64_t q = r.stop + bad.size;
    Status s = w->get(q, kFrameHeaderBytes, &p);
    if (!s.ok()) return s;
    uint32_t length = load32(p + 4);
    size_t need = (length & kPadFlag) != 0 ? (length & ~kPadFlag) : (length <= kRecordBytesMax ? frame_bytes(length) : 0);
    if (need >= kFrameHeaderBytes && q + need <= seg->file_bytes) {
      s = w->get(q, need, &p);
      if (!s.ok()) return s;
      FrameCheck f = check_frame(p, need, bad.crc, load64(p + 8), kRecordBytesMax);
      if ((f.kind == FrameKind::kRecord || f.kind == FrameKind::kPadding) && f.index > r.stop_last) {
        *found = true;
        return Status::Ok();
      }
    }
  }
  // Row I: a padding trailer at a later block boundary seeds the frame after it.
  for (uint64_t b = (r.stop / kBlockBytesMin + 1) * kBlockBytesMin; b + kFrameHeaderBytes <= seg->file_bytes;
       b += kBlockBytesMin) {
    Status s = w->get(b - 8, 8 + kFrameHeaderBytes, &p);
    if (!s.ok()) return s;
    if (load32(p + 4) != kPadMagic) continue;
    uint32_t seed = load32(p);
    const uint8_t* h = p + 8;
    uint32_t length = load32(h + 4);
    uint64_t index = load64(h + 8);
    if (index <= r.stop_last) continue;
    size_t need = (length & kPadFlag) != 0 ? (length & ~kPadFlag) : (length <= kRecordBytesMax ? frame_bytes(length) : 0);
    if (need < kFrameHeaderBytes || b + need > seg->file_bytes) continue;
    s = w->get(b, need, &h);
    if (!s.ok()) return s;
    FrameCheck f = check_frame(h, need, seed, index, kRecordBytesMax);
    if (f.kind == FrameKind::kRecord || f.kind == FrameKind::kPadding) {
      *found = true;
      return Status::Ok();
    }
  }
  return Status::Ok();
}

// Offset just past the last non-zero byte in [from, file end), or `from`.
Status dirty_end(Window* w, const Segment& seg, uint64_t from, uint64_t* out) {
  *out = from;
  for (uint64_t off = from; off < seg.file_bytes;) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(kZeroChunkBytes, seg.file_bytes - off));
    const uint8_t* p = nullptr;
    Status s = w->get(off, n, &p);
    if (!s.ok()) return s;
    for (size_t i = n; i > 0; i--) {
      if (p[i - 1] != 0) {
        *out = off + i;
        break;
      }
    }
    off += n;
  }
  return Status::Ok();
}

Status read_small_file(const std::string& path, std::vector<uint8_t>* out, bool* exists) {
  *exists = false;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return Status::Ok();
    return Status::Errno("open", errno, path);
  }
  *exists = true;
  out->resize(64);
  ssize_t n = ::pread(fd, out->data(), out->size(), 0);
  int err = errno;
  ::close(fd);
  if (n < 0) return Status::Errno("pread", err, path);
  out->resize(static_cast<size_t>(n));
  return Status::Ok();
}

}  // namespace

Status recover(const RecoveryOptions& options, Recovered* out) {
  const std::string& dir = options.dir;
  // Directory listing: segments, leftovers (*.tmp), the truncation marker.
  std::vector<uint64_t> firsts;
  {
    DIR* d = ::opendir(dir.c_str());
    if (d == nullptr) return Status::Errno("opendir", errno, dir);
    bool removed = false;
    while (struct dirent* e = ::readdir(d)) {
      std::string name = e->d_name;
      uint64_t first = 0;
      if (parse_segment_name(name, &first)) {
        firsts.push_back(first);
      } else if (name.size() > 4 && name.compare(name.size() - 4, 4, ".tmp") == 0) {
        // A segment being prepared when the process stopped: never part of the log.
        if (::unlink((dir + "/" + name).c_str()) != 0 && errno != ENOENT) {
          int err = errno;
          ::closedir(d);
          return Status::Errno("unlink", err, dir + "/" + name);
        }
        removed = true;
      }
    }
    ::closedir(d);
    if (removed) {
      Status s = sync_dir(dir);
      if (!s.ok()) return s;
    }
  }
  std::sort(firsts.begin(), firsts.end());

  // Row J: an interrupted truncateAfter.
  const std::string marker_path = dir + "/" + kTruncateMarkerName;
  uint64_t stop_after = UINT64_MAX;
  bool marker = false;
  {
    std::vector<uint8_t> data;
    bool exists = false;
    Status s = read_small_file(marker_path, &data, &exists);
    if (!s.ok()) return s;
    if (exists) {
      marker = true;
      uint64_t last = 0;
      // A marker that does not verify was never durable, so no truncation step ran.
      if (decode_truncate_marker(data.data(), data.size(), &last)) stop_after = last;
    }
  }
  if (stop_after != UINT64_MAX) {
    // Remove segments wholly above the cut, highest first (any prefix of this is a valid log).
    while (firsts.size() > 1 && firsts.back() > stop_after + 1) {
      std::string path = dir + "/" + segment_name(firsts.back());
      if (::unlink(path.c_str()) != 0 && errno != ENOENT) return Status::Errno("unlink", errno, path);
      firsts.pop_back();
      Status s = sync_dir(dir);
      if (!s.ok()) return s;
    }
  }

  out->segments.clear();
  for (size_t i = 0; i < firsts.size(); i++) {
    bool last = i + 1 == firsts.size();
    auto seg = std::make_shared<Segment>();
    seg->first_index = firsts[i];
    seg->path = dir + "/" + segment_name(firsts[i]);
    seg->last_index = seg->first_index - 1;
    Status s = open_segment_files(seg.get(), false, 0);
    if (!s.ok()) return s;
    struct stat st;
    if (::fstat(seg->read_fd, &st) != 0) return Status::Errno("fstat", errno, seg->path);
    seg->file_bytes = static_cast<uint64_t>(st.st_size);
    if (seg->file_bytes < kSegmentBytesMin || seg->file_bytes % kSegmentAlignBytes != 0) {
      return Status::Corruption("segment file has a bad size (" + std::to_string(seg->file_bytes) + " bytes)", seg->path,
                                static_cast<int64_t>(seg->file_bytes));
    }
    Window w(seg->read_fd, seg->path, seg->file_bytes);
    const uint8_t* h = nullptr;
    s = w.get(0, kSegmentHeaderBytes, &h);
    if (!s.ok()) return s;
    bool zero_header = std::all_of(h, h + kSegmentHeaderBytes, [](uint8_t b) { return b == 0; });
    if (i > 0) {
      const Segment& prev = *out->segments.back();
      if (seg->first_index != prev.last_index + 1) {
        // Row E.
        return Status::Corruption("index gap: previous segment ends at index " + std::to_string(prev.last_index) +
                                      " but this one starts at " + std::to_string(seg->first_index),
                                  seg->path, static_cast<int64_t>(kSegmentDataOffset));
      }
    }
    if (zero_header) {
      if (!last) return Status::Corruption("sealed segment has no header", seg->path, 0);  // row B
      // Row C: an empty last segment; whatever follows was an unacknowledged first batch.
      uint64_t dirty = 0;
      s = dirty_end(&w, *seg, kSegmentHeaderBytes, &dirty);
      if (!s.ok()) return s;
      seg->write_offset = kSegmentDataOffset;
      seg->tail_crc = 0;
      seg->header_written = false;
      if (dirty > kSegmentHeaderBytes) {
        std::unique_ptr<File> f;
        s = open_file(seg->path, kOpenWrite, &f);
        if (!s.ok()) return s;
        uint64_t end = 0;
        uint32_t crc = 0;
        s = cut_segment_tail(f.get(), kSegmentDataOffset, dirty, false, seg->first_index, 0, options.block, &end, &crc);
        if (!s.ok()) return s;
        out->repaired = true;
      }
      out->segments.push_back(std::move(seg));
      continue;
    }
    // Row A.
    if (load32(h + 4) != kSegmentMagic) return Status::Corruption("segment header has a bad magic number", seg->path, 0);
    if (load32(h + 8) != kSegmentVersion) {
      return Status::Corruption("segment header has unknown version " + std::to_string(load32(h + 8)), seg->path, 0);
    }
    if (segment_header_crc(h) != load32(h)) return Status::Corruption("segment header checksum mismatch", seg->path, 0);
    if (load64(h + 16) != seg->first_index) {
      return Status::Corruption("segment header says first index " + std::to_string(load64(h + 16)) +
                                    " but the file name says " + std::to_string(seg->first_index),
                                seg->path, 16);
    }
    seg->header_written = true;
    seg->header_nonce = load64(h + 24);
    uint32_t seed = load32(h);

    ScanResult r;
    s = scan_segment(&w, seg.get(), seed, last ? stop_after : UINT64_MAX, &r);
    if (!s.ok()) return s;
    if (!last) {
      // Row D.
      if (r.stop_frame.kind == FrameKind::kBad && !r.eof) {
        return Status::Corruption("bad record in a sealed segment (checksum, length or index mismatch)", seg->path,
                                  static_cast<int64_t>(r.stop));
      }
      if (r.stop != r.committed_end) {
        return Status::Corruption("sealed segment ends inside a batch", seg->path, static_cast<int64_t>(r.stop));
      }
      seg->last_index = r.committed_last;
      seg->write_offset = r.committed_end;
      seg->tail_crc = r.committed_crc;
      if (seg->last_index < seg->first_index) {
        return Status::Corruption("sealed segment holds no records", seg->path, static_cast<int64_t>(kSegmentDataOffset));
      }
      out->segments.push_back(std::move(seg));
      continue;
    }

    // The last segment.
    uint64_t keep_end;      // bytes before this are kept
    uint64_t keep_last;     // last record kept
    uint32_t keep_crc;      // chain seed at keep_end
    bool pad = false;
    if (r.cut_at_stop) {
      // Row J: finish the interrupted truncation at the first record above it.
      keep_end = r.stop;
      keep_last = r.stop_last;
      keep_crc = r.stop_crc;
      pad = keep_end % options.block != 0;
    } else {
      if (!r.eof) {
        bool found = false;
        s = valid_after(&w, seg.get(), r, &found);
        if (!s.ok()) return s;
        if (found) {
          // Rows H, I.
          return Status::Corruption(std::string(r.stop_frame.kind == FrameKind::kZero ? "zeroed" : "bad") +
                                        " record with valid records after it (index " + std::to_string(r.stop_last + 1) + ")",
                                    seg->path, static_cast<int64_t>(r.stop));
        }
      }
      // Rows F, G.
      keep_end = r.committed_end;
      keep_last = r.committed_last;
      keep_crc = r.committed_crc;
      pad = keep_end % options.block != 0;
    }
    uint64_t dirty = 0;
    s = dirty_end(&w, *seg, keep_end, &dirty);
    if (!s.ok()) return s;
    seg->last_index = keep_last;
    seg->write_offset = keep_end;
    seg->tail_crc = keep_crc;
    // Sparse entries above the kept range go.
    while (!seg->sparse.empty() && seg->sparse.back().index > keep_last) seg->sparse.pop_back();
    if (dirty > keep_end || pad) {
      std::unique_ptr<File> f;
      s = open_file(seg->path, kOpenWrite, &f);
      if (!s.ok()) return s;
      uint64_t end = 0;
      uint32_t crc = 0;
      s = cut_segment_tail(f.get(), keep_end, dirty, pad, keep_last + 1, keep_crc, options.block, &end, &crc);
      if (!s.ok()) return s;
      seg->write_offset = end;
      seg->tail_crc = crc;
      out->repaired = true;
    }
    if (!seg->sparse.empty()) {
      seg->last_sparse_index = seg->sparse.back().index;
      seg->last_sparse_offset = seg->sparse.back().offset;
    }
    out->segments.push_back(std::move(seg));
  }
  for (auto& seg : out->segments) {
    if (!seg->sparse.empty()) {
      seg->last_sparse_index = seg->sparse.back().index;
      seg->last_sparse_offset = seg->sparse.back().offset;
    }
  }

  if (marker) {
    if (::unlink(marker_path.c_str()) != 0 && errno != ENOENT) return Status::Errno("unlink", errno, marker_path);
    Status s = sync_dir(dir);
    if (!s.ok()) return s;
    out->repaired = true;
  }
  if (out->segments.empty()) {
    out->first_index = 1;
    out->last_index = 0;
  } else {
    out->first_index = out->segments.front()->first_index;
    out->last_index = out->segments.back()->last_index;
  }
  return Status::Ok();
}

}  // namespace tidemark
