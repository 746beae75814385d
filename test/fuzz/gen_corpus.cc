// Writes the small seed corpus of the fuzz targets: test/fuzz/corpus/<target>/seed-*.
//   cmake -S . -B build/fuzz/replay -DTIDEMARK_FUZZ=replay && cmake --build build/fuzz/replay --target gen_corpus && build/fuzz/replay/gen_corpus test/fuzz/corpus
// Recovery seeds are programs in fuzz_recovery.cc's input format, one per row of the
// decision table in native/recovery.cc; frame seeds are encoded frames; CRC seeds are
// inputs of the lengths where the implementations change paths.
#include <sys/stat.h>

#include <cstdio>
#include <string>
#include <vector>

#include "limits.h"
#include "record.h"

namespace {

using namespace tidemark;
using Bytes = std::vector<uint8_t>;

std::string g_root;

void Write(const std::string& target, const std::string& name, const Bytes& b) {
  const std::string dir = g_root + "/" + target;
  ::mkdir(g_root.c_str(), 0755);
  ::mkdir(dir.c_str(), 0755);
  const std::string path = dir + "/seed-" + name;
  FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) {
    std::perror(path.c_str());
    std::exit(1);
  }
  std::fwrite(b.data(), 1, b.size(), f);
  std::fclose(f);
}

void Put32(Bytes* b, uint32_t v) {
  for (int i = 0; i < 4; i++) b->push_back(static_cast<uint8_t>(v >> (8 * i)));
}
void Put64(Bytes* b, uint64_t v) {
  for (int i = 0; i < 8; i++) b->push_back(static_cast<uint8_t>(v >> (8 * i)));
}

// fuzz_recovery ops.
enum Op : uint8_t { REC, PAD, BADIDX, BADCRC, RAW, GAP, NEXT, FLIP, TEAR, PADODD, STALE, MARKER_HERE, BADSIZE };

struct Prog {
  Bytes b;
  Prog(uint8_t cfg, uint8_t first = 0, uint8_t marker = 0, uint8_t skew = 0) : b{cfg, first, marker, skew} {}
  Prog& rec(const std::string& s) {
    b.push_back(REC);
    b.push_back(static_cast<uint8_t>(s.size()));
    b.insert(b.end(), s.begin(), s.end());
    return *this;
  }
  Prog& big(uint8_t units64, uint8_t fill) {  // a record of units64 * 64 bytes of `fill`
    b.insert(b.end(), {REC, static_cast<uint8_t>(0x80 | units64), fill});
    return *this;
  }
  Prog& pad(bool small_block = false) {
    b.insert(b.end(), {PAD, static_cast<uint8_t>(small_block ? 1 : 0)});
    return *this;
  }
  // Version 2 era ops (fuzz_recovery.cc: op >= 208).
  Prog& v2() {  // V0: the current (empty) segment becomes version 2
    b.push_back(208);
    return *this;
  }
  Prog& batch(std::initializer_list<std::string> recs) {  // V1: a writer batch
    b.insert(b.end(), {209, static_cast<uint8_t>(recs.size() - 1)});
    for (const std::string& s : recs) {
      b.push_back(static_cast<uint8_t>(s.size()));
      b.insert(b.end(), s.begin(), s.end());
    }
    return *this;
  }
  Prog& big_batch(uint8_t units64, uint8_t fill) {  // V1: a batch of one record of units64 * 64 bytes of `fill`
    b.insert(b.end(), {209, 0, static_cast<uint8_t>(0x80 | units64), fill});
    return *this;
  }
  Prog& torn(std::initializer_list<std::string> recs, uint8_t how, uint32_t mask) {  // V2: a torn batch
    b.insert(b.end(), {210, static_cast<uint8_t>(recs.size() - 1)});
    for (const std::string& s : recs) {
      b.push_back(static_cast<uint8_t>(s.size()));
      b.insert(b.end(), s.begin(), s.end());
    }
    b.push_back(how);
    Put32(&b, mask);
    return *this;
  }
  Prog& flip(uint8_t which, uint16_t at, uint8_t x) {  // V3: flip inside batch `which`
    b.insert(b.end(), {211, which, static_cast<uint8_t>(at), static_cast<uint8_t>(at >> 8), x});
    return *this;
  }
  Prog& zero(uint8_t which, uint8_t at, uint8_t n) {  // V4: zero sectors inside batch `which`
    b.insert(b.end(), {212, which, at, n});
    return *this;
  }
  Prog& tear_byte(std::initializer_list<std::string> recs, uint16_t keep) {  // V6: a batch torn at byte `keep`
    b.insert(b.end(), {255, static_cast<uint8_t>(recs.size() - 1)});
    for (const std::string& s : recs) {
      b.push_back(static_cast<uint8_t>(s.size()));
      b.insert(b.end(), s.begin(), s.end());
    }
    b.insert(b.end(), {static_cast<uint8_t>(keep), static_cast<uint8_t>(keep >> 8)});
    return *this;
  }
  Prog& big_tear_byte(uint8_t units64, uint8_t fill, uint16_t keep) {  // V6: one record of units64 * 64 bytes, torn at `keep`
    b.insert(b.end(), {255, 0, static_cast<uint8_t>(0x80 | units64), fill, static_cast<uint8_t>(keep), static_cast<uint8_t>(keep >> 8)});
    return *this;
  }
  Prog& next_v2() {  // V5
    b.push_back(213);
    return *this;
  }
  Prog& op(std::initializer_list<uint8_t> bytes) {
    b.insert(b.end(), bytes);
    return *this;
  }
};

