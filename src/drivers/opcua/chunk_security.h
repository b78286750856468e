#pragma once
// ChunkSecurity: how a SecurityPolicy protects the chunks of a secure channel (OPC 10000-6
// §6.7.2). The chunk codec (drivers/opcua/ua_tcp.h) lays out headers and bodies and leaves
// every cryptographic step - the asymmetric header it sends and accepts, the room for padding
// and signature, signing/encrypting an outgoing chunk and verifying/decrypting an incoming one -
// to this interface. SecurityPolicy None is NoChunkSecurity; Basic256Sha256 sign-and-encrypt
// becomes another implementation (one object per secure channel for the asymmetric OPN
// exchange, one per token for the symmetric keys) without changes to the chunk codec.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "drivers/opcua/types.h"

namespace kiln::drivers::opcua {

inline constexpr std::string_view kSecurityPolicyNoneUri =
    "http://opcfoundation.org/UA/SecurityPolicy#None";

// The security header of OPN chunks (§6.7.2.3).
struct AsymmetricSecurityHeader {
  UaString security_policy_uri;
  ByteString sender_certificate;               // DER, or the chain; null for None
  ByteString receiver_certificate_thumbprint;  // SHA-1 of the receiver's certificate; null for None
  friend bool operator==(const AsymmetricSecurityHeader&,
                         const AsymmetricSecurityHeader&) = default;
};

// The security header of MSG and CLO chunks (§6.7.2.3).
struct SymmetricSecurityHeader {
  uint32_t token_id = 0;
  friend bool operator==(const SymmetricSecurityHeader&, const SymmetricSecurityHeader&) = default;
};

// Which algorithms protect a chunk: OPN chunks use the asymmetric ones, MSG and CLO the
// symmetric ones of the current token.
enum class SecurityScheme : uint8_t { kAsymmetric, kSymmetric };

inline constexpr size_t kSequenceHeaderSize = 8;

// Not thread-safe: owned by the secure channel's loop.
class ChunkSecurity {
 public:
  virtual ~ChunkSecurity() = default;

  virtual std::string_view PolicyUri() const = 0;
  // The asymmetric security header this side puts in its OPN chunks.
  virtual AsymmetricSecurityHeader LocalAsymmetricHeader() const = 0;
  // Accepts or refuses the peer's asymmetric header of a received OPN chunk (policy URI,
  // certificate, thumbprint). Errors: PermissionDenied naming the mismatch.
  virtual Status CheckPeerAsymmetricHeader(const AsymmetricSecurityHeader& header) const = 0;
  // The most body bytes one chunk of at most `chunk_size` bytes can carry when the plaintext
  // headers before the sequence header take `header_size` bytes; accounts for the sequence
  // header, padding and signature. 0 when nothing fits.
  virtual size_t MaxBodySize(SecurityScheme scheme, size_t chunk_size,
                             size_t header_size) const = 0;
  // Secures an outgoing chunk in place. On entry `chunk` holds the message header (its
  // MessageSize still unset), the channel id and security header (`header_size` bytes in all),
  // the sequence header and the body. Appends padding and signature, encrypts what the policy
  // encrypts and writes the final MessageSize. Errors: Internal on a crypto failure.
  virtual Status Protect(SecurityScheme scheme, size_t header_size,
                         std::vector<uint8_t>& chunk) const = 0;
  // Verifies (and decrypts in place) a received chunk whose plaintext headers take
  // `header_size` bytes; returns the plaintext sequence header and body, without padding and
  // signature, as a view into `chunk`. Errors: PermissionDenied if the signature or padding is
  // wrong (Bad_SecurityChecksFailed), InvalidArgument if the chunk is too short.
  virtual Result<std::span<const uint8_t>> Unprotect(SecurityScheme scheme, size_t header_size,
                                                     std::span<uint8_t> chunk) const = 0;
};

// SecurityPolicy None: no signature, no encryption, no padding (§6.7.2.5 does not apply).
// Stateless and thread-safe.
class NoChunkSecurity final : public ChunkSecurity {
 public:
  std::string_view PolicyUri() const override { return kSecurityPolicyNoneUri; }
  AsymmetricSecurityHeader LocalAsymmetricHeader() const override;
  // Accepts only the None policy URI. Certificates sent along are ignored (unused with None).
  Status CheckPeerAsymmetricHeader(const AsymmetricSecurityHeader& header) const override;
  size_t MaxBodySize(SecurityScheme scheme, size_t chunk_size, size_t header_size) const override;
  Status Protect(SecurityScheme scheme, size_t header_size,
                 std::vector<uint8_t>& chunk) const override;
  Result<std::span<const uint8_t>> Unprotect(SecurityScheme scheme, size_t header_size,
                                             std::span<uint8_t> chunk) const override;
};

}  // namespace kiln::drivers::opcua
