#include "drivers/opcua/chunk_security.h"

#include <limits>
#include <string>

namespace kiln::drivers::opcua {

AsymmetricSecurityHeader NoChunkSecurity::LocalAsymmetricHeader() const {
  AsymmetricSecurityHeader h;
  h.security_policy_uri = std::string(kSecurityPolicyNoneUri);
  return h;  // no certificate, no thumbprint: both null
}

Status NoChunkSecurity::CheckPeerAsymmetricHeader(const AsymmetricSecurityHeader& header) const {
  if (header.security_policy_uri != std::string(kSecurityPolicyNoneUri)) {
    return PermissionDeniedError("BadSecurityPolicyRejected: the peer uses SecurityPolicy '" +
                                 header.security_policy_uri.value_or("(null)") +
                                 "', expected None");
  }
  return OkStatus();
}

size_t NoChunkSecurity::MaxBodySize(SecurityScheme /*scheme*/, size_t chunk_size,
                                    size_t header_size) const {
  const size_t overhead = header_size + kSequenceHeaderSize;
  return chunk_size > overhead ? chunk_size - overhead : 0;
}

Status NoChunkSecurity::Protect(SecurityScheme /*scheme*/, size_t header_size,
                                std::vector<uint8_t>& chunk) const {
  if (chunk.size() < header_size || header_size < 8 ||
      chunk.size() > std::numeric_limits<uint32_t>::max()) {
    return InternalError("chunk of " + std::to_string(chunk.size()) + " bytes cannot be sent");
  }
  const auto size = static_cast<uint32_t>(chunk.size());
  for (int i = 0; i < 4; ++i) chunk[4 + i] = static_cast<uint8_t>(size >> (8 * i));
  return OkStatus();
}

Result<std::span<const uint8_t>> NoChunkSecurity::Unprotect(SecurityScheme /*scheme*/,
                                                            size_t header_size,
                                                            std::span<uint8_t> chunk) const {
  if (chunk.size() < header_size) {
    return InvalidArgumentError("chunk of " + std::to_string(chunk.size()) +
                                " bytes is shorter than its headers");
  }
  return std::span<const uint8_t>(chunk.subspan(header_size));
}

}  // namespace kiln::drivers::opcua
