// Named bounds of the native WAL, with their relationships checked at compile time.
#pragma once

#include <cstddef>
#include <cstdint>

namespace tidemark {

// Segment files.
constexpr uint64_t kSegmentBytesMin = 64 * 1024;              // smallest segment (tests use it)
constexpr uint64_t kSegmentBytesMax = uint64_t{1} << 30;      // 1 GiB
constexpr uint64_t kSegmentBytesDefault = 64 * 1024 * 1024;   // 64 MiB
constexpr uint64_t kSegmentBytesInitial = 1024 * 1024;        // a new log's first segment (sizes then double)
constexpr uint64_t kSegmentAlignBytes = 4096;                 // segmentBytes is a multiple of this
constexpr uint64_t kSegmentHeaderBytes = 32;                  // header at offset 0 (see segment.h)
constexpr uint64_t kSegmentDataOffset = 4096;                 // first frame of a segment

// Frames (see record.h).
constexpr size_t kFrameHeaderBytes = 16;                      // crc u32 | length u32 | index u64
constexpr size_t kFrameAlignBytes = 8;
constexpr size_t kPadFrameMinBytes = 24;                      // header + trailer (crc u32 | magic u32)
constexpr uint32_t kRecordBytesMax = 256u * 1024 * 1024;      // hard ceiling for maxRecordBytes
constexpr uint32_t kRecordBytesDefault = 16u * 1024 * 1024;   // default maxRecordBytes

// Blocks: every batch starts and ends on a block boundary (promise 2).
constexpr uint32_t kBlockBytesDefault = 4096;                 // buffered / O_DSYNC modes
constexpr uint32_t kBlockBytesMin = 512;                      // smallest O_DIRECT logical block
constexpr uint32_t kBlockBytesMax = 4096;                     // larger DIO alignment: TM_DIRECT_UNSUPPORTED

// Queues.
constexpr size_t kStagingBytesMax = size_t{1} << 30;         // queued, unwritten bytes before TM_BUSY
constexpr size_t kStagingBuffersKept = 3;                     // staging buffers recycled between batches
constexpr size_t kStagingBufferKeptBytesMax = 16 * 1024 * 1024;  // larger ones are freed

// Sparse read index: one entry at least every this many records or bytes of a segment.
constexpr uint64_t kSparseEveryRecords = 64;
constexpr uint64_t kSparseEveryBytes = 32 * 1024;

// Reads.
constexpr size_t kReadWindowBytes = 64 * 1024;                // read-ahead of a single read (range reads: 4x)
constexpr size_t kScanWindowBytes = 4 * 1024 * 1024;          // recovery read window
constexpr size_t kZeroChunkBytes = 1024 * 1024;               // zero-fill write size

static_assert(kSegmentDataOffset >= kSegmentHeaderBytes, "header fits before the data");
static_assert(kSegmentDataOffset % kBlockBytesMax == 0, "data starts on a block boundary in every mode");
static_assert(kSegmentBytesMin % kSegmentAlignBytes == 0, "minimum segment is aligned");
static_assert(kSegmentBytesInitial % kSegmentAlignBytes == 0 && kSegmentBytesInitial >= kSegmentBytesMin,
              "the first segment is a valid segment size");
static_assert(kSegmentAlignBytes % kBlockBytesMax == 0, "segments end on a block boundary");
static_assert(kSegmentBytesMin > kSegmentDataOffset + kFrameHeaderBytes + 2 * kBlockBytesMax,
              "a minimum segment holds at least one record and its padding");
static_assert(uint64_t{kRecordBytesMax} + kFrameHeaderBytes + kSegmentDataOffset + 2 * kBlockBytesMax <= kSegmentBytesMax,
              "the largest record fits in the largest segment");
static_assert(kRecordBytesMax < 0x80000000u, "the top bit of the length field marks padding frames");
static_assert(kPadFrameMinBytes % kFrameAlignBytes == 0, "padding frames keep 8-byte alignment");
static_assert(kBlockBytesMin % kFrameAlignBytes == 0, "blocks keep 8-byte alignment");
static_assert(kZeroChunkBytes % kBlockBytesMax == 0, "zero chunks are block multiples");
static_assert(kScanWindowBytes >= 2 * kZeroChunkBytes, "scan window is not tiny");

}  // namespace tidemark
