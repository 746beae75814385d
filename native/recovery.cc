// Recovery: the torn-versus-corrupt rule.
//
// A segment is scanned frame by frame from offset 4096, each frame's CRC
// chained from the previous one (the first from the segment header's CRC).
// A batch always ends with a padding frame on a block boundary, so the end of
// the last complete batch ("committed end") is known. In a version 2 segment
// every batch starts, at the committed end, with a batch header (record.h) that
// must verify (its own CRC seeded with the segment header's CRC, first index =
// the next index, previous CRC = the chain so far, size within the segment); the
// batch's records may not outnumber or outrun it, and its padding may not end
// after it (it may end before: a truncateAfter cut). The header is not a link of
// the chain: the first record chains from the previous CRC. The scan of a
// segment stops at the first frame (or batch header) that is all zero ("zero"),
// does not verify ("bad"), or runs off the file ("eof").
//
// Decision table (one test per row: test/log/recovery.test.ts for the shared
// rows and the version 1 rows, test/log/recovery-v2.test.ts for rows P to U):
//
//  row | where                      | what the scan finds                                  | verdict
//  ----+----------------------------+------------------------------------------------------+--------------------------------
//  A   | any segment                | header bad: all zero, magic, version (not 1, 2, 3),  | TM_CORRUPTION (offset 0, or 16
//      |                            | CRC, or first index != the file name's (version 3,   | for the index)
//      |                            | an open header: first index != 0)                    |
//  S   | spare.wal.ready            | bytes after its first 4 KiB all zero (or no file)    | a spare, not part of the log
//      |                            | data after them and a valid open (v3) header, no     | the last segment (first index:
//      |                            | TRUNCATE marker, a named segment before it           | the last named one's last + 1;
//      |                            |                                                      | that one is judged as sealed, or
//      |                            |                                                      | dropped when empty: the spare
//      |                            |                                                      | replaced it), judged by rows D,
//      |                            |                                                      | P-U; records kept: renamed to its
//      |                            |                                                      | segment name, directory synced;
//      |                            |                                                      | none (a torn first batch): zeroed,
//      |                            |                                                      | a spare again, and recovery runs
//      |                            |                                                      | again without it (the segment
//      |                            |                                                      | before it is the last)
//  S'  | spare.wal.ready            | data after its first 4 KiB, and a header that is not | TM_CORRUPTION (offset 0; 4096
//      |                            | a valid open one, a bad size, a TRUNCATE marker, or  | beside a marker or with no
//      |                            | no named segment                                     | segment before it)
//  B   | sealed (not last) segment  | a bad frame or batch header, or the scan stops       | TM_CORRUPTION at that offset
//      |                            | (zero/eof) anywhere but right after a padding frame  | (eof: at the unclosed batch's
//      |                            | (its committed end)                                  | start, inside the file)
//  C   | any two segments in order  | first index of a segment != last index of the        | TM_CORRUPTION (offset 4096 of the
//      |                            | previous + 1                                         | later segment)
//  D   | last segment               | clean: zero frame at the committed end, and only     | nothing to do
//      |                            | zero bytes after it                                  |
//  --- last segment in format version 2 (batch headers), unless rows H, H' apply:
//  P   | v2 last segment            | a bad or zero frame or batch header at X, and at a   | TM_CORRUPTION at X (a later batch
//      |                            | later 4 KiB boundary a batch header that verifies    | exists, so X's batch was synced)
//      |                            | on its own, first index > last valid record (under   |
//      |                            | a TRUNCATE marker at i: its records all <= i)        |
//  Q'  | v2 last segment, not P     | the last batch's header does not verify, the last    | torn at a byte inside the header:
//      |                            | byte of its first sector is zero, and every byte     | the batch is dropped (as row T)
//      |                            | after that sector, to the segment's end, is zero     |
//  Q   | v2 last segment, not P, Q' | the last batch's first sector (at the committed end  | TM_CORRUPTION at the batch start
//      |                            | B) is not all zero and its header does not verify    | (a torn write leaves a sector
//      |                            | or does not continue the chain (index, previous CRC) | written or zero, never wrong)
//  U   | v2 last segment, not P, Q  | the first sector of the last batch that is written   | torn at a byte inside that
//      |                            | but differs from its CRC ends with a zero byte, and  | sector: the batch is dropped
//      |                            | every later byte of the batch is zero                | (as row T)
//  R   | v2 last segment, not P, Q, | a sector of the last batch that is not all zero and  | TM_CORRUPTION at the first frame
//      | U                          |                                                      |
//      |                            | differs from its CRC in the header (sector 0: the    | overlapping the first such sector
//      |                            | bytes after the header, against the tail CRC)        | (at or after the scan's stop)
//  T   | v2 last segment, not P, Q, | the last batch's first sector is all zero, or every  | torn tail: the batch is dropped:
//      | R                          | sector differing from its CRC is all zero            | bytes from B are zeroed durably
//  --- last segment in format version 1 (no batch headers), unless rows H, H' apply:
//  E   | v1 last segment            | a bad frame, or records after the committed end, or  | torn tail: the incomplete batch is
//      |                            | non-zero bytes after it, and no valid frame after    | dropped: bytes from the committed
//      |                            | the stop (rows F, G), and not row E'                 | end are zeroed durably, log opens
//  F   | v1 last segment            | a damaged padding frame at P, and the frame at its   | TM_CORRUPTION at P (a later batch
//      |                            | end verifies from its stored CRC or from the CRC     | exists, so P's batch was synced)
//      |                            | recomputed over its header                           |
//  G   | v1 last segment            | a bad or zero frame at P, and at some later 512-byte | TM_CORRUPTION at P (a later batch
//      |                            | boundary B a frame that verifies from a seed found   | exists, so P's batch was synced)
//      |                            | before B (padding trailer at B-8, or the CRC of a    |
//      |                            | padding header ending at B), index > last valid      |
//  G'  | v1 last segment            | a bad or zero frame at P, no seed for row G (the     | TM_CORRUPTION at P (same reason)
//      |                            | batch before B, or its padding, zeroed), and at some |
//      |                            | later 4 KiB boundary B a record with index > last    |
//      |                            | valid whose next frame verifies chained from the     |
//      |                            | record's stored CRC and carries the next index       |
//  E'  | v1 last segment, not rows  | a bad record at P after the committed end; the       | TM_CORRUPTION at P (the batch
//      | F, G, G'                   | frames after it (one record or more, then a padding  | reached the disk whole: damage,
//      |                            | frame) verify chained from P's stored CRC (next      | not a torn write; rows F, G, G'
//      |                            | index = P's expected + 1), the padding frame ends    | checked first)
//      |                            | on a 512-byte boundary, no record is above a         |
//      |                            | TRUNCATE marker's index, and no 512-byte sector of   |
//      |                            | [committed end, padding end) is all zero (sectors    |
//      |                            | inside the padding's zero interior excepted)         |
//  --- any version:
//  H   | TRUNCATE marker present    | (a truncateAfter(i) was interrupted)                 | segments above i+1 removed,
//      |                            |                                                      | records > i cut as in
//      |                            |                                                      | truncateAfter, marker removed
//  H'  | TRUNCATE marker, last      | records up to i all verify, none above, then a bad,  | a torn cut, not rows P, F, G: keep
//      | segment                    | zero or stale frame (the cut's own writes, torn)     | records <= i, finish the cut
//
// Row H and truncateAfter write that padding frame without rewriting a block that
// holds kept records (promise 2): when the cut lies inside such a block the segment
// is rebuilt in a fresh file and renamed over the old one (rebuild_segment_with_cut);
// a crash before the rename leaves the old segment and the marker (row H again),
// one after it a segment that already ends at the cut.
// Row H and truncateAfter leave the kept records followed by a padding frame,
// unless the cut is already a committed end (a batch start, or the data offset
// of a segment the cut empties): also when the cut lies on a block boundary
// inside a batch, else the next open would take the kept records for an
// unfinished batch (rows E, T) and drop them. In version 2 a cut inside a batch
// leaves its header in place (its count and size now overstate the batch: the
// scan allows a padding frame that ends early), and a cut at a batch's first
// record leaves the header followed by the padding frame alone.
//
// "Committed end": the end of the last padding frame. Complete records after it
// belong to a batch whose write did not finish, so it was never acknowledged:
// rows T and E drop them too. The writer starts a batch only after the previous
// one is durable, so damage followed by a later batch is corruption (rows P, F,
// G). Segments are pre-written with zeros, bytes after the committed end are
// never left non-zero (a rejected batch's bytes are zeroed before anything else
// is written, sealed or cut; recovery and truncateAfter zero what they drop), and
// a disk persists whole 512-byte sectors: after a torn write, each sector of the
// last batch holds what was written or zeros. Version 2 makes that exact (rows Q,
// R, T): a sector written but wrong is damage whatever else the batch holds, unless
// it is where a write torn at a byte stopped (rows Q', U): a disk that tears a
// sector leaves its first bytes new and the rest as they were (zero), and a batch
// written whole ends with its padding trailer, whose last byte is never zero, so
// a batch whose damaged sector ends in zero with only zeros after it never
// finished its write and was never acknowledged (damage elsewhere, or written
// sectors after it, is still row R or Q). Where a damaged last batch passes
// neither rule but the operator knows it was a tear, `repairTail` drops it
// explicitly and reports its indexes (see recover()); its
// verdict covers the cases the version 1 rules could only guess at (damage to the
// batch's last record, a length field, the padding frame, two frames, a payload
// holding an all-zero sector). Limits of version 2: a sector zeroed after it was
// written reads as unwritten (row T); when the batch's first sector is zero, its
// other sectors cannot be judged (no header) and the batch is dropped; a sector
// whose CRC entry lies in a sector that reads zero (headers of batches over 120
// sectors span several sectors) cannot be judged and counts as unwritten; bytes
// no frame check covers (padding interior and trailer, sector CRCs after the
// header's first sector) are judged only when the scan stops in the last batch.
// Version 1 (rows E, E', F, G, G') judges by evidence: segments are pre-written
// with zeros, so a sector a torn write did not persist reads all zero; a batch
// whose frames all chain (around the bad record, from its stored CRC) to a
// verifying padding frame and that holds no all-zero sector was written whole,
// and the bad record is corruption (row E'). Its limits: a record payload
// holding a whole 512-byte sector of zeros makes row E' fall back to row E; so
// does damage to a length field, to the padding frame itself, to two frames of
// the batch, or to the batch's last record. Row G' looks only at 4 KiB
// boundaries and needs two chained frames; still, a torn last batch that lost a
// sector but kept a record starting on a 4 KiB boundary and the frame after it
// is reported as corruption (a false alarm, never a silent loss).
// With sync 'none' the ordering above does not hold: after a power loss such a
// log may report TM_CORRUPTION. Under a TRUNCATE marker at i, frames above i are
// evidence for none of rows P, F, G, G'. Every segment file gets its header
// (synced) before it is renamed to its name, so a bad header is never a torn
// write (row A). Row S: a rotation renames the prepared spare, whose open header
// and ready name the preparer synced, without syncing the directory; a crash may
// leave the newest segment under the spare's name, and only data written by the
// writer ever follows a spare's first 4 KiB (the preparer writes zeros there), so
// such data is a segment of the log or damage, never left over.
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
  std::vector<SparseEntry> uncommitted;  // sparse entries after the committed end (read-only damage reports)
};

