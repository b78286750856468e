#pragma once
// Quality: an OPC UA StatusCode (OPC 10000-4 §7.39) attached to every value. The top two
// bits give the severity (00 Good, 01 Uncertain, 10 Bad); the next 14 bits the sub-code.
// A value type.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace kiln::contract {

enum class Severity : uint8_t { kGood, kUncertain, kBad };

class Quality {
 public:
  constexpr Quality() = default;  // Good
  constexpr explicit Quality(uint32_t code) : code_(code) {}

  constexpr uint32_t code() const { return code_; }
  constexpr Severity severity() const {
    const uint32_t top = code_ >> 30;
    return top == 0 ? Severity::kGood : top == 1 ? Severity::kUncertain : Severity::kBad;
  }
  constexpr bool IsGood() const { return severity() == Severity::kGood; }
  constexpr bool IsUncertain() const { return severity() == Severity::kUncertain; }
  constexpr bool IsBad() const { return severity() == Severity::kBad; }

  // The symbolic name of a known code ("BadTimeout"), else the hex form "0x800A0000".
  std::string Name() const;
  // Parses a symbolic name of a known code.
  static std::optional<Quality> FromName(std::string_view name);

  friend constexpr bool operator==(Quality a, Quality b) { return a.code_ == b.code_; }

 private:
  uint32_t code_ = 0;
};

// The common codes of the reference architecture's Appendix B and OPC 10000-4.
namespace status {
inline constexpr Quality kGood{0x00000000};
inline constexpr Quality kGoodLocalOverride{0x00960000};
inline constexpr Quality kGoodClamped{0x00300000};
inline constexpr Quality kGoodNoData{0x00A50000};
inline constexpr Quality kUncertain{0x40000000};
inline constexpr Quality kUncertainLastUsableValue{0x40900000};
inline constexpr Quality kUncertainNoCommunicationLastUsableValue{0x408F0000};
inline constexpr Quality kUncertainSubstituteValue{0x40910000};
inline constexpr Quality kUncertainInitialValue{0x40920000};
inline constexpr Quality kUncertainSensorNotAccurate{0x40930000};
inline constexpr Quality kUncertainEngineeringUnitsExceeded{0x40940000};
inline constexpr Quality kUncertainSubNormal{0x40950000};
inline constexpr Quality kBad{0x80000000};
inline constexpr Quality kBadUnexpectedError{0x80010000};
inline constexpr Quality kBadInternalError{0x80020000};
inline constexpr Quality kBadCommunicationError{0x80050000};
inline constexpr Quality kBadResourceUnavailable{0x80040000};
inline constexpr Quality kBadEncodingError{0x80060000};
inline constexpr Quality kBadDecodingError{0x80070000};
inline constexpr Quality kBadTimeout{0x800A0000};
inline constexpr Quality kBadShutdown{0x800C0000};
inline constexpr Quality kBadNoCommunication{0x80310000};
inline constexpr Quality kBadWaitingForInitialData{0x80320000};
inline constexpr Quality kBadNodeIdUnknown{0x80340000};
inline constexpr Quality kBadNotReadable{0x803A0000};
inline constexpr Quality kBadNotWritable{0x803B0000};
inline constexpr Quality kBadOutOfRange{0x803C0000};
inline constexpr Quality kBadNotSupported{0x803D0000};
inline constexpr Quality kBadTypeMismatch{0x80740000};
inline constexpr Quality kBadConfigurationError{0x80890000};
inline constexpr Quality kBadNotConnected{0x808A0000};
inline constexpr Quality kBadDeviceFailure{0x808B0000};
inline constexpr Quality kBadSensorFailure{0x808C0000};
inline constexpr Quality kBadOutOfService{0x808D0000};
inline constexpr Quality kBadConnectionClosed{0x80AE0000};
}  // namespace status

}  // namespace kiln::contract