void Recovery() {
  Write("recovery", "D-one-batch", Prog(0).rec("hello").rec("abc").pad().b);
  Write("recovery", "E-torn-tail", Prog(0).rec("a").pad().rec("b").rec("c").pad().rec("torn").rec("x").b);
  Write("recovery", "E-bad-last-record", Prog(0).rec("a").pad().rec("b").op({BADCRC, 0x10, 3, 'b', 'a', 'd'}).pad().b);
  Write("recovery", "E-bad-stored-crc-mid-batch",
        Prog(0).rec("a").pad().rec("b").op({BADCRC, 0x01, 3, 'b', 'a', 'd'}).rec("c").rec("d").pad().b);
  Write("recovery", "Eprime-flip-payload-mid-batch",
        Prog(0).rec("a").pad().rec("payload-1").op({FLIP, 20, 0, 0x04, 1}).rec("payload-2").pad().b);
  Write("recovery", "Eprime-zero-sector-payload", Prog(0).rec("a").pad().big(16, 0).op({BADCRC, 0x02, 1, 'z'}).rec("q").pad().b);
  Write("recovery", "F-damaged-padding", Prog(0).rec("a").pad().op({FLIP, 5, 0, 0x20, 1}).rec("b").pad().b);
  Write("recovery", "G-zero-gap-then-batch", Prog(0).rec("a").pad().op({GAP, 0x81}).rec("b").pad().b);
  Write("recovery", "G-torn-sector-then-batch", Prog(0).rec("a").pad().rec("b").pad().op({TEAR, 16, 0, 1}).rec("c").pad().b);
  Write("recovery", "B-sealed-ends-in-batch", Prog(1).rec("a").pad().rec("b").op({NEXT}).rec("c").pad().b);
  Write("recovery", "C-index-gap", Prog(0x41, 0, 0, 5).rec("a").pad().op({NEXT}).rec("b").pad().b);
  Write("recovery", "two-segments", Prog(1).rec("a").rec("b").pad().op({NEXT}).rec("c").pad().rec("d").b);
  Write("recovery", "H-marker", Prog(0x06).rec("a").rec("b").pad().rec("c").rec("d").pad().op({MARKER_HERE, 1}).b);
  Write("recovery", "H-marker-two-segments",
        Prog(0x07).rec("a").pad().op({NEXT}).rec("b").rec("c").pad().op({MARKER_HERE, 3}).b);
  Write("recovery", "H-marker-invalid", Prog(0x02, 0, 1).rec("a").rec("b").pad().b);
  Write("recovery", "Hprime-torn-cut", Prog(0x06).rec("a").rec("b").pad().op({MARKER_HERE, 0}).op({RAW, 1, 1, 2, 3, 4, 5, 6, 7, 8}).b);
  Write("recovery", "A-header-flip", Prog(0).rec("a").pad().op({FLIP, 9, 0, 0x01, 0}).b);
  Write("recovery", "block-512", Prog(0x08).rec("a").pad(true).rec("b").pad(true).rec("c").b);
  Write("recovery", "stale-chain", Prog(0).rec("a").pad().op({STALE, 1, 2, 3, 4, 1, 's'}).op({STALE, 9, 9, 9, 9, 1, 't'}).b);
  Write("recovery", "bad-index", Prog(0).rec("a").pad().op({BADIDX, 7, 1, 'i'}).rec("b").pad().b);
  Write("recovery", "odd-padding", Prog(0).rec("a").op({PADODD, 3}).rec("b").pad().b);
  Write("recovery", "tmp-and-68k", Prog(0x30).rec("a").pad().b);
  Write("recovery", "bad-size", Prog(0).rec("a").pad().op({BADSIZE, 0}).b);
  Write("recovery", "A-name-disagrees-with-header", Prog(0).rec("a").pad().op({BADSIZE, 1}).b);
  Write("recovery", "first-segment-dropped", Prog(1).rec("a").pad().op({BADSIZE, 2}).op({NEXT}).rec("b").pad().b);
  Write("recovery", "no-segment", Prog(0).op({BADSIZE, 2}).b);
  Write("recovery", "first-index-1001", Prog(0x80, 1).rec("a").pad().b);
  Write("recovery", "first-index-near-2e64", Prog(0x80, 0xFE).rec("a").rec("b").pad().rec("c").b);
  // Version 2 (rows P, Q, R, T) and mixed logs.
  Write("recovery", "v2-D-batches", Prog(0).v2().batch({"hello", "abc"}).batch({"x"}).b);
  Write("recovery", "v2-T-torn-prefix", Prog(0).v2().batch({"a", "b"}).big_batch(40, 7).torn({"c", "d"}, 0x03, 0).b);
  Write("recovery", "v2-T-torn-records", Prog(0).v2().batch({"a"}).op({210, 1, 0x80 | 20, 5, 0x80 | 10, 6, 0x05, 0, 0, 0, 0}).b);
  Write("recovery", "v2-T-torn-sectors", Prog(0).v2().batch({"a"}).op({209, 0, 0x80 | 30, 9}).op({210, 1, 0x80 | 20, 5, 0x80 | 10, 6, 0x00}).op({0x2a, 0, 0, 0}).b);
  Write("recovery", "v2-T-first-sector-zero", Prog(0).v2().batch({"a"}).torn({"b", "c"}, 0x01, 0).b);
  Write("recovery", "v2-R-flip-last-batch", Prog(0).v2().batch({"a"}).op({209, 0, 0x80 | 20, 3}).flip(1, 1000, 0x10).b);
  Write("recovery", "v2-P-flip-then-batch", Prog(0).v2().batch({"a"}).batch({"b", "c"}).batch({"d"}).flip(1, 40, 0x01).b);
  Write("recovery", "v2-Q-header-flip-then-batch", Prog(0).v2().batch({"a"}).batch({"b"}).batch({"c"}).flip(1, 20, 0x04).b);
  Write("recovery", "v2-P-zeroed-then-batch", Prog(0).v2().batch({"a"}).big_batch(30, 1).batch({"c"}).zero(1, 1, 0).b);
  Write("recovery", "v2-two-segments", Prog(0).v2().batch({"a", "b"}).next_v2().batch({"c"}).torn({"d"}, 0x01, 0).b);
  Write("recovery", "v2-block-512", Prog(0x08).v2().batch({"a"}).batch({"b"}).torn({"c"}, 0, 0xffffffffu).b);
  Write("recovery", "mixed-v1-then-v2", Prog(0).batch({"a", "b"}).rec("c").pad().next_v2().batch({"d"}).batch({"e"}).b);
  Write("recovery", "mixed-v1-flip-sealed", Prog(0).batch({"a"}).batch({"b"}).flip(0, 17, 0x80).next_v2().batch({"c"}).b);
  // Rows Q' and U: a last batch torn at a byte (inside its header, inside sector 0 after
  // it, inside a later sector, one byte short of the batch's end), and a tear with a
  // flipped byte before it (still row R: the damaged sector is not the last written).
  Write("recovery", "v2-Qprime-torn-in-header", Prog(0).v2().batch({"a"}).tear_byte({"bb", "cc"}, 13).b);
  Write("recovery", "v2-U-torn-in-sector-0", Prog(0).v2().batch({"a"}).tear_byte({"hello", "world"}, 70).b);
  Write("recovery", "v2-U-torn-mid-batch", Prog(0).v2().batch({"a"}).big_tear_byte(40, 7, 1337).b);
  Write("recovery", "v2-U-torn-last-byte", Prog(0).v2().batch({"a"}).big_tear_byte(20, 9, 4095).b);
  Write("recovery", "v2-R-flip-then-torn", Prog(0).v2().batch({"a"}).big_tear_byte(40, 3, 2000).flip(1, 600, 0x20).b);
  Write("recovery", "v2-marker", Prog(0x06).v2().batch({"a", "b"}).batch({"c", "d"}).op({MARKER_HERE, 1}).b);
  Prog full(0);
  for (int i = 0; i < 60; i++) full.big(20, static_cast<uint8_t>(i + 1)).pad();
  Write("recovery", "full-segment", full.b);
}

