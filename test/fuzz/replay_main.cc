// A main() for the fuzz targets without libFuzzer (any compiler, e.g. g++ with
// -fsanitize=address,undefined): replays corpus files and directories, then runs
// seeded random mutations of them. Used by test/fuzz/fuzz.test.ts in `npm test`.
//
//   replay [--mutations N] [--seed S] [--max-len L] <file or dir>...
// Prints one summary line; a failing input aborts (FUZZ_CHECK, ASan, UBSan) after
// being written to ./replay-crash-<target> so it can be rerun alone.
#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

// With AddressSanitizer, its reports also save the input (a death callback).
#if defined(__SANITIZE_ADDRESS__)
#define TM_HAVE_SANITIZER_CALLBACK 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TM_HAVE_SANITIZER_CALLBACK 1
#endif
#endif
#ifdef TM_HAVE_SANITIZER_CALLBACK
#include <sanitizer/common_interface_defs.h>
#endif

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

// Sanitizer reports end in abort(), so the SIGABRT handler below saves the input.
extern "C" const char* __asan_default_options() { return "abort_on_error=1"; }
extern "C" const char* __ubsan_default_options() { return "abort_on_error=1:print_stacktrace=1"; }

namespace {

std::vector<uint8_t> ReadFile(const std::string& path) {
  std::vector<uint8_t> bytes;
  if (FILE* f = std::fopen(path.c_str(), "rb")) {
    uint8_t buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) bytes.insert(bytes.end(), buf, buf + n);
    std::fclose(f);
  } else {
    std::fprintf(stderr, "replay: cannot read %s\n", path.c_str());
    std::exit(2);
  }
  return bytes;
}

void Collect(const std::string& path, std::vector<std::string>* out) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    std::fprintf(stderr, "replay: no such file or directory: %s\n", path.c_str());
    std::exit(2);
  }
  if (!S_ISDIR(st.st_mode)) {
    out->push_back(path);
    return;
  }
  std::vector<std::string> names;
  if (DIR* d = ::opendir(path.c_str())) {
    while (struct dirent* e = ::readdir(d)) {
      if (e->d_name[0] != '.') names.push_back(e->d_name);
    }
    ::closedir(d);
  }
  std::sort(names.begin(), names.end());  // the same order everywhere, for a replayable seed
  for (const auto& n : names) out->push_back(path + "/" + n);
}

uint64_t g_state = 1;
uint64_t Next() {  // splitmix64
  uint64_t z = (g_state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
size_t Below(size_t n) { return n == 0 ? 0 : static_cast<size_t>(Next() % n); }

// A few random edits in the spirit of libFuzzer's mutators.
void Mutate(std::vector<uint8_t>* in, const std::vector<std::vector<uint8_t>>& corpus, size_t max_len) {
  std::vector<uint8_t>& v = *in;
  const size_t edits = 1 + Below(8);
  for (size_t e = 0; e < edits; e++) {
    switch (Below(7)) {
      case 0:  // flip a bit
        if (!v.empty()) v[Below(v.size())] ^= static_cast<uint8_t>(1u << Below(8));
        break;
      case 1:  // set a byte, often to an interesting value
        if (!v.empty()) {
          static const uint8_t kInteresting[] = {0, 1, 0x7f, 0x80, 0xff, 0x10, 0x20, 0x40};
          v[Below(v.size())] = Below(2) ? kInteresting[Below(sizeof kInteresting)] : static_cast<uint8_t>(Next());
        }
        break;
      case 2: {  // insert random bytes
        const size_t at = Below(v.size() + 1), n = 1 + Below(16);
        std::vector<uint8_t> ins(n);
        for (auto& b : ins) b = static_cast<uint8_t>(Next());
        v.insert(v.begin() + static_cast<std::ptrdiff_t>(at), ins.begin(), ins.end());
        break;
      }
      case 3:  // erase a range
        if (!v.empty()) {
          const size_t at = Below(v.size()), n = 1 + Below(std::min<size_t>(16, v.size() - at));
          v.erase(v.begin() + static_cast<std::ptrdiff_t>(at), v.begin() + static_cast<std::ptrdiff_t>(at + n));
        }
        break;
      case 4:  // duplicate a range
        if (!v.empty()) {
          const size_t at = Below(v.size()), n = 1 + Below(std::min<size_t>(32, v.size() - at));
          std::vector<uint8_t> copy(v.begin() + static_cast<std::ptrdiff_t>(at), v.begin() + static_cast<std::ptrdiff_t>(at + n));
          v.insert(v.begin() + static_cast<std::ptrdiff_t>(Below(v.size() + 1)), copy.begin(), copy.end());
        }
        break;
      case 5:  // splice with another corpus entry
        if (!corpus.empty()) {
          const auto& other = corpus[Below(corpus.size())];
          const size_t cut = Below(v.size() + 1), from = Below(other.size() + 1);
          v.resize(cut);
          v.insert(v.end(), other.begin() + static_cast<std::ptrdiff_t>(from), other.end());
        }
        break;
      case 6:  // truncate
        v.resize(Below(v.size() + 1));
        break;
    }
  }
  if (v.size() > max_len) v.resize(max_len);
}

const std::vector<uint8_t>* g_current = nullptr;
std::string g_crash_file;

void SaveCurrent() {
  if (g_current != nullptr) {
    if (FILE* f = std::fopen(g_crash_file.c_str(), "wb")) {
      std::fwrite(g_current->data(), 1, g_current->size(), f);
      std::fclose(f);
      std::fprintf(stderr, "replay: failing input written to %s (%zu bytes)\n", g_crash_file.c_str(), g_current->size());
    }
  }
}
void OnAbort(int) { SaveCurrent(); }

void Run(const std::vector<uint8_t>& input) {
  g_current = &input;
  LLVMFuzzerTestOneInput(input.data(), input.size());
  g_current = nullptr;
}

}  // namespace

int main(int argc, char** argv) {
  size_t mutations = 0, max_len = 4096;
  std::vector<std::string> files;
  std::string name = argv[0];
  name = name.substr(name.find_last_of('/') + 1);
  g_crash_file = "replay-crash-" + name;
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    if (a == "--mutations" && i + 1 < argc) {
      mutations = std::strtoull(argv[++i], nullptr, 10);
    } else if (a == "--seed" && i + 1 < argc) {
      g_state = std::strtoull(argv[++i], nullptr, 10);
    } else if (a == "--max-len" && i + 1 < argc) {
      max_len = std::strtoull(argv[++i], nullptr, 10);
    } else {
      Collect(a, &files);
    }
  }
  // Write the input that is running when a check or a sanitizer aborts.
  std::signal(SIGABRT, OnAbort);
#ifdef TM_HAVE_SANITIZER_CALLBACK
  __sanitizer_set_death_callback(SaveCurrent);
#endif
  std::vector<std::vector<uint8_t>> corpus;
  for (const auto& f : files) corpus.push_back(ReadFile(f));
  for (const auto& input : corpus) Run(input);
  std::vector<uint8_t> input;
  for (size_t i = 0; i < mutations; i++) {
    if (corpus.empty() || Below(8) == 0) {
      input.resize(Below(max_len + 1));
      for (auto& b : input) b = static_cast<uint8_t>(Next());
    } else {
      input = corpus[Below(corpus.size())];
    }
    Mutate(&input, corpus, max_len);
    Run(input);
  }
  std::printf("%s: %zu corpus inputs, %zu mutations: ok\n", name.c_str(), corpus.size(), mutations);
  return 0;
}
