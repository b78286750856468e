#include "apps/kiln-bench/bench_tools.h"

#include <unistd.h>

#include <charconv>
#include <cstdio>
#include <fstream>
#include <sstream>

namespace kiln::bench {

std::string Args::Get(std::string_view key, std::string_view fallback) const {
  auto it = values_.find(std::string(key));
  return it == values_.end() ? std::string(fallback) : it->second;
}

bool Args::GetInt(std::string_view key, int64_t fallback, int64_t& out) const {
  auto it = values_.find(std::string(key));
  if (it == values_.end()) {
    out = fallback;
    return true;
  }
  const std::string& v = it->second;
  auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), out);
  if (ec != std::errc() || end != v.data() + v.size() || out < 0) {
    std::fprintf(stderr, "kiln-bench: --%s %s: expected a non-negative integer\n",
                 std::string(key).c_str(), v.c_str());
    return false;
  }
  return true;
}

bool ParseArgs(int argc, char** argv, Args& args) {
  for (int i = 0; i < argc; ++i) {
    std::string_view a = argv[i];
    if (!a.starts_with("--")) {
      std::fprintf(stderr, "kiln-bench: unexpected argument '%s' (see --help)\n", argv[i]);
      return false;
    }
    a.remove_prefix(2);
    if (const size_t eq = a.find('='); eq != std::string_view::npos) {
      args.values_[std::string(a.substr(0, eq))] = std::string(a.substr(eq + 1));
    } else if (i + 1 < argc) {
      args.values_[std::string(a)] = argv[++i];
    } else {
      std::fprintf(stderr, "kiln-bench: --%s needs a value\n", std::string(a).c_str());
      return false;
    }
  }
  return true;
}

double ProcessCpuSeconds(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(in, line)) return -1;
  // Fields after the command name (which may contain spaces) in parentheses.
  const size_t close = line.rfind(')');
  if (close == std::string::npos) return -1;
  std::istringstream rest(line.substr(close + 2));
  std::string field;
  double utime = 0, stime = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14) utime = std::stod(field);
    if (i == 15) stime = std::stod(field);
  }
  return (utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

}  // namespace kiln::bench