Bytes FrameHead(uint8_t mode, uint32_t seed, uint64_t expected, uint32_t max_raw) {
  Bytes b{mode};
  Put32(&b, seed);
  Put64(&b, expected);
  Put32(&b, max_raw);
  return b;
}

void Frame() {
  const uint32_t seed = 0x1234abcd;
  const uint64_t index = 42;
  {  // A sealed batch header as on disk (mode 0xF0), and batches to lay out (mode 0xF1).
    uint8_t rec[24];
    encode_record(rec, index, reinterpret_cast<const uint8_t*>("batch"), 5);
    const uint32_t crc = seal_record(rec, 7);
    Bytes batch(4096);
    const size_t header = batch_header_bytes(4096);
    std::copy(rec, rec + sizeof rec, batch.begin() + static_cast<std::ptrdiff_t>(header));
    uint8_t* padp = batch.data() + header + sizeof rec;
    const size_t pad = 4096 - header - sizeof rec;
    encode_padding(padp, pad, index + 1, crc);
    encode_batch_header(batch.data(), header, index, 4096, 1, 7);
    const ByteSpan rest[2] = {{rec, sizeof rec}, {padp, pad}};
    seal_batch_header(batch.data(), rest, 2, seed, header + sizeof rec + 16, header + sizeof rec + pad - 8);
    Bytes b = FrameHead(0xF0, seed, index, 0);
    Put32(&b, 4096);
    b.insert(b.end(), batch.begin(), batch.begin() + 512);
    Write("frame", "batch-header-on-disk", b);
    Bytes small = FrameHead(0xF1, seed, index, 2);  // block 4096
    small.insert(small.end(), {2, 9, 9, 9, 9, 5, 0, 'a', 'b', 'c', 'd', 'e', 0, 0});
    Write("frame", "batch-sealed", small);
    Bytes big = FrameHead(0xF1, seed, index, 1);  // block 512, a header past one sector
    big.insert(big.end(), {7, 1, 2, 3, 4});
    for (int i = 0; i < 8; i++) big.insert(big.end(), {0x28, 0x23});  // 9000 bytes each, zero payloads
    Write("frame", "batch-sealed-big", big);
  }
  {
    Bytes b = FrameHead(0, seed, index, 1);
    Bytes frame(frame_bytes(11));
    encode_record(frame.data(), index, reinterpret_cast<const uint8_t*>("hello world"), 11);
    seal_record(frame.data(), seed);
    b.insert(b.end(), frame.begin(), frame.end());
    Write("frame", "record", b);
  }
  {
    Bytes b = FrameHead(0, seed, index, 1);
    Bytes frame(64);
    encode_padding(frame.data(), frame.size(), index, seed);
    b.insert(b.end(), frame.begin(), frame.end());
    Write("frame", "padding", b);
  }
  {
    Bytes b = FrameHead(0, seed, index, 1);
    b.resize(b.size() + 32, 0);
    Write("frame", "zero", b);
  }
  {
    Bytes b = FrameHead(0, seed, index, 1);
    Put32(&b, 0xdeadbeef);
    Put32(&b, 0x7fffffff);  // a huge length
    Put64(&b, index);
    Write("frame", "huge-length", b);
  }
  {
    Bytes b = FrameHead(0, seed, index, 1);
    Put32(&b, 0);
    Put32(&b, kPadFlag | 0x7ffffff8u);  // a huge padding frame
    Put64(&b, index);
    Write("frame", "huge-padding", b);
  }
  {
    Bytes b = FrameHead(1, seed, index, 1);
    Put32(&b, 0x00030007);
    for (int i = 0; i < 100; i++) b.push_back(static_cast<uint8_t>(i));
    Write("frame", "encode-record", b);
  }
  {
    Bytes b = FrameHead(2, seed, index, 1);
    Put32(&b, 0x00050002);
    b.push_back(60);
    b.push_back(0);
    Write("frame", "encode-padding", b);
  }
}

