// The io_uring state of a Log (log_uring.cc); included by log.cc for ~Log.
#pragma once

#include <chrono>
#include <memory>
#include <vector>

#include "log.h"
#include "uring.h"

namespace tidemark {

// Largest batch (framed records) the io_uring path writes itself; larger ones go
// to the writer thread, which splits nothing either but keeps memory bounded the
// way it always has (the write buffer of a batch is freed above 16 MiB).
constexpr size_t kUringBatchBytesMax = 4 * 1024 * 1024;

struct Log::UringState {
  Ring ring;
  bool busy = false;                 // a batch is in flight
  QueueItem item;                    // its records (tickets, indexes, staging buffer)
  AlignedBuffer buf;                 // the batch as written: [batch header | records | padding frame]
  std::vector<Placed> placed;        // its records' offsets and seeds, published when durable
  std::shared_ptr<Segment> seg;      // the segment it goes to
  uint64_t off = 0;                  // where in it the batch starts
  size_t len = 0;                    // the batch's bytes
  size_t done = 0;                   // bytes written so far (a short write resubmits the rest)
  size_t pad = 0;                    // padding bytes (stats)
  uint32_t crc = 0;                  // chain seed after the batch
  unsigned outstanding = 0;          // completions still due for the last submission
  int32_t write_res = 0;
  int32_t sync_res = 0;
  unsigned stalls = 0;               // short writes in a row that made no progress
  std::chrono::steady_clock::time_point t0;
};

}  // namespace tidemark
