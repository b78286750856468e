#include "contract/quality.h"

#include <fmt/format.h>

#include <array>
#include <utility>

namespace kiln::contract {

namespace {
using status::kBad;
constexpr std::array<std::pair<Quality, std::string_view>, 35> kNames = {{
    {status::kGood, "Good"},
    {status::kGoodLocalOverride, "GoodLocalOverride"},
    {status::kGoodClamped, "GoodClamped"},
    {status::kGoodNoData, "GoodNoData"},
    {status::kUncertain, "Uncertain"},
    {status::kUncertainLastUsableValue, "UncertainLastUsableValue"},
    {status::kUncertainNoCommunicationLastUsableValue, "UncertainNoCommunicationLastUsableValue"},
    {status::kUncertainSubstituteValue, "UncertainSubstituteValue"},
    {status::kUncertainInitialValue, "UncertainInitialValue"},
    {status::kUncertainSensorNotAccurate, "UncertainSensorNotAccurate"},
    {status::kUncertainEngineeringUnitsExceeded, "UncertainEngineeringUnitsExceeded"},
    {status::kUncertainSubNormal, "UncertainSubNormal"},
    {status::kBad, "Bad"},
    {status::kBadUnexpectedError, "BadUnexpectedError"},
    {status::kBadInternalError, "BadInternalError"},
    {status::kBadCommunicationError, "BadCommunicationError"},
    {status::kBadResourceUnavailable, "BadResourceUnavailable"},
    {status::kBadEncodingError, "BadEncodingError"},
    {status::kBadDecodingError, "BadDecodingError"},
    {status::kBadTimeout, "BadTimeout"},
    {status::kBadShutdown, "BadShutdown"},
    {status::kBadNoCommunication, "BadNoCommunication"},
    {status::kBadWaitingForInitialData, "BadWaitingForInitialData"},
    {status::kBadNodeIdUnknown, "BadNodeIdUnknown"},
    {status::kBadNotReadable, "BadNotReadable"},
    {status::kBadNotWritable, "BadNotWritable"},
    {status::kBadOutOfRange, "BadOutOfRange"},
    {status::kBadNotSupported, "BadNotSupported"},
    {status::kBadTypeMismatch, "BadTypeMismatch"},
    {status::kBadConfigurationError, "BadConfigurationError"},
    {status::kBadNotConnected, "BadNotConnected"},
    {status::kBadDeviceFailure, "BadDeviceFailure"},
    {status::kBadSensorFailure, "BadSensorFailure"},
    {status::kBadOutOfService, "BadOutOfService"},
    {status::kBadConnectionClosed, "BadConnectionClosed"},
}};
}  // namespace

std::string Quality::Name() const {
  for (const auto& [q, name] : kNames) {
    if (q == *this) return std::string(name);
  }
  return fmt::format("0x{:08X}", code_);
}

std::optional<Quality> Quality::FromName(std::string_view name) {
  for (const auto& [q, n] : kNames) {
    if (n == name) return q;
  }
  return std::nullopt;
}

}  // namespace kiln::contract