void Crc() {
  uint64_t x = 0x2545F4914F6CDD1Dull;
  auto next = [&x]() {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return static_cast<uint8_t>(x);
  };
  // Lengths where the paths change: bytes, words, 3 x 64 B blocks, 272 B fused blocks,
  // 768 B (arm64 short streams), 24 KiB (arm64 long streams).
  for (size_t n : {0, 1, 7, 9, 31, 33, 191, 192, 271, 272, 767, 768, 1000, 4096, 24576, 30000}) {
    Bytes b;
    b.push_back(static_cast<uint8_t>(n * 7));
    b.push_back(static_cast<uint8_t>(n >> 3));
    Put32(&b, n % 3 == 0 ? 0 : 0xffffffffu - static_cast<uint32_t>(n));
    for (size_t i = 0; i < n; i++) b.push_back(next());
    Write("crc32c", "len-" + std::to_string(n), b);
  }
  Bytes check{0, 0, 0, 0, 0, 0};
  for (char c : std::string("123456789")) check.push_back(static_cast<uint8_t>(c));
  Write("crc32c", "check-value", check);
}

}  // namespace

int main(int argc, char** argv) {
  g_root = argc > 1 ? argv[1] : "test/fuzz/corpus";
  Recovery();
  Frame();
  Crc();
  return 0;
}
