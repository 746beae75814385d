// Log: one open write-ahead log directory. Owns the lock, the segments, the
// writer thread (writer.cc) and the segment preparer thread.
//
// Threads: the JS thread only enqueues (append/appendMany/commands copy into a
// staging buffer under `mu_`) and reads metrics (atomics). Reads run on any
// thread (the libuv pool). All writes to files happen on the writer thread
// (and spare-segment creation on the preparer thread).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "file.h"
#include "recovery.h"
#include "segment.h"
#include "status.h"

namespace tidemark {

enum class SyncMode : int { kFdatasync = 0, kDsync = 1, kDirect = 2, kNone = 3 };

// How appends reach the disk (log_uring.cc): the writer thread, or io_uring
// submitted from the JS thread where the kernel allows it (kAuto falls back).
enum class IoMode : int { kThread = 0, kUring = 1, kAuto = 2 };

struct LogOptions {
  SyncMode sync = SyncMode::kFdatasync;
  uint64_t segment_bytes = 0;
  uint32_t max_record_bytes = 0;
  // Busy-poll (writer_main): microseconds the writer polls for new work before
  // sleeping, when the previous wait was that short; 0 never polls.
  uint32_t busy_poll_us = 0;
  // Read-only (Wal.open readOnly): no lock, no writes, no spare, no repair; damage
  // is reported (Log::damage) instead of failing the open. See RecoveryOptions.
  bool read_only = false;
  uint64_t from_segment = 0;  // read-only: ignore segments whose first index is below this
  // Recovery's repair_tail (recovery.h): drop a damaged last batch instead of refusing to open.
  bool repair_tail = false;
  IoMode io = IoMode::kThread;
  bool uring_probe_fail = false;  // tests: the io_uring probe fails as if the kernel refused it
};

// One segment as the log holds it (Log::segment_infos; `tidemark wal verify`).
struct SegmentInfo {
  std::string path;
  uint64_t first_index = 0, last_index = 0, file_bytes = 0, end_offset = 0;
  uint32_t version = 0;
};

// What one writer iteration settled; handed to JS with one thread-safe call.
struct BatchReport {
  uint64_t durable_ticket = 0;   // appends with ticket <= this are durable
  uint64_t failed_ticket = 0;    // appends with ticket in (durable_ticket, failed_ticket] failed with `failure`
  Status failure;
  uint64_t first_index = 1;      // durable view after this iteration
  uint64_t last_index = 0;
  std::vector<std::pair<uint64_t, Status>> commands;  // finished commands (id, result)
  bool closed = false;           // the writer has stopped; join it
  bool ack = false;              // JS must call Log::reports_settled for it (writer_main's gate)
};

using ReportFn = std::function<void(std::unique_ptr<BatchReport>)>;

// Group-commit gate (writer_main). A report that settles two or more appends
// asks JS for an acknowledgement (`ack`), which JS sends from setImmediate, i.e.
// once the resolutions' microtasks, and the appends they issue, have run. Until
// then the writer does not start the next batch, so those appends go into one
// batch instead of the first few starting a small one that the rest queue behind.
// Event-driven, no timer. Exceptions: closing (close() and env teardown never
// wait for JS), and once this many bytes are queued (large records: the batch is
// big enough already, and overlapping its sync with JS's settling wins).
// Reports that settle one append are never gated: one writer keeps its latency.
constexpr size_t kGateReleaseBytes = 256 * 1024;
// ... and once this many appends are queued AND at least half as many as the
// unacknowledged reports settled (see batch_may_start). Below it a batch is
// small enough that a sync of its own costs more than waiting for the rest.
constexpr uint64_t kGateReleaseTickets = 64;

constexpr int kHistBatchBuckets = 18;   // batch sizes: [1], [2,3], [4,7], ... [2^17, inf)
constexpr int kHistLatencyBuckets = 24; // sync latency us: [0,1], [2,3], [4,7], ... [2^23, inf)

// The power-of-two histogram bucket of `v` (stats): [0,1], [2,3], [4,7], ...
inline int bucket_of(uint64_t v, int buckets) {
  int b = 0;
  while (v > 1 && b < buckets - 1) {
    v >>= 1;
    b++;
  }
  return b;
}

struct LogStats {
  uint64_t appends = 0, batches = 0, syncs = 0, bytes_written = 0, padding_bytes = 0, segments = 0;
  uint64_t batch_hist[kHistBatchBuckets] = {};
  uint64_t sync_hist[kHistLatencyBuckets] = {};
};

enum class ItemKind { kAppend, kTruncateAfter, kTruncateBefore, kClose };

struct QueueItem {
  ItemKind kind = ItemKind::kAppend;
  AlignedBuffer buf;             // encoded frames (crc fields filled by the writer)
  uint64_t first_index = 0;      // of the frames
  uint64_t last_index = 0;
  uint64_t count = 0;
  uint64_t last_ticket = 0;
  uint64_t command_id = 0;
  uint64_t arg = 0;              // truncation index
};

class Log {
 public:
  ~Log();
  Log(const Log&) = delete;
  Log& operator=(const Log&) = delete;

