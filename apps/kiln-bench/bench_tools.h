#pragma once
// The subcommands of kiln-bench (main.cc prints the usage).
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

namespace kiln::bench {

// "--key value" or "--key=value" pairs.
class Args {
 public:
  std::string Get(std::string_view key, std::string_view fallback) const;
  // Prints an error and returns false for a value that is not a non-negative integer.
  bool GetInt(std::string_view key, int64_t fallback, int64_t& out) const;
  bool Has(std::string_view key) const { return values_.count(std::string(key)) > 0; }

 private:
  friend bool ParseArgs(int argc, char** argv, Args& args);
  std::map<std::string, std::string> values_;
};

bool ParseArgs(int argc, char** argv, Args& args);

int RunIngest(const Args& args);
int RunHistorian(const Args& args);
int RunGen(const Args& args);
int RunCommands(const Args& args);

// CPU seconds (user + system) a process has used so far; -1 when it cannot be read.
double ProcessCpuSeconds(int pid);

}  // namespace kiln::bench