Status scan_segment(Window* w, Segment* seg, uint32_t seed, uint64_t stop_after, ScanResult* r) {
  const bool v2 = seg->version >= 2;
  const uint32_t segment_seed = seed;
  uint64_t batch_end = 0;      // v2: end of the current batch as its header declares
  uint64_t batch_left = 0;     // v2: records its header still allows
  uint64_t off = kSegmentDataOffset;
  uint64_t expected = seg->first_index;
  r->committed_end = off;
  r->committed_last = expected - 1;
  r->committed_crc = seed;
  r->stop_crc = seed;
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
    if (v2 && off == r->committed_end) {
      // A batch starts here: its header, or zeros (the end of the log).
      FrameCheck h;
      if (std::all_of(p, p + kFrameHeaderBytes, [](uint8_t x) { return x == 0; })) {
        h.kind = FrameKind::kZero;
        r->stop = off;
        r->stop_frame = h;
        break;
      }
      size_t room = static_cast<size_t>(seg->file_bytes - off);
      size_t avail = std::min(room, kSectorBytes);
      s = w->get(off, avail, &p);
      if (!s.ok()) return s;
      BatchHeader bh;
      if (!check_batch_header(p, avail, room, segment_seed, &bh) || bh.first_index != expected || bh.prev_crc != seed) {
        r->stop = off;
        r->stop_frame = h;  // kBad
        break;
      }
      batch_end = off + bh.batch_bytes;
      batch_left = bh.count;
      off += bh.header_bytes;
      r->stop_crc = seed;  // the chain seed after the header (not a link of the chain)
      continue;
    }
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
    if (v2 && f.kind == FrameKind::kRecord && (batch_left == 0 || off + f.size + kPadFrameMinBytes > batch_end)) {
      f.kind = FrameKind::kBad;  // more records than the batch header says, or past its end
    } else if (v2 && f.kind == FrameKind::kPadding && off + f.size > batch_end) {
      f.kind = FrameKind::kBad;  // ends after the batch (one cut by truncateAfter ends before)
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
      if (batch_left > 0) batch_left--;
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
  if (r->cut_at_stop || stop_after != UINT64_MAX) {
    // Records up to the cut are complete batches (they were durable when the
    // truncation began): keep them all. Under a TRUNCATE marker the scan may also
    // stop at a torn cut (row H'); recover() pops entries above what it keeps.
    seg->sparse.insert(seg->sparse.end(), pending.begin(), pending.end());
  }
  if (!(r->cut_at_stop || stop_after != UINT64_MAX)) r->uncommitted = std::move(pending);
  return Status::Ok();
}

// Bytes a frame claims to occupy, or 0 when its length field is implausible.
size_t claimed_size(const uint8_t* header) {
  uint32_t length = load32(header + 4);
  if ((length & kPadFlag) != 0) {
    size_t total = length & ~kPadFlag;
    return total >= kPadFrameMinBytes && total % kFrameAlignBytes == 0 ? total : 0;
  }
  return length <= kRecordBytesMax ? frame_bytes(length) : 0;
}

// Does a frame at `q` verify from `seed` with an index above `last`?
Status verifies_at(Window* w, const Segment& seg, uint64_t q, uint32_t seed, uint64_t last, uint64_t cap, bool* ok) {
  *ok = false;
  const uint8_t* p = nullptr;
  if (q + kFrameHeaderBytes > seg.file_bytes) return Status::Ok();
  Status s = w->get(q, kFrameHeaderBytes, &p);
  if (!s.ok()) return s;
  size_t need = claimed_size(p);
  if (need == 0 || q + need > seg.file_bytes) return Status::Ok();
  s = w->get(q, need, &p);
  if (!s.ok()) return s;
  uint64_t index = load64(p + 8);
  if (index <= last) return Status::Ok();
  FrameCheck f = check_frame(p, need, seed, index, kRecordBytesMax);
  // A padding frame carries the next index: the records it closes end at index - 1.
  uint64_t top = f.kind == FrameKind::kPadding ? index - 1 : index;
  *ok = (f.kind == FrameKind::kRecord || f.kind == FrameKind::kPadding) && top <= cap;
  return Status::Ok();
}

// Row G': does the frame at block boundary `b` prove itself, that is, is it a
// record with an index in (last, cap] whose successor frame (the next record, or
// the batch's padding frame: every batch has at least two frames) verifies when
// chained from the record's stored CRC and carries the next index?
Status proves_itself(Window* w, const Segment& seg, uint64_t b, uint64_t last, uint64_t cap, bool* ok) {
  *ok = false;
  const uint8_t* p = nullptr;
  if (b + kFrameHeaderBytes > seg.file_bytes) return Status::Ok();
  Status s = w->get(b, kFrameHeaderBytes, &p);
  if (!s.ok()) return s;
  uint32_t length = load32(p + 4);
  uint64_t index = load64(p + 8);
  if ((length & kPadFlag) != 0 || index <= last || index > cap || index == UINT64_MAX) return Status::Ok();
  size_t size = claimed_size(p);
  if (size == 0) return Status::Ok();
  uint32_t seed = load32(p);
  uint64_t q = b + size;
  if (q + kFrameHeaderBytes > seg.file_bytes) return Status::Ok();
  s = w->get(q, kFrameHeaderBytes, &p);
  if (!s.ok()) return s;
  size_t need = claimed_size(p);
  if (need == 0 || q + need > seg.file_bytes) return Status::Ok();
  s = w->get(q, need, &p);
  if (!s.ok()) return s;
  FrameCheck f = check_frame(p, need, seed, index + 1, kRecordBytesMax);
  *ok = f.kind == FrameKind::kRecord || f.kind == FrameKind::kPadding;
  return Status::Ok();
}

// Rows F and G: was a later batch written after the damaged frame at `stop`?
// The writer starts a batch only after the previous one is durable, so a later
// batch that chains proves the damaged one had been synced: corruption, not a
// torn write. Damage inside the last batch proves nothing (a torn write can
// persist any subset of its sectors) and is row E. `cap`: under a TRUNCATE
// marker, records above its index are being dropped and prove nothing.
Status valid_after(Window* w, Segment* seg, const ScanResult& r, uint64_t cap, bool* found) {
  *found = false;
  const uint8_t* p = nullptr;
  Status s = w->get(r.stop, kFrameHeaderBytes, &p);
  if (!s.ok()) return s;
  // Row F: a damaged padding frame; the next batch chains from its stored CRC,
  // or from the CRC its header should have.
  if (r.stop_frame.kind == FrameKind::kBad && (load32(p + 4) & kPadFlag) != 0) {
    size_t size = claimed_size(p);
    if (size != 0) {
      uint32_t seeds[2] = {load32(p), crc32c_extend(r.stop_crc, p + 4, 12)};
      for (uint32_t seed : seeds) {
        bool ok = false;
        s = verifies_at(w, *seg, r.stop + size, seed, r.stop_last, cap, &ok);
        if (!s.ok()) return s;
        if (ok) {
          *found = true;
          return Status::Ok();
        }
      }
    }
  }
  // Row G: at a later block boundary B, a frame that chains from a seed found
  // just before B: the padding trailer at B-8, or the CRC of a padding header
  // that claims to end at B.
  for (uint64_t b = (r.stop / kBlockBytesMin + 1) * kBlockBytesMin; b + kFrameHeaderBytes <= seg->file_bytes;
       b += kBlockBytesMin) {
    s = w->get(b, kFrameHeaderBytes, &p);
    if (!s.ok()) return s;
    if (std::all_of(p, p + kFrameHeaderBytes, [](uint8_t x) { return x == 0; })) continue;
    std::vector<uint32_t> seeds;
    s = w->get(b - 8, 8, &p);
    if (!s.ok()) return s;
    if (load32(p + 4) == kPadMagic) seeds.push_back(load32(p));
    uint64_t low = std::max<uint64_t>(r.stop, b > kBlockBytesMax + kPadFrameMinBytes ? b - kBlockBytesMax - kPadFrameMinBytes : 0);
    for (uint64_t q = b - kPadFrameMinBytes; q >= low && q >= kSegmentDataOffset; q -= kFrameAlignBytes) {
      s = w->get(q, kFrameHeaderBytes, &p);
      if (!s.ok()) return s;
      if (load32(p + 4) == (kPadFlag | static_cast<uint32_t>(b - q))) seeds.push_back(load32(p));
      if (q < kFrameAlignBytes) break;
    }
    for (uint32_t seed : seeds) {
      bool ok = false;
      s = verifies_at(w, *seg, b, seed, r.stop_last, cap, &ok);
      if (!s.ok()) return s;
      if (ok) {
        *found = true;
        return Status::Ok();
      }
    }
    // Row G': no seed survived before B (the whole batch before it, or its
    // padding frame, was zeroed): a record at a 4 KiB boundary that proves itself.
    if (b % kBlockBytesMax == 0) {
      bool ok = false;
      s = proves_itself(w, *seg, b, r.stop_last, cap, &ok);
      if (!s.ok()) return s;
      if (ok) {
        *found = true;
        return Status::Ok();
      }
    }
  }
  return Status::Ok();
}

// Row E': is the bad record at `r.stop` damage inside a complete last batch? The
// frames after it (at least one record, then the padding frame) must verify
// chained from its stored CRC (the next record carrying the index the bad one
// should have had, plus one) up to a padding
// frame that verifies, ending on a 512-byte boundary, with every record at or
// below `cap`; and no 512-byte sector of the batch [committed end, padding end)
// may be all zero, except sectors wholly inside the padding frame's zero
// interior (their intended content is zero, so a torn write that missed them
// changed nothing). A torn write of a pre-zeroed segment leaves unwritten
// sectors all zero, so such a batch reached the disk whole.
Status complete_batch(Window* w, const Segment& seg, const ScanResult& r, uint64_t cap, bool* found) {
  *found = false;
  if (r.stop_frame.kind != FrameKind::kBad || r.eof) return Status::Ok();
  if (r.committed_end % kBlockBytesMin != 0) return Status::Ok();
  const uint8_t* p = nullptr;
  if (r.stop + kFrameHeaderBytes > seg.file_bytes) return Status::Ok();
  Status s = w->get(r.stop, kFrameHeaderBytes, &p);
  if (!s.ok()) return s;
  // A damaged padding frame closes the batch: nothing after it in the batch to check.
  if ((load32(p + 4) & kPadFlag) != 0) return Status::Ok();
  size_t size = claimed_size(p);
  if (size == 0) return Status::Ok();
  uint32_t seed = load32(p);
  uint64_t expected = r.stop_last + 2;
  uint64_t q = r.stop + size;
  uint64_t pad_at = 0;
  size_t records_after = 0;
  while (true) {
    if (q + kFrameHeaderBytes > seg.file_bytes) return Status::Ok();
    s = w->get(q, kFrameHeaderBytes, &p);
    if (!s.ok()) return s;
    size_t need = claimed_size(p);
    if (need == 0 || q + need > seg.file_bytes) return Status::Ok();
    s = w->get(q, need, &p);
    if (!s.ok()) return s;
    FrameCheck f = check_frame(p, need, seed, expected, kRecordBytesMax);
    if (f.kind == FrameKind::kRecord) {
      expected = f.index + 1;
      seed = f.crc;
      q += f.size;
      records_after++;
      continue;
    }
    if (f.kind != FrameKind::kPadding) return Status::Ok();
    pad_at = q;
    q += f.size;
    break;
  }
  // The last record of a batch (only its padding frame after it) stays row E, as
  // test/log/torn-vs-corrupt-cases.test.ts pins.
  if (records_after == 0 || q % kBlockBytesMin != 0 || expected - 1 > cap) return Status::Ok();
  uint64_t interior_begin = pad_at + kFrameHeaderBytes;
  uint64_t interior_end = q - 8;
  for (uint64_t sec = r.committed_end; sec < q; sec += kBlockBytesMin) {
    if (sec >= interior_begin && sec + kBlockBytesMin <= interior_end) continue;
    s = w->get(sec, kBlockBytesMin, &p);
    if (!s.ok()) return s;
    if (std::all_of(p, p + kBlockBytesMin, [](uint8_t x) { return x == 0; })) return Status::Ok();
  }
  *found = true;
  return Status::Ok();
}

// Row P (v2): a batch header at a 4 KiB boundary after the stop that verifies on
// its own (seeded with the segment header's CRC, so not from another segment or
// an earlier incarnation of this one; bytes after the committed end are never
// left unzeroed) and starts above the last valid record: a later batch was
// written, and the writer starts a batch only after the previous one is durable.
// `cap`: under a TRUNCATE marker, batches reaching above its index prove nothing.
Status later_batch(Window* w, const Segment& seg, const ScanResult& r, uint64_t cap, bool* found) {
  *found = false;
  const uint32_t segment_seed = seg.header_crc();
  for (uint64_t q = (r.stop / kBlockBytesMax + 1) * kBlockBytesMax; q + kFrameHeaderBytes <= seg.file_bytes;
       q += kBlockBytesMax) {
    const uint8_t* p = nullptr;
    Status s = w->get(q, kFrameHeaderBytes, &p);
    if (!s.ok()) return s;
    if ((load32(p + 4) & kFrameFlagMask) != kBatchHeaderFlag) continue;
    uint64_t room = seg.file_bytes - q;
    size_t avail = static_cast<size_t>(std::min<uint64_t>(room, kSectorBytes));
    s = w->get(q, avail, &p);
    if (!s.ok()) return s;
    BatchHeader bh;
    if (!check_batch_header(p, avail, room, segment_seed, &bh)) continue;
    if (bh.first_index <= r.stop_last || bh.first_index + bh.count - 1 > cap) continue;
    *found = true;
    return Status::Ok();
  }
  return Status::Ok();
}

// Rows Q, R, T (v2): the verdict on the last batch, the one starting at the
// committed end B, when the scan stopped inside it and row P found no later
// batch. The segment was zero before the batch was written and a disk persists
// whole 512-byte sectors, so after a torn write each sector holds what was
// written or zeros. Hence: sector 0 all zero: torn (T). Sector 0 not zero and
// the header does not verify (or does not continue the chain): damage (Q, at B).
// Else each sector is checked against its CRC in the header (the bytes of sector
// 0 after the header against tail_crc): a sector that differs and is not all
// zero is damage (R, at the first frame overlapping it); a batch whose differing
// sectors are all zero is torn (T). A sector whose CRC entry lies in a sector
// that is itself unwritten cannot be judged and counts as unwritten.
struct Verdict {
  bool corrupt = false;
  uint64_t offset = 0;
  std::string message;
  // The batch's records (for repairTail's report): first_index..last_index, or from
  // first_index on when its header cannot be read (last_index 0).
  uint64_t first_index = 0;
  uint64_t last_index = 0;
};

// Are the bytes [from, to) of the segment all zero?
Status all_zero_range(Window* w, uint64_t from, uint64_t to, bool* zero) {
  *zero = true;
  for (uint64_t off = from; off < to;) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(kZeroChunkBytes, to - off));
    const uint8_t* p = nullptr;
    Status s = w->get(off, n, &p);
    if (!s.ok()) return s;
    if (p == nullptr) return Status::Ok();  // past the file's end: nothing there
    if (!std::all_of(p, p + n, [](uint8_t x) { return x == 0; })) {
      *zero = false;
      return Status::Ok();
    }
    off += n;
  }
  return Status::Ok();
}