  // Locks `dir` (which must exist), recovers it and starts the writer. `report` is
  // called on the writer thread once per iteration.
  static Status open(const std::string& dir, const LogOptions& options, ReportFn report, std::shared_ptr<Log>* out);

  // JS thread. Return the assigned index (last index for many), or 0 with `*st` set
  // (kClosed, kPoisoned, kBusy). Each successful call takes the next ticket.
  uint64_t append(const uint8_t* data, uint32_t size, Status* st);
  uint64_t append_many(const std::vector<std::pair<const uint8_t*, uint32_t>>& records, Status* st);
  // Queue a truncation; returns a command id (settled in a BatchReport) or 0 with `*st`.
  uint64_t truncate_after(uint64_t index, Status* st);
  uint64_t truncate_before(uint64_t index, Status* st);
  // Queue the close: the writer finishes everything queued, releases the lock and
  // reports `closed`. Returns false when already closing.
  bool close();
  // After the closed report (or on teardown): joins the writer thread.
  void join();
  // Env teardown: close, wait for the writer, join. No report is needed.
  void shutdown();
  // JS thread: `count` reports that settled appends have been handled by JS,
  // including the microtasks their resolutions ran (see writer_main's gate).
  void reports_settled(uint64_t count);

  // Any thread: a copy of record `index`'s payload.
  Status read(uint64_t index, std::vector<uint8_t>* out);
  // Any thread: records from..to (inclusive) until `max_bytes` of payload (at least one).
  // `*next` is the first index not returned.
  Status read_range(uint64_t from, uint64_t to, size_t max_bytes, std::vector<uint8_t>* data,
                    std::vector<uint32_t>* lengths, uint64_t* next);

  uint64_t first_index() const { return first_index_.load(std::memory_order_acquire); }
  uint64_t last_index() const { return last_index_.load(std::memory_order_acquire); }
  uint32_t block_bytes() const { return block_; }
  // What recovery's repair_tail dropped at open (dropped = false: nothing).
  const TailRepair& tail_repair() const { return tail_repair_; }
  void stats(LogStats* out) const;
  // Read-only opens: the damage found (TM_CORRUPTION with path and offset, or Ok)
  // and a torn tail left in place ([torn_offset, torn_end) of torn_path; empty path: none).
  const Status& damage() const { return damage_; }
  const std::string& torn_path() const { return torn_path_; }
  uint64_t torn_offset() const { return torn_offset_; }
  uint64_t torn_end() const { return torn_end_; }
  void segment_infos(std::vector<SegmentInfo>* out) const;

