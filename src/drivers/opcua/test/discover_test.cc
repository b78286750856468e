#include "drivers/opcua/discover.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/clock.h"
#include "core/config.h"
#include "core/log.h"
#include "drivers/opcua/client.h"
#include "drivers/opcua/opcua_config.h"
#include "drivers/opcua/services.h"
#include "drivers/opcua/test/fake_ua_server.h"
#include "testing/status_matchers.h"

namespace kiln::drivers::opcua {
namespace {

using contract::ValueType;
using ::kiln::drivers::opcua::testing::Answer;
using ::kiln::drivers::opcua::testing::Encode;
using ::kiln::drivers::opcua::testing::FakeUaServer;
using ::kiln::drivers::opcua::testing::Reply;
using ::kiln::testing::IsOk;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::SizeIs;

constexpr uint32_t kOrganizes = 35;
constexpr uint32_t kHasComponent = 47;
constexpr uint32_t kHasPropertyRef = 46;
constexpr uint32_t kObject = 1;
constexpr uint32_t kVariable = 2;

DiscoveredVariable Var(NodeId node, std::string browse_name, std::string path,
                       std::string data_type, std::optional<ValueType> type,
                       bool writable = false) {
  return {std::move(node), std::move(browse_name), std::move(path), std::move(data_type), type,
          writable};
}

// A variable as one line, to compare lists of them.
std::string Describe(const DiscoveredVariable& v) {
  return v.node_id.ToString() + " | " + v.browse_name + " | " + v.path + " | " + v.data_type +
         " | " + (v.type ? std::string(contract::ValueTypeName(*v.type)) : "-") +
         (v.writable ? " | writable" : "");
}

std::vector<std::string> Describe(const std::vector<DiscoveredVariable>& variables) {
  std::vector<std::string> out;
  for (const DiscoveredVariable& v : variables) out.push_back(Describe(v));
  return out;
}

// What FormatDeviceToml wrote, read back as a config: its errors and the first device table.
struct ReadBack {
  std::vector<std::string> errors;
  std::string id;
  std::string driver;
  std::vector<std::string> names;
  OpcUaDeviceConfig opcua;
};

ReadBack Parse(const std::string& toml) {
  ReadBack out;
  Result<std::unique_ptr<ConfigDocument>> doc = ConfigDocument::Parse(toml, "discovered.toml");
  if (!doc.ok()) {
    out.errors.push_back(std::string(doc.status().message()));
    return out;
  }
  std::vector<ConfigTable> devices = (*doc)->root().GetTableArray("devices");
  if (devices.size() != 1) {
    out.errors.push_back(std::to_string(devices.size()) + " devices");
    return out;
  }
  out.id = devices[0].GetString("id", "");
  out.driver = devices[0].GetString("driver", "");
  for (const ConfigTable& t : devices[0].GetTableArray("tags")) {
    out.names.push_back(t.GetString("name", ""));
  }
  out.opcua = ParseOpcUaDevice(devices[0]);
  for (const ConfigError& e : (*doc)->errors()) out.errors.push_back(e.ToString());
  return out;
}

TEST(FormatDeviceTomlTest, WritesADeviceTableWithOneTagPerPublishableVariable) {
  const std::vector<DiscoveredVariable> variables = {
      Var(NodeId(2, std::string("Temperature")), "Temperature", "Plant/Temperature", "Double",
          ValueType::kDouble),
      Var(NodeId(2, 17), "Setpoint", "Plant/Setpoint", "Int32", ValueType::kInt32, true),
      Var(NodeId(2, std::string("When")), "When", "Plant/When", "DateTime", std::nullopt),
  };
  EXPECT_EQ(FormatDeviceToml(variables, "plc", "opc.tcp://plc:4840"),
            R"(# 3 variables found on opc.tcp://plc:4840 by kiln-edge discover (2 Kiln can publish).
# Add [node] and [mqtt] (docs/CONFIGURATION.md), then remove what you do not need.

[[devices]]
id = "plc"
driver = "opcua"
endpoint = "opc.tcp://plc:4840"

  [[devices.tags]]  # Plant/Temperature
  name = "Temperature"
  node_id = "ns=2;s=Temperature"
  type = "float64"

  [[devices.tags]]  # Plant/Setpoint (writable)
  name = "Setpoint"
  node_id = "ns=2;i=17"
  type = "int32"

  # not publishable: Plant/When (ns=2;s=When), DateTime
)");
}

TEST(FormatDeviceTomlTest, ItsOutputReadsBackAsTheSameDevice) {
  const std::vector<DiscoveredVariable> variables = {
      Var(NodeId(2, std::string("Temperature")), "Temperature", "Plant/Temperature", "Double",
          ValueType::kDouble),
      Var(NodeId(2, 17), "Setpoint", "Plant/Setpoint", "Int32", ValueType::kInt32, true),
      Var(NodeId(3, std::string("Vector")), "Vector", "Plant/Vector", "Double[]", std::nullopt),
      Var(NodeId(0, 2258), "CurrentTime", "Server/CurrentTime", "DateTime", std::nullopt),
      Var(NodeId(1, std::string("Run")), "Run", "Run", "Boolean", ValueType::kBool),
  };
  const ReadBack r = Parse(FormatDeviceToml(variables, "line-1", "opc.tcp://10.0.0.5:4840/UA"));
  EXPECT_THAT(r.errors, IsEmpty());
  EXPECT_EQ(r.id, "line-1");
  EXPECT_EQ(r.driver, "opcua");
  EXPECT_EQ(r.opcua.endpoint, "opc.tcp://10.0.0.5:4840/UA");
  EXPECT_THAT(r.names, ElementsAre("Temperature", "Setpoint", "Run"));
  ASSERT_THAT(r.opcua.tags, SizeIs(3));
  EXPECT_EQ(r.opcua.tags[0].node_id, NodeId(2, std::string("Temperature")));
  EXPECT_EQ(r.opcua.tags[0].type, ValueType::kDouble);
  EXPECT_EQ(r.opcua.tags[1].node_id, NodeId(2, 17));
  EXPECT_EQ(r.opcua.tags[1].type, ValueType::kInt32);
  EXPECT_EQ(r.opcua.tags[2].node_id, NodeId(1, std::string("Run")));
  EXPECT_EQ(r.opcua.tags[2].type, ValueType::kBool);
}

TEST(FormatDeviceTomlTest, SharedBrowseNamesAreNamedByTheirPath) {
  const std::vector<DiscoveredVariable> variables = {
      Var(NodeId(2, 1), "Temperature", "Line1/Temperature", "Double", ValueType::kDouble),
      Var(NodeId(2, 2), "Temperature", "Line2/Temperature", "Float", ValueType::kFloat),
      Var(NodeId(2, 3), "Pressure", "Line1/Pressure", "Double", ValueType::kDouble),
      // Not publishable: does not make "Pressure" shared.
      Var(NodeId(2, 4), "Pressure", "Line2/Pressure", "Double[]", std::nullopt),
      // No browse name: the path stands in.
      Var(NodeId(2, 5), "", "Line2/", "Double", ValueType::kDouble),
  };
  const std::string toml = FormatDeviceToml(variables, "plc", "opc.tcp://plc");
  const ReadBack r = Parse(toml);
  EXPECT_THAT(r.errors, IsEmpty());
  EXPECT_THAT(r.names, ElementsAre("Line1/Temperature", "Line2/Temperature", "Pressure", "Line2/"));
  EXPECT_THAT(toml, HasSubstr("  # not publishable: Line2/Pressure (ns=2;i=4), Double[]\n"));
}

TEST(FormatDeviceTomlTest, QuotesNamesAndNodeIdsWithQuotesAndBackslashes) {
  const NodeId odd(2, std::string(R"(Tank "A"\Level)"));
  const std::vector<DiscoveredVariable> variables = {
      Var(odd, R"(Tank "A"\Level)", R"(Plant/Tank "A"\Level)", "Double", ValueType::kDouble),
      Var(NodeId(2, std::string("Tab\tName")), "Tab\tName", "Tab\tName", "Double",
          ValueType::kDouble),
      Var(NodeId(2, std::string("Temp °C")), "Temp °C", "Temp °C", "Double", ValueType::kDouble),
  };
  const std::string toml = FormatDeviceToml(variables, R"(dev"ice)", "opc.tcp://plc");
  EXPECT_THAT(toml, HasSubstr(R"(  name = "Tank \"A\"\\Level")"));
  EXPECT_THAT(toml, HasSubstr(R"(  node_id = "ns=2;s=Tank \"A\"\\Level")"));
  const ReadBack r = Parse(toml);
  EXPECT_THAT(r.errors, IsEmpty());
  EXPECT_EQ(r.id, R"(dev"ice)");
  EXPECT_THAT(r.names, ElementsAre(R"(Tank "A"\Level)", "Tab\tName", "Temp °C"));
  ASSERT_THAT(r.opcua.tags, SizeIs(3));
  EXPECT_EQ(r.opcua.tags[0].node_id, odd);
  EXPECT_EQ(r.opcua.tags[1].node_id, NodeId(2, std::string("Tab\tName")));
  EXPECT_EQ(r.opcua.tags[2].node_id, NodeId(2, std::string("Temp °C")));
}

// The path goes into a '#' comment: a browse name with a line break must not end the comment
// (the rest of it would be read as TOML).
TEST(FormatDeviceTomlTest, LineBreakInABrowseNameStaysInsideTheComment) {
  const std::vector<DiscoveredVariable> variables = {
      Var(NodeId(2, 1), "Evil\nid = \"other\"", "Plant/Evil\nid = \"other\"", "Double",
          ValueType::kDouble),
      Var(NodeId(2, 2), "Blob\nx = 1", "Plant/Blob\nx = 1", "ByteString", std::nullopt),
  };
  const ReadBack r = Parse(FormatDeviceToml(variables, "plc", "opc.tcp://plc"));
  EXPECT_THAT(r.errors, IsEmpty());
  EXPECT_EQ(r.id, "plc");
  EXPECT_THAT(r.names, ElementsAre("Evil\nid = \"other\""));
}

// TOML prohibits control characters other than tab in comments: they must not reach one, or the
// whole output is unreadable.
TEST(FormatDeviceTomlTest, ControlCharactersInAPathKeepTheOutputReadable) {
  const std::vector<DiscoveredVariable> variables = {
      Var(NodeId(2, 1), "Bell\x07", "Plant/Bell\x07", "Double", ValueType::kDouble),
  };
  const ReadBack r = Parse(FormatDeviceToml(variables, "plc", "opc.tcp://plc"));
  EXPECT_THAT(r.errors, IsEmpty());
  EXPECT_THAT(r.names, ElementsAre("Bell\x07"));
}

// JSON allows DEL (0x7F) raw in a string, TOML does not: a name with it must be escaped.
TEST(FormatDeviceTomlTest, DeleteCharacterInANameIsEscaped) {
  const std::vector<DiscoveredVariable> variables = {
      Var(NodeId(2, 1), "Del\x7F", "Plant/Del", "Double", ValueType::kDouble),
  };
  const ReadBack r = Parse(FormatDeviceToml(variables, "plc", "opc.tcp://plc"));
  EXPECT_THAT(r.errors, IsEmpty());
  EXPECT_THAT(r.names, ElementsAre("Del\x7F"));
}

TEST(FormatDeviceTomlTest, NothingFoundGivesADeviceWithoutTags) {
  const std::string toml = FormatDeviceToml({}, "plc", "opc.tcp://plc");
  EXPECT_THAT(toml, HasSubstr("# 0 variables found on opc.tcp://plc"));
  EXPECT_THAT(toml, Not(HasSubstr("[[devices.tags]]")));
  const ReadBack r = Parse(toml);
  EXPECT_THAT(r.errors, IsEmpty());
  EXPECT_EQ(r.id, "plc");
}

// --- Discover against FakeUaServer ------------------------------------------------------------

ReferenceDescription Ref(uint32_t reference_type, NodeId node, std::string name,
                         uint32_t node_class) {
  ReferenceDescription r;
  r.reference_type_id = NodeId(0, reference_type);
  r.node_id = ExpandedNodeId(std::move(node));
  r.browse_name.namespace_index = r.node_id.node_id.namespace_index;
  r.browse_name.name = std::move(name);
  r.node_class = node_class;
  return r;
}

NodeId S(std::string id) { return NodeId(2, std::move(id)); }

// An address space: Objects -> {Server (ns=0), Plant, Top}; Plant -> {Temperature, Setpoint,
// Vector, its EURange property, Line, and (after a BrowseNext) Plant again and a node on another
// server}; Line -> {Temperature, Status}.
class FakeAddressSpace {
 public:
  struct Attributes {
    NodeId data_type;
    int32_t value_rank = -1;
    uint8_t user_access_level = 1;
  };

  FakeAddressSpace() {
    children_[NodeId(0, 85)] = {Ref(kOrganizes, NodeId(0, 2253), "Server", kObject),
                                Ref(kOrganizes, S("Plant"), "Plant", kObject),
                                Ref(kOrganizes, S("Top"), "Top", kVariable)};
    children_[S("Plant")] = {Ref(kHasComponent, S("Temperature"), "Temperature", kVariable),
                             Ref(kHasComponent, S("Setpoint"), "Setpoint", kVariable),
                             Ref(kHasComponent, S("Vector"), "Vector", kVariable),
                             Ref(kHasPropertyRef, S("EURange"), "EURange", kVariable),
                             Ref(kOrganizes, S("Line"), "Line", kObject)};
    ReferenceDescription remote = Ref(kOrganizes, S("Remote"), "Remote", kVariable);
    remote.node_id.server_index = 1;
    more_ = {Ref(kOrganizes, S("Plant"), "Plant", kObject), remote};
    children_[S("Line")] = {Ref(kHasComponent, S("Line.Temperature"), "Temperature", kVariable),
                            Ref(kHasComponent, S("Line.Status"), "Status", kVariable),
                            Ref(kHasComponent, S("Line.Cycle"), "Cycle", kVariable),
                            Ref(kHasComponent, S("Line.Started"), "Started", kVariable)};
    attributes_[S("Top")] = {NodeId(0, 11)};
    attributes_[S("Temperature")] = {NodeId(0, 10)};
    attributes_[S("Setpoint")] = {NodeId(0, 6), -1, 3};
    attributes_[S("Vector")] = {NodeId(0, 11), 1};
    attributes_[S("Line.Temperature")] = {NodeId(0, 11)};
    attributes_[S("Line.Status")] = {NodeId(0, 29)};
    attributes_[S("Line.Cycle")] = {NodeId(0, 290)};    // Duration
    attributes_[S("Line.Started")] = {NodeId(0, 294)};  // UtcTime: a DateTime
  }

  // Server thread only.
  std::optional<Reply> Handle(uint32_t id, std::span<const uint8_t> body) {
    if (id == BrowseRequest::kBinaryEncodingId) {
      BrowseRequest request = DecodeServiceMessage<BrowseRequest>(body).value();
      BrowseResponse response;
      response.response_header = Answer(request.request_header);
      for (const BrowseDescription& d : request.nodes_to_browse) {
        browsed_.push_back(d.node_id);
        BrowseResult result;
        auto it = children_.find(d.node_id);
        if (it == children_.end()) {
          result.status_code = contract::status::kBadNodeIdUnknown;
        } else {
          result.references = it->second;
        }
        if (d.node_id == S("Plant")) result.continuation_point = std::vector<uint8_t>{7};
        response.results.push_back(result);
      }
      return Reply::Body(Encode(response));
    }
    if (id == BrowseNextRequest::kBinaryEncodingId) {
      BrowseNextRequest request = DecodeServiceMessage<BrowseNextRequest>(body).value();
      BrowseNextResponse response;
      response.response_header = Answer(request.request_header);
      BrowseResult result;
      result.references = more_;
      response.results = {result};
      return Reply::Body(Encode(response));
    }
    if (id == ReadRequest::kBinaryEncodingId) {
      ReadRequest request = DecodeServiceMessage<ReadRequest>(body).value();
      ReadResponse response;
      response.response_header = Answer(request.request_header);
      for (const ReadValueId& r : request.nodes_to_read) {
        DataValue v;
        auto it = attributes_.find(r.node_id);
        if (it == attributes_.end()) {
          v.status = contract::status::kBadNodeIdUnknown;
        } else if (r.attribute_id == kAttributeDataType) {
          v.value = Variant::Scalar(it->second.data_type);
        } else if (r.attribute_id == kAttributeValueRank) {
          v.value = Variant::Scalar(it->second.value_rank);
        } else if (r.attribute_id == kAttributeUserAccessLevel) {
          v.value = Variant::Scalar(it->second.user_access_level);
        } else {
          v.status = contract::status::kBadNotSupported;
        }
        response.results.push_back(v);
      }
      return Reply::Body(Encode(response));
    }
    return std::nullopt;
  }

  std::vector<NodeId> browsed_;  // read after the server thread is joined

 private:
  std::map<NodeId, std::vector<ReferenceDescription>> children_;
  std::vector<ReferenceDescription> more_;
  std::map<NodeId, Attributes> attributes_;
};

class DiscoverTest : public ::testing::Test {
 protected:
  Result<std::vector<DiscoveredVariable>> Run(const DiscoverOptions& options) {
    FakeUaServer::Options server_options;
    server_options.handler = [this](uint32_t id, std::span<const uint8_t> body) {
      return space_.Handle(id, body);
    };
    FakeUaServer server(std::move(server_options));
    ClientOptions client_options;
    client_options.endpoint = server.endpoint();
    std::unique_ptr<Client> client =
        Client::Create(client_options, clock_, Logger(sink_, "opcua")).value();
    EXPECT_THAT(client->Connect(), IsOk());
    return Discover(*client, options);
  }

  SystemClock clock_;
  NullSink sink_;
  FakeAddressSpace space_;
};

TEST_F(DiscoverTest, FindsTheVariablesBelowTheRootWithTheirTypes) {
  Result<std::vector<DiscoveredVariable>> found = Run({});
  ASSERT_THAT(found.status(), IsOk());
  EXPECT_THAT(Describe(*found),
              ElementsAre("ns=2;s=Top | Top | Top | Double | float64",
                          "ns=2;s=Temperature | Temperature | Plant/Temperature | Float | float32",
                          "ns=2;s=Setpoint | Setpoint | Plant/Setpoint | Int32 | int32 | writable",
                          "ns=2;s=Vector | Vector | Plant/Vector | Double[] | -",
                          "ns=2;s=Line.Temperature | Temperature | Plant/Line/Temperature | "
                          "Double | float64",
                          "ns=2;s=Line.Status | Status | Plant/Line/Status | Enumeration | int32",
                          "ns=2;s=Line.Cycle | Cycle | Plant/Line/Cycle | Duration | float64",
                          "ns=2;s=Line.Started | Started | Plant/Line/Started | UtcTime | -"));
  // Each object once; not the standard Server object.
  EXPECT_THAT(space_.browsed_, ElementsAre(NodeId(0, 85), S("Plant"), S("Line")));
}

TEST_F(DiscoverTest, StopsAtTheMaximumDepth) {
  DiscoverOptions options;
  options.max_depth = 1;
  Result<std::vector<DiscoveredVariable>> found = Run(options);
  ASSERT_THAT(found.status(), IsOk());
  ASSERT_THAT(*found, SizeIs(1));
  EXPECT_EQ((*found)[0].node_id, S("Top"));
}

TEST_F(DiscoverTest, ItsVariablesMakeAReadableDeviceTable) {
  Result<std::vector<DiscoveredVariable>> found = Run({});
  ASSERT_THAT(found.status(), IsOk());
  const ReadBack r = Parse(FormatDeviceToml(*found, "plc", "opc.tcp://plc:4840"));
  EXPECT_THAT(r.errors, IsEmpty());
  EXPECT_THAT(r.names, ElementsAre("Top", "Plant/Temperature", "Setpoint", "Plant/Line/Temperature",
                                   "Status", "Cycle"));  // not Started: a UtcTime
}

}  // namespace
}  // namespace kiln::drivers::opcua
