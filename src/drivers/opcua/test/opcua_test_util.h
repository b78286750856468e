#pragma once
// Helpers of the OPC UA codec tests: golden bytes written as in PROTOCOLS.md A2.7.
#include <cctype>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace kiln::drivers::opcua::testing {

// Parses "48 45 4c | 2f 00 00 00 \"text\"": hex pairs, with spaces and '|' ignored and
// double-quoted ASCII copied as it is.
inline std::vector<uint8_t> Bytes(std::string_view text) {
  std::vector<uint8_t> out;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '"') {
      for (++i; i < text.size() && text[i] != '"'; ++i)
        out.push_back(static_cast<uint8_t>(text[i]));
      continue;
    }
    if (std::isxdigit(static_cast<unsigned char>(c)) && i + 1 < text.size()) {
      out.push_back(static_cast<uint8_t>(std::stoi(std::string(text.substr(i, 2)), nullptr, 16)));
      ++i;
    }
  }
  return out;
}

inline std::string Hex(const std::vector<uint8_t>& bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < bytes.size(); ++i) {
    if (i != 0) out.push_back(' ');
    out.push_back(kDigits[bytes[i] >> 4]);
    out.push_back(kDigits[bytes[i] & 15]);
  }
  return out;
}

inline std::vector<uint8_t> Concat(std::vector<uint8_t> a, const std::vector<uint8_t>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

}  // namespace kiln::drivers::opcua::testing