// Rows U and Q': is the sector at `sector` the part-written end of a write torn
// at a byte, with nothing written after it up to `end`? Its last byte is still
// the segment's old content (zero) and every later byte up to `end` is zero. A
// batch written whole ends with its padding frame's trailer, whose last byte is
// never zero, so a batch that passes never finished its write: it was never
// acknowledged.
Status torn_inside(Window* w, uint64_t sector, uint64_t end, bool* torn) {
  *torn = false;
  const uint8_t* p = nullptr;
  Status s = w->get(sector + kSectorBytes - 1, 1, &p);
  if (!s.ok() || p == nullptr || *p != 0) return s;
  return all_zero_range(w, sector + kSectorBytes, end, torn);
}

Status judge_last_batch(Window* w, const Segment& seg, const ScanResult& r, Verdict* v) {
  *v = Verdict{};
  const uint64_t b = r.committed_end;
  if (b + kSectorBytes > seg.file_bytes) return Status::Ok();
  const uint8_t* p = nullptr;
  Status s = w->get(b, kSectorBytes, &p);
  if (!s.ok()) return s;
  auto all_zero = [](const uint8_t* x, size_t n) { return std::all_of(x, x + n, [](uint8_t c) { return c == 0; }); };
  if (all_zero(p, kSectorBytes)) return Status::Ok();  // row T: its first sector never reached the disk
  BatchHeader bh;
  v->first_index = r.committed_last + 1;
  const bool self_ok = check_batch_header(p, kSectorBytes, seg.file_bytes - b, seg.header_crc(), &bh);
  if (!self_ok) {
    // Row Q': the header itself torn at a byte (its sector part written, then zeros, and
    // nothing after it in the segment). Its size is unknown, so all of the rest must be zero.
    bool torn = false;
    s = torn_inside(w, b, seg.file_bytes, &torn);
    if (!s.ok()) return s;
    if (torn) return Status::Ok();
  }
  if (!self_ok || bh.first_index != r.committed_last + 1 || bh.prev_crc != r.committed_crc) {
    // Row Q.
    v->corrupt = true;
    v->offset = b;
    v->message = "damaged batch header: the batch's first sector is written but does not verify (index " +
                 std::to_string(r.committed_last + 1) + ")";
    return Status::Ok();
  }
  std::vector<uint8_t> header;
  {
    s = w->get(b, bh.header_bytes, &p);
    if (!s.ok()) return s;
    header.assign(p, p + bh.header_bytes);
  }
  const uint64_t h = bh.header_bytes;
  const uint64_t sectors = bh.batch_bytes / kSectorBytes;
  enum : uint8_t { kMatch, kUnwritten, kDamaged };
  std::vector<uint8_t> state(static_cast<size_t>(sectors), kMatch);
  uint64_t bad_from = 0, bad_to = 0;  // the first damaged range, if any
  bool torn = false;
  if (h < kSectorBytes) {
    s = w->get(b + h, static_cast<size_t>(kSectorBytes - h), &p);
    if (!s.ok()) return s;
    if (crc32c(p, static_cast<size_t>(kSectorBytes - h)) != bh.tail_crc) {
      state[0] = kDamaged;  // sector 0 is written (its header verifies): a torn write cannot change half of it
      bad_from = b + h;
      bad_to = b + kSectorBytes;
    }
  }
  for (uint64_t k = 1; k < sectors && bad_to == 0; k++) {
    uint64_t entry = kBatchHeaderFixedBytes + 4 * (k - 1);
    s = w->get(b + k * kSectorBytes, kSectorBytes, &p);
    if (!s.ok()) return s;
    bool zero = all_zero(p, kSectorBytes);
    if (entry >= kSectorBytes && state[static_cast<size_t>(entry / kSectorBytes)] != kMatch) {
      state[static_cast<size_t>(k)] = kUnwritten;  // its CRC is not known
      torn = true;
      continue;
    }
    uint32_t crc = zero ? zero_sector_crc() : crc32c(p, kSectorBytes);
    if (crc == load32(header.data() + entry)) continue;
    if (zero) {
      state[static_cast<size_t>(k)] = kUnwritten;
      torn = true;
    } else {
      state[static_cast<size_t>(k)] = kDamaged;
      bad_from = b + k * kSectorBytes;
      bad_to = bad_from + kSectorBytes;
    }
  }
  v->last_index = bh.first_index + bh.count - 1;
  if (bad_to != 0) {
    // Row U: the first damaged sector is where a write torn at a byte stopped (its last
    // byte still zero, and nothing written after it in the batch): torn, not damage.
    bool torn_here = false;
    s = torn_inside(w, b + (bad_from - b) / kSectorBytes * kSectorBytes, b + bh.batch_bytes, &torn_here);
    if (!s.ok()) return s;
    if (torn_here) return Status::Ok();
  }
  if (bad_to == 0) {
    if (torn) return Status::Ok();  // row T
    v->corrupt = true;
    v->offset = r.stop;
    v->message = "bad frame in a last batch whose sectors all match their checksums (index " +
                 std::to_string(r.stop_last + 1) + ")";
    return Status::Ok();
  }
  // Row R: name the first frame overlapping the damaged range, found by walking
  // the frames from B: those before the scan's stop verified (their lengths are
  // as written, and when the range reaches the stop the damage is not in them),
  // later ones only through sectors that match their CRCs; where the walk must
  // cross an unwritten sector, the range itself.
  v->corrupt = true;
  v->offset = bad_from;
  uint64_t q = b;
  uint64_t size = h;
  while (true) {
    if (q < bad_to && q + size > bad_from && (q >= r.stop || bad_to <= r.stop)) {
      v->offset = q;
      break;
    }
    q += size;
    if (q + kFrameHeaderBytes > b + bh.batch_bytes) break;
    bool walkable = true;
    for (uint64_t a = q; q >= r.stop && a < q + kFrameHeaderBytes; a = (a / kSectorBytes + 1) * kSectorBytes) {
      if (a >= bad_from && a < bad_to) break;  // overlaps: found at the top of the loop
      if (state[static_cast<size_t>((a - b) / kSectorBytes)] != kMatch) walkable = false;
    }
    if (!walkable) break;
    s = w->get(q, kFrameHeaderBytes, &p);
    if (!s.ok()) return s;
    size = claimed_size(p);
    if (size == 0) {
      v->offset = q;
      break;
    }
  }
  v->message = "damaged last batch (index " + std::to_string(r.committed_last + 1) + " on): a sector at offset " +
               std::to_string(bad_from) + " is written but differs from its checksum";
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

// Row S: does the prepared spare (spare.wal.ready) hold a segment of the log? A
// rotation renames the spare to its segment name without syncing the directory
// (writer.cc rotate), so a crash can leave an acknowledged segment under the spare's
// name. The writer writes into a spare only after the preparer gave it an open
// (version 3) header, synced, and a durable name, and only after the segment before
// it is sealed; nothing else ever writes anything but zeros after a spare's first
// 4 KiB. So: data region all zero (or no file): a spare, not part of the log, whatever
// its header (zeros, a hole, torn, a version 2 header of a rotation that crashed
// before its rename). Data that is not all zero after a valid open header: the last
// segment of the log, judged by the last-segment rules with the first index after
// the last named segment's. Data after any other header, or beside a TRUNCATE marker
// (a truncation syncs the directory before it starts, so the segment's rename was
// durable): TM_CORRUPTION. `*joins`: the spare is (a candidate) last segment.
Status judge_spare(const std::string& path, bool marker, bool* joins) {
  *joins = false;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno == ENOENT ? Status::Ok() : Status::Errno("open", errno, path);
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    return Status::Errno("fstat", err, path);
  }
  Segment probe;  // owns fd
  probe.read_fd = fd;
  probe.path = path;
  probe.file_bytes = static_cast<uint64_t>(st.st_size);
  if (probe.file_bytes <= kSegmentDataOffset) return Status::Ok();
  Window w(fd, path, probe.file_bytes);
  uint64_t dirty = 0;
  Status s = dirty_end(&w, probe, kSegmentDataOffset, &dirty);
  if (!s.ok() || dirty == kSegmentDataOffset) return s;
  const uint8_t* h = nullptr;
  s = w.get(0, kSegmentHeaderBytes, &h);
  if (!s.ok()) return s;
  uint64_t nonce = 0;
  if (!is_open_header(h, &nonce)) {
    return Status::Corruption("the prepared spare holds data after a header that is not a valid open (version 3) header",
                              path, 0);
  }
  if (probe.file_bytes < kSegmentBytesMin || probe.file_bytes % kSegmentAlignBytes != 0) {
    return Status::Corruption("the prepared spare holds data but has a bad size (" + std::to_string(probe.file_bytes) +
                                  " bytes)",
                              path, static_cast<int64_t>(probe.file_bytes));
  }
  if (marker) {
    return Status::Corruption("the prepared spare holds data beside a TRUNCATE marker (a truncation starts only after "
                              "the last rotation's rename is durable)",
                              path, static_cast<int64_t>(kSegmentDataOffset));
  }
  *joins = true;
  return Status::Ok();
}

}  // namespace

