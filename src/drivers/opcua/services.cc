#include "drivers/opcua/services.h"

#include <string>
#include <utility>

#include "drivers/opcua/chunk_security.h"

namespace kiln::drivers::opcua {

Result<uint32_t> PeekEncodingId(std::span<const uint8_t> body) {
  Reader r(body);
  const NodeId type = r.Read<NodeId>();
  KILN_RETURN_IF_ERROR(r.status());
  const std::optional<uint32_t> id = type.numeric();
  if (type.namespace_index != 0 || !id) {
    return InvalidArgumentError("offset 0: message type " + type.ToString() +
                                " is not a numeric ns=0 NodeId");
  }
  return *id;
}

Result<Notification> DecodeNotification(const ExtensionObject& data, const DecodeLimits& limits) {
  const std::optional<uint32_t> id = data.type_id.numeric();
  if (data.type_id.namespace_index == 0 && id == DataChangeNotification::kBinaryEncodingId) {
    KILN_ASSIGN_OR_RETURN(DataChangeNotification n,
                          FromExtensionObject<DataChangeNotification>(data, limits));
    return Notification(std::move(n));
  }
  if (data.type_id.namespace_index == 0 && id == StatusChangeNotification::kBinaryEncodingId) {
    KILN_ASSIGN_OR_RETURN(StatusChangeNotification n,
                          FromExtensionObject<StatusChangeNotification>(data, limits));
    return Notification(std::move(n));
  }
  return Notification(data);
}

ExtensionObject MakeAnonymousIdentityToken(const UaString& policy_id) {
  // A String body cannot fail to encode.
  return ToExtensionObject(AnonymousIdentityToken{policy_id}).value();
}

Result<ExtensionObject> MakeUserNameIdentityToken(const UserTokenPolicy& policy,
                                                  std::string_view channel_security_policy_uri,
                                                  std::string_view user_name,
                                                  std::string_view password) {
  if (policy.token_type != UserTokenType::kUserName) {
    return InvalidArgumentError("UserTokenPolicy '" + policy.policy_id.value_or("") +
                                "' is not a UserName policy");
  }
  const std::string token_policy = policy.security_policy_uri.value_or("").empty()
                                       ? std::string(channel_security_policy_uri)
                                       : *policy.security_policy_uri;
  if (token_policy != kSecurityPolicyNoneUri) {
    return UnimplementedError("UserTokenPolicy '" + policy.policy_id.value_or("") +
                              "' requires the password to be encrypted with " + token_policy +
                              "; only SecurityPolicy None (password in clear) is implemented");
  }
  UserNameIdentityToken token;
  token.policy_id = policy.policy_id;
  token.user_name = std::string(user_name);
  token.password = std::vector<uint8_t>(password.begin(), password.end());
  return ToExtensionObject(token);
}

}  // namespace kiln::drivers::opcua