  // io_uring append path (log_uring.cc). All JS thread.
  bool uses_uring() const { return uring_ != nullptr; }
  // io: 'auto' that fell back to the writer thread: why (empty otherwise).
  const std::string& uring_fallback_reason() const { return uring_reason_; }
  int uring_event_fd() const;
  // Starts the next batch: an append item at the head of the queue that fits the
  // active segment goes out as one io_uring write (+ linked fdatasync); anything
  // else (commands, rotation, close, a poisoned log) is handed to the writer
  // thread. Nothing while a batch or a handoff is in flight.
  void uring_flush();
  // The eventfd said completions are ready: the finished batch's report, or null.
  std::unique_ptr<BatchReport> uring_complete();
  // JS received the writer thread's report of a handoff: uring_flush may run again.
  void writer_report_delivered();

 private:
  struct UringState;
  Status uring_setup();
  Status uring_submit();
  std::unique_ptr<BatchReport> uring_finish(Status failure);
  void uring_drain();  // teardown: wait for the batch in flight
  Log() = default;

  static Status open_read_only(std::shared_ptr<Log>& log, std::shared_ptr<Log>* out);

  // writer.cc
  void writer_main();
  void preparer_main();
  Status write_batch(QueueItem& item, bool* durable_any, bool* clean);
  Status find_record(const std::shared_ptr<Segment>& seg, uint64_t index, uint64_t* offset, uint32_t* seed);
  // A prepared spare of exactly `bytes` (resized when prepared for another size).
  Status take_spare(std::string* path, uint64_t bytes);
  Status take_spares(const std::vector<uint64_t>& sizes, std::vector<std::string>* paths);
  void release_spares(std::vector<std::string>* paths);
  Status zero_dirty_tail(Segment* seg);
  Status rotate(uint64_t first_index, const std::string& spare_path, uint64_t bytes, std::shared_ptr<Segment>* out);
  // *clean: it failed before touching any segment and left no marker (not poisoning).
  Status do_truncate_after(uint64_t index, bool* clean);
  Status do_truncate_before(uint64_t index);
  void poison(const Status& st);
  void fail_queued_after_clean_rejection(std::deque<QueueItem>* items);  // takes mu_
  Status poison_and_drain(const Status& s, std::deque<QueueItem>* items);  // takes mu_
  Status sync_file(File* file);
  void release_lock();

  void take_free_buffer(AlignedBuffer* out);  // under mu_
  // Under mu_: the append item to stage `bytes` more in, or nullptr with *st set
  // (closed, poisoned, or the staging limit reached).
  QueueItem* staging_item(size_t bytes, Status* st);
  void staging_failed(size_t bytes, Status* st);  // under mu_: out of memory for `bytes` more

  // Locate record `index`: its segment and the sparse entry at or below it.
  bool locate(uint64_t index, std::shared_ptr<Segment>* seg, SparseEntry* entry) const;

  std::string dir_;
  LogOptions options_;
  TailRepair tail_repair_;
  uint32_t block_ = 4096;
  int write_flags_ = 0;
  int lock_fd_ = -1;
  ReportFn report_;
  Status damage_;
  std::string torn_path_;
  uint64_t torn_offset_ = 0, torn_end_ = 0;