Status rebuild_segment_with_cut(const std::string& dir, const std::string& path, const std::string& tmp, uint64_t cut,
                                uint64_t next_index, uint32_t seed, uint32_t block, uint64_t* new_end,
                                uint32_t* new_tail_crc) {
  std::unique_ptr<File> src, dst;
  Status s = open_file(path, kOpenRead, &src);
  if (!s.ok()) return s;
  s = open_file(tmp, kOpenWrite, &dst);
  if (!s.ok()) return s;
  AlignedBuffer buf;
  const size_t chunk = static_cast<size_t>(std::min<uint64_t>(cut, kZeroChunkBytes));
  if (!buf.resize(std::max<size_t>(chunk, block))) return Status::OutOfMemory("a segment copy buffer", chunk);
  for (uint64_t off = 0; off < cut;) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(cut - off, chunk));
    size_t got = 0;
    s = src->pread(buf.data(), n, off, &got);
    if (!s.ok()) return s;
    if (got != n) return Status::Errno("pread", EIO, path, static_cast<int64_t>(off + got));
    s = dst->pwrite(buf.data(), n, off);
    if (!s.ok()) return s;
    off += n;
  }
  const size_t pad = padding_bytes(cut, block);
  memset(buf.data(), 0, pad);
  *new_tail_crc = encode_padding(buf.data(), pad, next_index, seed);
  s = dst->pwrite(buf.data(), pad, cut);
  if (!s.ok()) return s;
  s = dst->datasync();
  if (!s.ok()) return s;
  dst.reset();
  src.reset();
  if (::rename(tmp.c_str(), path.c_str()) != 0) return Status::Errno("rename", errno, path);
  s = sync_dir(dir);
  if (!s.ok()) return s;
  *new_end = cut + pad;
  return Status::Ok();
}

