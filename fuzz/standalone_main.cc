// A driver for fuzz targets when the compiler has no libFuzzer (GCC): runs every file of the
// corpus folders given on the command line, then `-runs=N` deterministic mutations of them
// (bit flips, truncations, splices, random bytes). Not coverage-guided, but it keeps every
// target exercised under the sanitizers in the normal test run.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

int main(int argc, char** argv) {
  long runs = 10000;
  std::vector<std::string> corpus;
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], "-runs=", 6) == 0) {
      runs = std::atol(argv[i] + 6);
      continue;
    }
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(argv[i], ec)) {
      std::ifstream in(entry.path(), std::ios::binary);
      corpus.emplace_back(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    }
  }
  if (corpus.empty()) corpus.emplace_back();
  for (const auto& c : corpus) {
    LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(c.data()), c.size());
  }
  std::mt19937_64 rng(12345);
  for (long r = 0; r < runs; ++r) {
    std::string s = corpus[rng() % corpus.size()];
    switch (rng() % 4) {
      case 0:  // flip bits
        for (int k = 0, n = 1 + rng() % 8; k < n && !s.empty(); ++k) {
          s[rng() % s.size()] ^= static_cast<char>(1u << (rng() % 8));
        }
        break;
      case 1:  // truncate
        if (!s.empty()) s.resize(rng() % s.size());
        break;
      case 2: {  // splice two inputs
        const std::string& o = corpus[rng() % corpus.size()];
        s = s.substr(0, s.empty() ? 0 : rng() % s.size()) +
            o.substr(o.empty() ? 0 : rng() % o.size());
        break;
      }
      default:  // random bytes
        s.resize(rng() % 64);
        for (auto& ch : s) ch = static_cast<char>(rng());
    }
    LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(s.data()), s.size());
  }
  std::printf("%zu corpus inputs and %ld mutations: no crash\n", corpus.size(), runs);
  return 0;
}
