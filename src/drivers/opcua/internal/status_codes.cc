#include "drivers/opcua/internal/status_codes.h"

#include <array>
#include <cstdint>
#include <utility>

namespace kiln::drivers::opcua::internal {
namespace {

constexpr std::array<std::pair<uint32_t, std::string_view>, 50> kCodes = {{
    {0x80030000, "BadOutOfMemory"},
    {0x80040000, "BadResourceUnavailable"},
    {0x800B0000, "BadServiceUnsupported"},
    {0x800D0000, "BadServerNotConnected"},
    {0x800E0000, "BadServerHalted"},
    {0x800F0000, "BadNothingToDo"},
    {0x80100000, "BadTooManyOperations"},
    {0x80120000, "BadCertificateInvalid"},
    {0x80130000, "BadSecurityChecksFailed"},
    {0x801A0000, "BadCertificateUntrusted"},
    {0x801F0000, "BadUserAccessDenied"},
    {0x80200000, "BadIdentityTokenInvalid"},
    {0x80210000, "BadIdentityTokenRejected"},
    {0x80220000, "BadSecureChannelIdInvalid"},
    {0x80240000, "BadNonceInvalid"},
    {0x80250000, "BadSessionIdInvalid"},
    {0x80260000, "BadSessionClosed"},
    {0x80270000, "BadSessionNotActivated"},
    {0x80280000, "BadSubscriptionIdInvalid"},
    {0x80330000, "BadNodeIdInvalid"},
    {0x80350000, "BadAttributeIdInvalid"},
    {0x80400000, "BadNotImplemented"},
    {0x80420000, "BadMonitoredItemIdInvalid"},
    {0x80550000, "BadSecurityPolicyRejected"},
    {0x80560000, "BadTooManySessions"},
    {0x80570000, "BadUserSignatureInvalid"},
    {0x80580000, "BadApplicationSignatureInvalid"},
    {0x80770000, "BadTooManySubscriptions"},
    {0x80780000, "BadTooManyPublishRequests"},
    {0x80790000, "BadNoSubscription"},
    {0x807A0000, "BadSequenceNumberUnknown"},
    {0x807B0000, "BadMessageNotAvailable"},
    {0x807D0000, "BadTcpServerTooBusy"},
    {0x807E0000, "BadTcpMessageTypeInvalid"},
    {0x807F0000, "BadTcpSecureChannelUnknown"},
    {0x80800000, "BadTcpMessageTooLarge"},
    {0x80810000, "BadTcpNotEnoughResources"},
    {0x80820000, "BadTcpInternalError"},
    {0x80830000, "BadTcpEndpointUrlInvalid"},
    {0x80840000, "BadRequestInterrupted"},
    {0x80850000, "BadRequestTimeout"},
    {0x80860000, "BadSecureChannelClosed"},
    {0x80870000, "BadSecureChannelTokenUnknown"},
    {0x80880000, "BadSequenceNumberInvalid"},
    {0x80AB0000, "BadInvalidArgument"},
    {0x80B70000, "BadMaxConnectionsReached"},
    {0x80B80000, "BadRequestTooLarge"},
    {0x80B90000, "BadResponseTooLarge"},
    {0x80DB0000, "BadTooManyMonitoredItems"},
    {0x810E0000, "BadLicenseExpired"},
}};

}  // namespace

std::string UaStatusCodeName(contract::Quality code) {
  const contract::Quality base(code.code() & 0xFFFF0000u);
  for (const auto& [value, name] : kCodes) {
    if (value == base.code()) return std::string(name);
  }
  return base.Name();
}

std::optional<contract::Quality> UaStatusCodeFromName(std::string_view name) {
  for (const auto& [value, n] : kCodes) {
    if (n == name) return contract::Quality(value);
  }
  return contract::Quality::FromName(name);
}

}  // namespace kiln::drivers::opcua::internal
