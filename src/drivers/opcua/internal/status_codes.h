#pragma once
// Names of the OPC UA StatusCodes the client reports beyond contract::Quality's own table
// (session, secure channel, UA TCP and resource codes; values from OPC UA-Nodeset
// Schema/StatusCode.csv, matching node-opcua 2.186.4). Pure functions; thread-safe. Private to
// kiln::opcua.
#include <optional>
#include <string>
#include <string_view>

#include "contract/quality.h"

namespace kiln::drivers::opcua::internal {

// "BadSessionIdInvalid"; compares the code part (top 16 bits) only. Unknown codes give
// contract::Quality::Name()'s "0x80AB0000" form.
std::string UaStatusCodeName(contract::Quality code);
// The code of a name known to UaStatusCodeName, or nullopt.
std::optional<contract::Quality> UaStatusCodeFromName(std::string_view name);

}  // namespace kiln::drivers::opcua::internal