// `skip_spare`: the spare held only a torn first batch (row S), dropped: recover as if there were no spare.
static Status recover_all(const RecoveryOptions& options, Recovered* out, bool skip_spare = false) {
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
      } else if (!options.read_only && name.size() > 4 && name.compare(name.size() - 4, 4, ".tmp") == 0) {
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
  firsts.erase(std::remove_if(firsts.begin(), firsts.end(), [&](uint64_t f) { return f < options.from_segment; }),
               firsts.end());

  // Row H: an interrupted truncateAfter.
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
      if (!options.read_only && ::unlink(path.c_str()) != 0 && errno != ENOENT) return Status::Errno("unlink", errno, path);
      firsts.pop_back();
      Status s = options.read_only ? Status::Ok() : sync_dir(dir);
      if (!s.ok()) return s;
    }
  }

  // Row S: the spare as the last segment (a rotation whose rename was not durable).
  const std::string spare_path = dir + "/" + kSpareReadyName;
  bool spare_joins = false;
  {
    Status s = skip_spare ? Status::Ok() : judge_spare(spare_path, marker, &spare_joins);
    if (!s.ok()) return s;
    if (spare_joins && firsts.empty()) {
      return Status::Corruption("the prepared spare holds data but the log has no segment before it", spare_path,
                                static_cast<int64_t>(kSegmentDataOffset));
    }
  }
  // An empty last named segment that the spare replaces (a rotation out of an empty
  // segment too small for the next record renames the spare over it).
  std::shared_ptr<Segment> replaced;

  out->segments.clear();
  const size_t count = firsts.size() + (spare_joins ? 1 : 0);
  for (size_t i = 0; i < count; i++) {
    bool last = i + 1 == count;
    const bool spare = i == firsts.size();
    out->scanning.reset();
    auto seg = std::make_shared<Segment>();
    if (spare) {
      seg->first_index = replaced ? replaced->first_index : out->segments.back()->last_index + 1;
      seg->path = spare_path;
    } else {
      seg->first_index = firsts[i];
      seg->path = dir + "/" + segment_name(firsts[i]);
    }
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
    if (i > 0 && !spare) {
      const Segment& prev = *out->segments.back();
      if (seg->first_index != prev.last_index + 1) {
        // Row C.
        return Status::Corruption("index gap: previous segment ends at index " + std::to_string(prev.last_index) +
                                      " but this one starts at " + std::to_string(seg->first_index),
                                  seg->path, static_cast<int64_t>(kSegmentDataOffset));
      }
    }
    if (zero_header) return Status::Corruption("segment header is all zero", seg->path, 0);  // row A
    // Row A.
    if (load32(h + 4) != kSegmentMagic) return Status::Corruption("segment header has a bad magic number", seg->path, 0);
    uint32_t version = load32(h + 8);
    if (version != kSegmentVersion && version != kSegmentVersionV1 && version != kSegmentVersionOpen) {
      return Status::Corruption("segment header has unknown version " + std::to_string(version) + " (this build reads " +
                                    std::to_string(kSegmentVersionV1) + " to " + std::to_string(kSegmentVersionOpen) + ")",
                                seg->path, 0);
    }
    seg->version = version;
    if (segment_header_crc(h) != load32(h)) return Status::Corruption("segment header checksum mismatch", seg->path, 0);
    if (version == kSegmentVersionOpen && load64(h + 16) != 0) {
      return Status::Corruption("open (version 3) segment header carries first index " + std::to_string(load64(h + 16)) +
                                    " (it must be 0: the first index is the file name's)",
                                seg->path, 16);
    }
    if (version != kSegmentVersionOpen && load64(h + 16) != seg->first_index) {
      return Status::Corruption("segment header says first index " + std::to_string(load64(h + 16)) +
                                    " but the file name says " + std::to_string(seg->first_index),
                                seg->path, 16);
    }
    seg->header_nonce = load64(h + 24);
    uint32_t seed = load32(h);

    ScanResult r;
    s = scan_segment(&w, seg.get(), seed, last ? stop_after : UINT64_MAX, &r);
    if (!s.ok()) return s;
    out->scanning = seg;
    out->scan_last = r.stop_last;
    out->scan_sparse = r.uncommitted;
    if (!last) {
      // Row B.
      if (r.stop_frame.kind == FrameKind::kBad && !r.eof) {
        return Status::Corruption("bad record in a sealed segment (checksum, length or index mismatch)", seg->path,
                                  static_cast<int64_t>(r.stop));
      }
      if (r.stop != r.committed_end) {
        // Records that run off the end of the file: the scan stops at (or within 16
        // bytes of) the file's size, no offset inside it; report the unclosed batch's start.
        if (r.eof) {
          return Status::Corruption("sealed segment ends inside a batch: its records run to the end of the file, not "
                                    "closed by a padding frame (the batch starts here)",
                                    seg->path, static_cast<int64_t>(r.committed_end));
        }
        return Status::Corruption("sealed segment ends inside a batch", seg->path, static_cast<int64_t>(r.stop));
      }
      seg->last_index = r.committed_last;
      seg->write_offset = r.committed_end;
      seg->tail_crc = r.committed_crc;
      if (seg->last_index < seg->first_index && spare_joins && i + 2 == count) {
        // Row S: an empty last named segment, which the spare's rename replaced.
        replaced = std::move(seg);
        continue;
      }
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
      // Row H: finish the interrupted truncation at the first record above it. The
      // kept records need a padding frame after them unless the cut is already a
      // committed end (a batch start), even on a block boundary: else the next open
      // would drop them as an unfinished batch.
      keep_end = r.stop;
      keep_last = r.stop_last;
      keep_crc = r.stop_crc;
      pad = keep_end != r.committed_end || keep_end % options.block != 0;
    } else if (stop_after != UINT64_MAX && r.stop_last == stop_after) {
      // Row H, the cut was under way: every record up to the cut verified and none
      // above it, and what follows is a partly written padding frame, partly zeroed
      // bytes or stale frames of the dropped records (a torn cut). Not rows F, G:
      // records above the cut are meant to go. Keep up to the cut.
      if (r.committed_last == stop_after) {
        keep_end = r.committed_end;  // the cut's padding frame made it to disk
        keep_last = r.committed_last;
        keep_crc = r.committed_crc;
        pad = keep_end % options.block != 0;
      } else {
        keep_end = r.stop;
        keep_last = r.stop_last;
        keep_crc = r.stop_crc;
        pad = true;
      }
    } else {
      if (!r.eof && seg->version >= 2) {
        bool found = false;
        s = later_batch(&w, *seg, r, stop_after, &found);
        if (!s.ok()) return s;
        if (found) {
          // Row P.
          return Status::Corruption(std::string(r.stop_frame.kind == FrameKind::kZero ? "zeroed" : "bad") +
                                        " frame with a later batch after it (index " + std::to_string(r.stop_last + 1) + ")",
                                    seg->path, static_cast<int64_t>(r.stop));
        }
        Verdict v;
        s = judge_last_batch(&w, *seg, r, &v);
        if (!s.ok()) return s;
        if (v.corrupt && !options.repair_tail) {
          return Status::Corruption(v.message, seg->path, static_cast<int64_t>(v.offset));  // rows Q, R
        }
        if (v.corrupt) {
          // repair_tail: the operator's explicit way out of rows Q and R. The last batch
          // is dropped below like a torn one, and reported.
          out->tail_repair.dropped = true;
          out->tail_repair.path = seg->path;
          out->tail_repair.offset = r.committed_end;
          out->tail_repair.first_index = v.first_index;
          out->tail_repair.last_index = v.last_index;
          out->tail_repair.reason = v.message + " (at offset " + std::to_string(v.offset) + ")";
        }
        // Row T (or a repaired Q, R): the last batch, dropped below like row E.
      } else if (!r.eof) {
        bool found = false;
        s = valid_after(&w, seg.get(), r, stop_after, &found);
        if (!s.ok()) return s;
        if (found) {
          // Rows F, G.
          return Status::Corruption(std::string(r.stop_frame.kind == FrameKind::kZero ? "zeroed" : "bad") +
                                        " record with valid records after it (index " + std::to_string(r.stop_last + 1) + ")",
                                    seg->path, static_cast<int64_t>(r.stop));
        }
        s = complete_batch(&w, *seg, r, stop_after, &found);
        if (!s.ok()) return s;
        if (found) {
          // Row E'.
          return Status::Corruption("bad record inside a complete last batch (index " + std::to_string(r.stop_last + 1) +
                                        "): its later frames and padding verify and no sector of it is unwritten",
                                    seg->path, static_cast<int64_t>(r.stop));
        }
      }
      // Rows D, E.
      keep_end = r.committed_end;
      keep_last = r.committed_last;
      keep_crc = r.committed_crc;
      pad = keep_end % options.block != 0;
    }
    if (pad && keep_end + padding_bytes(keep_end, options.block) > seg->file_bytes) {
      // The writer always leaves room for the padding frame that closes a batch, so kept
      // records ending this close to the segment's end were not written by it; padding
      // them would write past the segment's fixed size.
      return Status::Corruption("kept records end " + std::to_string(seg->file_bytes - keep_end) +
                                    " bytes before the end of the segment: no room for the padding frame that closes them",
                                seg->path, static_cast<int64_t>(keep_end));
    }
    uint64_t dirty = 0;
    s = dirty_end(&w, *seg, keep_end, &dirty);
    if (!s.ok()) return s;
    seg->last_index = keep_last;
    seg->write_offset = keep_end;
    seg->tail_crc = keep_crc;
    // Sparse entries above the kept range go.
    while (!seg->sparse.empty() && seg->sparse.back().index > keep_last) seg->sparse.pop_back();
    if (options.read_only && dirty > keep_end) {
      out->torn_path = seg->path;
      out->torn_offset = keep_end;
      out->torn_end = dirty;
    }
    if (!options.read_only && (dirty > keep_end || pad)) {
      std::unique_ptr<File> f;
      s = open_file(seg->path, kOpenWrite, &f);
      if (!s.ok()) return s;
      uint64_t cut = keep_end;
      uint32_t cut_crc = keep_crc;
      if (pad && keep_end % kBlockBytesMin == 0 && keep_end % options.block != 0) {
        // Written with 512-byte blocks (direct mode before every mode padded to
        // 4 KiB): pad to the block boundary with a padding frame on sectors of its
        // own, not by rewriting the block that holds kept records (promise 2).
        size_t gap = padding_bytes(keep_end, options.block);
        AlignedBuffer buf;
        if (!buf.resize(gap)) return Status::OutOfMemory("a padding frame", gap);
        cut_crc = encode_padding(buf.data(), gap, keep_last + 1, keep_crc);
        s = f->pwrite(buf.data(), gap, keep_end);
        if (!s.ok()) return s;
        cut = keep_end + gap;
        pad = false;
      }
      uint64_t end = 0;
      uint32_t crc = 0;
      if (pad && cut % options.block != 0) {
        // Row H inside a block of kept records: rebuilt in a fresh file, never rewritten
        // in place (promise 2; as truncateAfter does).
        f.reset();
        const std::string tmp = dir + "/" + kCutTmpName;
        ::unlink(tmp.c_str());
        s = create_zeroed_file(tmp, seg->file_bytes);
        if (s.ok()) s = rebuild_segment_with_cut(dir, seg->path, tmp, cut, keep_last + 1, cut_crc, options.block, &end, &crc);
        if (!s.ok()) {
          ::unlink(tmp.c_str());
          return s;
        }
        s = open_segment_files(seg.get(), false, 0);  // the new file
      } else {
        s = cut_segment_tail(f.get(), cut, dirty, pad, keep_last + 1, cut_crc, options.block, &end, &crc);
      }
      if (!s.ok()) return s;
      seg->write_offset = end;
      seg->tail_crc = crc;
      out->repaired = true;
    }
    if (!seg->sparse.empty()) {
      seg->last_sparse_index = seg->sparse.back().index;
      seg->last_sparse_offset = seg->sparse.back().offset;
    }
    if (spare && seg->last_index < seg->first_index) {
      // Row S, the spare's first batch was torn: dropped above (its bytes zeroed when
      // writable), the spare is a spare again and not part of the log. The log ends in
      // the segment before it: recover again without the spare, so that segment is
      // judged by the last-segment rules (as the next open will), not as sealed.
      const std::string torn_path = out->torn_path;
      const uint64_t torn_offset = out->torn_offset, torn_end = out->torn_end;
      const bool repaired = out->repaired;
      Recovered again;
      s = recover_all(options, &again, true);
      *out = std::move(again);
      if (!s.ok()) return s;
      out->repaired = out->repaired || repaired;
      if (out->torn_path.empty() && !torn_path.empty()) {
        out->torn_path = torn_path;  // read-only: the torn batch left in the spare
        out->torn_offset = torn_offset;
        out->torn_end = torn_end;
      }
      return Status::Ok();
    }
    if (spare && !options.read_only) {
      // Row S: the segment gets its name (over the empty segment it replaced, if any).
      const std::string named = dir + "/" + segment_name(seg->first_index);
      if (::rename(spare_path.c_str(), named.c_str()) != 0) return Status::Errno("rename", errno, named);
      s = sync_dir(dir);
      if (!s.ok()) return s;
      seg->path = named;
      out->repaired = true;
    }
    replaced.reset();
    out->segments.push_back(std::move(seg));
  }
  for (auto& seg : out->segments) {
    if (!seg->sparse.empty()) {
      seg->last_sparse_index = seg->sparse.back().index;
      seg->last_sparse_offset = seg->sparse.back().offset;
    }
  }

  if (marker && !options.read_only) {
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

// Read-only: damage is a result, not a failure (RecoveryOptions::read_only).
Status recover(const RecoveryOptions& options, Recovered* out) {
  Status s = recover_all(options, out);
  if (!options.read_only) return s;
  // Beside a live writer, truncateBefore may remove a segment between the listing and its open: list again.
  for (int tries = 0; options.live_writer && s.code == Code::kIo && s.err == ENOENT && tries < 8; tries++) {
    Recovered again;
    s = recover_all(options, &again);
    *out = std::move(again);
  }
  if (s.code != Code::kCorruption) return s;
  // Beside a live writer, a last batch being copied into the page cache can look
  // damaged: scan again until the same damage is found twice (bounded).
  for (int tries = 0; options.live_writer && tries < 8; tries++) {
    bool in_last = out->scanning != nullptr && out->scanning->path == s.path;
    if (!in_last) break;
    ::usleep(5000);
    Recovered again;
    Status t = recover_all(options, &again);
    bool same = t.code == s.code && t.path == s.path && t.offset == s.offset;
    s = t;
    *out = std::move(again);
    if (t.code != Code::kCorruption || same) break;
  }
  if (s.code != Code::kCorruption) return s;
  out->damage = s;
  out->torn_path.clear();
  // The damaged segment's records that verified, before the damage.
  std::shared_ptr<Segment> seg = out->scanning;
  // (Kept even when none did: its size and version still describe it.)
  if (seg != nullptr && seg->path == s.path &&
      (out->segments.empty() || out->segments.back()->last_index + 1 == seg->first_index)) {
    seg->sparse.insert(seg->sparse.end(), out->scan_sparse.begin(), out->scan_sparse.end());
    while (!seg->sparse.empty() && seg->sparse.back().index > out->scan_last) seg->sparse.pop_back();
    seg->last_index = out->scan_last;
    out->segments.push_back(seg);
  }
  if (out->segments.empty()) {
    out->first_index = seg != nullptr ? seg->first_index : 1;
    out->last_index = out->first_index - 1;
  } else {
    out->first_index = out->segments.front()->first_index;
    out->last_index = out->segments.back()->last_index;
  }
  return Status::Ok();
}

}  // namespace tidemark