  // Staging (JS thread <-> writer).
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<QueueItem> queue_;
  std::vector<AlignedBuffer> free_buffers_;
  size_t staged_bytes_ = 0;
  uint64_t next_index_ = 1;
  uint64_t ticket_ = 0;
  uint64_t command_ids_ = 0;
  bool writer_waiting_ = false;
  // Bumped (under mu_) by everything that can let a batch start: what the
  // writer's busy-poll watches without taking mu_.
  std::atomic<uint64_t> wake_seq_{0};
  // Under mu_: new work or an acknowledgement; wakes the writer if it sleeps and `may_start`.
  void wake_writer(bool may_start) {
    wake_seq_.fetch_add(1, std::memory_order_release);
    if (writer_waiting_ && may_start && !uring_) cv_.notify_one();
  }
  // Reports with `ack` posted to JS and not yet acknowledged by reports_settled().
  uint64_t reports_unsettled_ = 0;
  // Appends (tickets) queued since the writer last took the queue.
  uint64_t queued_tickets_ = 0;
  // Tickets settled by the unacknowledged reports (sum of unsettled_report_tickets_).
  uint64_t unsettled_tickets_ = 0;
  std::deque<uint64_t> unsettled_report_tickets_;  // per unacknowledged report, oldest first
  // Under mu_: may the writer take the queue now? (see kGateReleaseBytes)
  // Besides the ack, the gate opens once kGateReleaseTickets appends, and at
  // least half as many as JS is still settling, are queued: with many writers
  // the writer then writes that half while JS settles the rest, so the disk and
  // the JS thread work at the same time (two cohorts of writers alternate)
  // instead of taking turns. Still one batch at a time: the writer never starts
  // a batch before the previous one is durable.
  bool batch_may_start() const {
    return reports_unsettled_ == 0 || staged_bytes_ >= kGateReleaseBytes || closing_ ||
           (queued_tickets_ >= kGateReleaseTickets && 2 * queued_tickets_ >= unsettled_tickets_);
  }
  // io_uring mode: the writer thread runs one iteration per handoff (uring_flush).
  std::unique_ptr<UringState> uring_;
  std::string uring_reason_;
  bool handoff_ = false;          // under mu_: the writer owns the segments until its report reached JS
  bool handoff_pending_ = false;  // under mu_: the writer should take the queue
  bool writer_may_take() const {
    return uring_ ? handoff_pending_ : !queue_.empty() && batch_may_start();
  }
  bool closing_ = false;
  bool read_only_ = false;
  bool poisoned_ = false;
  Status poison_status_;
  bool joined_ = false;

  // Durable view and segments (writer writes; readers read).
  mutable std::mutex index_mu_;
  std::vector<std::shared_ptr<Segment>> segments_;
  // Set when close released the segments (writer_main): a read that reaches
  // locate() after that is TM_CLOSED, not TM_OUT_OF_RANGE (the indexes stay).
  bool segments_released_ = false;
  std::atomic<uint64_t> first_index_{1};
  std::atomic<uint64_t> last_index_{0};
  std::shared_mutex cut_mu_;   // readers shared; truncateAfter's cut exclusive

  // Writer-owned.
  struct Placed {
    Segment* segment;
    uint64_t index;
    uint64_t offset;
    uint32_t seed;
  };
  std::vector<Placed> placed_;
  AlignedBuffer part_buf_;
  uint64_t reported_ticket_ = 0;  // highest ticket settled by a report so far

  // Spare segment preparation.
  std::mutex prep_mu_;
  std::condition_variable prep_cv_;
  bool prep_stop_ = false;
  bool spare_wanted_ = false;
  bool spare_ready_ = false;
  bool spare_busy_ = false;
  bool spare_filling_ = false;   // the ready spare is being zero-written (preparer_main)
  bool spare_claimed_ = false;   // take_spare wants it: the fill stops at its next chunk
  Status spare_status_;
  std::string spare_path_;
  // The ready spare was made by this open's preparer: an open header with
  // spare_nonce_, spare_made_bytes_ long (take_spare then neither reads nor resizes it).
  bool spare_known_ = false;
  uint64_t spare_nonce_ = 0;
  uint64_t spare_made_bytes_ = 0;
  // Writer-owned: what take_spare knew of the spare it returned last (for rotate).
  bool taken_known_ = false;
  uint64_t taken_nonce_ = 0;
  std::atomic<uint64_t> spare_bytes_{0};  // size the preparer makes the next spare (next_segment_bytes)

  std::thread writer_;
  std::thread preparer_;

  // Metrics.
  std::atomic<uint64_t> m_appends_{0}, m_batches_{0}, m_syncs_{0}, m_bytes_{0}, m_padding_{0}, m_segments_{0};
  std::atomic<uint64_t> m_batch_hist_[kHistBatchBuckets] = {};
  std::atomic<uint64_t> m_sync_hist_[kHistLatencyBuckets] = {};
};

}  // namespace tidemark
