#include "server/registry.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "core/testing/temp_dir.h"
#include "server/test/server_test_util.h"
#include "testing/status_matchers.h"

namespace kiln::server {

inline bool operator==(const MetricRecord& a, const MetricRecord& b) {
  return a.path == b.path && a.name == b.name && a.datatype == b.datatype && a.unit == b.unit;
}
inline void PrintTo(const MetricRecord& m, std::ostream* os) {
  *os << "{" << m.path << ", " << m.name << ", " << m.datatype << ", '" << m.unit << "'}";
}

namespace {

using ::kiln::testing::IsOk;
using ::kiln::testing::StatusIs;
using ::kiln::testing::TempDir;
using sparkplug::DataType;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

constexpr int64_t kT1 = 1700000000000;
constexpr int64_t kT2 = kT1 + 1000;
constexpr int64_t kT3 = kT1 + 2000;
constexpr int64_t kT4 = kT1 + 3000;

// Metric declarations as PrimaryHost hands them to the registry.
class Births {
 public:
  MetricInfo* Add(const NodeKey& node, std::string device, std::string name, DataType type,
                  std::string unit = "") {
    auto m = std::make_unique<MetricInfo>();
    m->path = MetricPath(node, device, name);
    m->device = std::move(device);
    m->name = std::move(name);
    m->datatype = type;
    m->unit = std::move(unit);
    owned_.push_back(std::move(m));
    return owned_.back().get();
  }

 private:
  std::vector<std::unique_ptr<MetricInfo>> owned_;
};

MetricRecord Rec(std::string path, std::string name, std::string datatype, std::string unit = "") {
  return MetricRecord{std::move(path), std::move(name), std::move(datatype), std::move(unit)};
}

class RegistryTest : public ::testing::Test {
 protected:
  std::string file() const { return dir_.path() + "/registry.db"; }

  std::unique_ptr<Registry> Open() {
    auto r = Registry::Open(file());
    EXPECT_THAT(r, IsOk());
    return r.ok() ? std::move(*r) : nullptr;
  }

  // NBIRTH of G/N (bdSeq 3) with bdSeq and Temperature; DBIRTH of D1 (Pressure in bar,
  // Count) and of D0 (Level in m), all at kT1.
  void BringOnline(Registry& r) {
    std::vector<MetricInfo*> node = {
        births_.Add(kNode, "", "bdSeq", DataType::kInt64),
        births_.Add(kNode, "", "Temperature", DataType::kDouble, "degC")};
    ASSERT_THAT(r.Birth(kNode, "", 3, node, kT1), IsOk());
    std::vector<MetricInfo*> d1 = {births_.Add(kNode, "D1", "Pressure", DataType::kFloat, "bar"),
                                   births_.Add(kNode, "D1", "Count", DataType::kInt32)};
    ASSERT_THAT(r.Birth(kNode, "D1", 3, d1, kT1), IsOk());
    std::vector<MetricInfo*> d0 = {births_.Add(kNode, "D0", "Level", DataType::kDouble, "m")};
    ASSERT_THAT(r.Birth(kNode, "D0", 3, d0, kT1), IsOk());
  }

  const NodeKey kNode{"G", "N"};
  TempDir dir_;
  Births births_;
};

TEST(DataTypeNameTest, NamesEverySparkplugType) {
  EXPECT_EQ(DataTypeName(DataType::kInt8), "Int8");
  EXPECT_EQ(DataTypeName(DataType::kUInt64), "UInt64");
  EXPECT_EQ(DataTypeName(DataType::kFloat), "Float");
  EXPECT_EQ(DataTypeName(DataType::kBoolean), "Boolean");
  EXPECT_EQ(DataTypeName(DataType::kString), "String");
  EXPECT_EQ(DataTypeName(DataType::kDateTime), "DateTime");
  EXPECT_EQ(DataTypeName(DataType::kDataSet), "DataSet");
  EXPECT_EQ(DataTypeName(DataType::kPropertySetList), "PropertySetList");
  EXPECT_EQ(DataTypeName(DataType::kUnknown), "Unknown");
  EXPECT_EQ(DataTypeName(static_cast<DataType>(99)), "Unknown");
}

TEST_F(RegistryTest, StartsEmpty) {
  auto r = Open();
  ASSERT_NE(r, nullptr);
  EXPECT_THAT(r->Nodes(), IsEmpty());
  EXPECT_EQ(r->Node("G", "N"), std::nullopt);
  EXPECT_THAT(r->Metrics(""), IsEmpty());
}

TEST_F(RegistryTest, NodeBirthRecordsTheNodeAndItsMetrics) {
  auto r = Open();
  ASSERT_NE(r, nullptr);
  std::vector<MetricInfo*> metrics = {
      births_.Add(kNode, "", "bdSeq", DataType::kInt64),
      births_.Add(kNode, "", "Temperature", DataType::kDouble, "degC"),
      births_.Add(kNode, "", "Node Control/Rebirth", DataType::kBoolean)};
  ASSERT_THAT(r->Birth(kNode, "", 7, metrics, kT1), IsOk());

  auto node = r->Node("G", "N");
  ASSERT_TRUE(node.has_value());
  EXPECT_EQ(node->group, "G");
  EXPECT_EQ(node->node, "N");
  EXPECT_TRUE(node->online);
  EXPECT_EQ(node->since, kT1);
  EXPECT_EQ(node->bdseq, 7u);
  EXPECT_THAT(node->devices, IsEmpty());
  // In the order of the birth.
  EXPECT_THAT(node->metrics,
              ElementsAre(Rec("G/N/bdSeq", "bdSeq", "Int64"),
                          Rec("G/N/Temperature", "Temperature", "Double", "degC"),
                          Rec("G/N/Node Control/Rebirth", "Node Control/Rebirth", "Boolean")));
  ASSERT_EQ(r->Nodes().size(), 1u);
  EXPECT_EQ(r->Nodes()[0].node, "N");
}

TEST_F(RegistryTest, DeviceBirthsAreKeptSortedById) {
  auto r = Open();
  ASSERT_NE(r, nullptr);
  BringOnline(*r);
  auto node = r->Node("G", "N");
  ASSERT_TRUE(node.has_value());
  ASSERT_EQ(node->devices.size(), 2u);
  const DeviceRecord& d0 = node->devices[0];
  const DeviceRecord& d1 = node->devices[1];
  EXPECT_EQ(d0.device, "D0");
  EXPECT_TRUE(d0.online);
  EXPECT_EQ(d0.since, kT1);
  EXPECT_THAT(d0.metrics, ElementsAre(Rec("G/N/D0/Level", "Level", "Double", "m")));
  EXPECT_EQ(d1.device, "D1");
  EXPECT_TRUE(d1.online);
  EXPECT_THAT(d1.metrics, ElementsAre(Rec("G/N/D1/Pressure", "Pressure", "Float", "bar"),
                                      Rec("G/N/D1/Count", "Count", "Int32")));
}

TEST_F(RegistryTest, NodeDeathTakesTheNodeAndItsDevicesOffline) {
  auto r = Open();
  ASSERT_NE(r, nullptr);
  BringOnline(*r);
  ASSERT_THAT(r->Death(kNode, "", kT2), IsOk());
  auto node = r->Node("G", "N");
  ASSERT_TRUE(node.has_value());
  EXPECT_FALSE(node->online);
  EXPECT_EQ(node->since, kT2);
  EXPECT_EQ(node->bdseq, 3u);
  ASSERT_EQ(node->devices.size(), 2u);
  for (const DeviceRecord& d : node->devices) {
    EXPECT_FALSE(d.online) << d.device;
    EXPECT_EQ(d.since, kT2) << d.device;
    EXPECT_FALSE(d.metrics.empty()) << "a death keeps what the birth declared";
  }
  EXPECT_EQ(node->metrics.size(), 2u);
}

TEST_F(RegistryTest, DeviceDeathTakesOnlyThatDeviceOffline) {
  auto r = Open();
  ASSERT_NE(r, nullptr);
  BringOnline(*r);
  ASSERT_THAT(r->Death(kNode, "D1", kT2), IsOk());
  auto node = r->Node("G", "N");
  ASSERT_TRUE(node.has_value());
  EXPECT_TRUE(node->online);
  EXPECT_EQ(node->since, kT1);
  ASSERT_EQ(node->devices.size(), 2u);
  EXPECT_TRUE(node->devices[0].online);  // D0
  EXPECT_EQ(node->devices[0].since, kT1);
  EXPECT_FALSE(node->devices[1].online);  // D1
  EXPECT_EQ(node->devices[1].since, kT2);
}

TEST_F(RegistryTest, NodeDeathKeepsTheTimeOfAnEarlierDeviceDeath) {
  auto r = Open();
  ASSERT_NE(r, nullptr);
  BringOnline(*r);
  ASSERT_THAT(r->Death(kNode, "D1", kT2), IsOk());
  ASSERT_THAT(r->Death(kNode, "", kT3), IsOk());
  auto node = r->Node("G", "N");
  ASSERT_TRUE(node.has_value());
  EXPECT_EQ(node->devices[0].since, kT3);  // D0 died with the node
  EXPECT_EQ(node->devices[1].since, kT2);  // D1 was already offline
}

TEST_F(RegistryTest, DeathOfAnUnknownNodeOrDeviceChangesNothing) {
  auto r = Open();
  ASSERT_NE(r, nullptr);
  EXPECT_THAT(r->Death(NodeKey{"G", "Ghost"}, "", kT2), IsOk());
  EXPECT_THAT(r->Nodes(), IsEmpty());
  BringOnline(*r);
  EXPECT_THAT(r->Death(kNode, "D9", kT2), IsOk());
  auto node = r->Node("G", "N");
  ASSERT_TRUE(node.has_value());
  EXPECT_EQ(node->devices.size(), 2u);
  EXPECT_TRUE(node->devices[0].online);
  EXPECT_TRUE(node->devices[1].online);
}

TEST_F(RegistryTest, NodeRebirthMarksDevicesOfflineUntilTheirOwnBirth) {
  auto r = Open();
  ASSERT_NE(r, nullptr);
  BringOnline(*r);
  std::vector<MetricInfo*> node_metrics = {births_.Add(kNode, "", "bdSeq", DataType::kInt64)};
  ASSERT_THAT(r->Birth(kNode, "", 4, node_metrics, kT2), IsOk());
  auto node = r->Node("G", "N");
  ASSERT_TRUE(node.has_value());
  EXPECT_TRUE(node->online);
  EXPECT_EQ(node->since, kT2);
  EXPECT_EQ(node->bdseq, 4u);
  EXPECT_THAT(node->metrics, ElementsAre(Rec("G/N/bdSeq", "bdSeq", "Int64")))
      << "the rebirth replaces the node metrics";
  ASSERT_EQ(node->devices.size(), 2u);
  EXPECT_FALSE(node->devices[0].online);
  EXPECT_EQ(node->devices[0].since, kT2);
  EXPECT_FALSE(node->devices[1].online);

  std::vector<MetricInfo*> d1 = {births_.Add(kNode, "D1", "Pressure", DataType::kDouble, "kPa")};
  ASSERT_THAT(r->Birth(kNode, "D1", 4, d1, kT3), IsOk());
  node = r->Node("G", "N");
  ASSERT_TRUE(node.has_value());
  EXPECT_FALSE(node->devices[0].online) << "D0 has not been born again";
  EXPECT_TRUE(node->devices[1].online);
  EXPECT_EQ(node->devices[1].since, kT3);
  EXPECT_THAT(node->devices[1].metrics,
              ElementsAre(Rec("G/N/D1/Pressure", "Pressure", "Double", "kPa")));
}

TEST_F(RegistryTest, MetricsAreFilteredByPrefixAndSortedByPath) {
  auto r = Open();
  ASSERT_NE(r, nullptr);
  BringOnline(*r);
  const NodeKey other{"A", "Z"};
  std::vector<MetricInfo*> z = {births_.Add(other, "", "bdSeq", DataType::kInt64),
                                births_.Add(other, "", "Alarm", DataType::kString)};
  ASSERT_THAT(r->Birth(other, "", 0, z, kT1), IsOk());

  EXPECT_THAT(r->Metrics(""),
              ElementsAre(Rec("A/Z/Alarm", "Alarm", "String"), Rec("A/Z/bdSeq", "bdSeq", "Int64"),
                          Rec("G/N/D0/Level", "Level", "Double", "m"),
                          Rec("G/N/D1/Count", "Count", "Int32"),
                          Rec("G/N/D1/Pressure", "Pressure", "Float", "bar"),
                          Rec("G/N/Temperature", "Temperature", "Double", "degC"),
                          Rec("G/N/bdSeq", "bdSeq", "Int64")));
  EXPECT_THAT(r->Metrics("G/N/D1/"),
              ElementsAre(Rec("G/N/D1/Count", "Count", "Int32"),
                          Rec("G/N/D1/Pressure", "Pressure", "Float", "bar")));
  EXPECT_THAT(r->Metrics("G/N/D"), ElementsAre(Rec("G/N/D0/Level", "Level", "Double", "m"),
                                               Rec("G/N/D1/Count", "Count", "Int32"),
                                               Rec("G/N/D1/Pressure", "Pressure", "Float", "bar")));
  EXPECT_THAT(r->Metrics("G/N/D1/Pressure"),
              ElementsAre(Rec("G/N/D1/Pressure", "Pressure", "Float", "bar")));
  EXPECT_THAT(r->Metrics("g/"), IsEmpty()) << "prefixes are case-sensitive";
  EXPECT_THAT(r->Metrics("X"), IsEmpty());
}

// PrimaryHost names the device of a node birth with an empty std::string_view, whose data()
// is null: it must be stored as '' (not SQL NULL, which the schema refuses).
TEST_F(RegistryTest, NodeBirthWithANullDeviceViewIsStored) {
  {
    auto r = Open();
    ASSERT_NE(r, nullptr);
    std::vector<MetricInfo*> metrics = {births_.Add(kNode, "", "bdSeq", DataType::kInt64)};
    ASSERT_THAT(r->Birth(kNode, std::string_view(), 1, metrics, kT1), IsOk());
    ASSERT_THAT(r->Death(kNode, std::string_view(), kT2), IsOk());
  }
  auto reopened = Open();
  ASSERT_NE(reopened, nullptr);
  auto node = reopened->Node("G", "N");
  ASSERT_TRUE(node.has_value());
  EXPECT_THAT(node->metrics, ElementsAre(Rec("G/N/bdSeq", "bdSeq", "Int64")));
}

TEST_F(RegistryTest, ReopenedRegistryHasEverythingOffline) {
  {
    auto r = Open();
    ASSERT_NE(r, nullptr);
    BringOnline(*r);
    ASSERT_THAT(r->Death(kNode, "D1", kT2), IsOk());
  }
  auto r = Open();
  ASSERT_NE(r, nullptr);
  auto nodes = r->Nodes();
  ASSERT_EQ(nodes.size(), 1u);
  const NodeRecord& node = nodes[0];
  EXPECT_EQ(node.group, "G");
  EXPECT_EQ(node.node, "N");
  EXPECT_FALSE(node.online) << "offline until the next birth";
  EXPECT_EQ(node.since, kT1);
  EXPECT_EQ(node.bdseq, 3u);
  EXPECT_THAT(node.metrics, ElementsAre(Rec("G/N/bdSeq", "bdSeq", "Int64"),
                                        Rec("G/N/Temperature", "Temperature", "Double", "degC")));
  ASSERT_EQ(node.devices.size(), 2u);
  EXPECT_EQ(node.devices[0].device, "D0");
  EXPECT_FALSE(node.devices[0].online);
  EXPECT_EQ(node.devices[0].since, kT1);
  EXPECT_THAT(node.devices[0].metrics, ElementsAre(Rec("G/N/D0/Level", "Level", "Double", "m")));
  EXPECT_EQ(node.devices[1].device, "D1");
  EXPECT_FALSE(node.devices[1].online);
  EXPECT_EQ(node.devices[1].since, kT2);
  EXPECT_THAT(node.devices[1].metrics,
              ElementsAre(Rec("G/N/D1/Pressure", "Pressure", "Float", "bar"),
                          Rec("G/N/D1/Count", "Count", "Int32")))
      << "in the order of the birth";
  EXPECT_EQ(r->Metrics("").size(), 5u);
}

TEST_F(RegistryTest, ReopenedRegistryHasTheMetricsOfTheLatestBirth) {
  {
    auto r = Open();
    ASSERT_NE(r, nullptr);
    BringOnline(*r);
    std::vector<MetricInfo*> node = {births_.Add(kNode, "", "bdSeq", DataType::kInt64),
                                     births_.Add(kNode, "", "Mode", DataType::kString)};
    ASSERT_THAT(r->Birth(kNode, "", 4, node, kT3), IsOk());
    std::vector<MetricInfo*> d0 = {births_.Add(kNode, "D0", "Level", DataType::kFloat, "cm")};
    ASSERT_THAT(r->Birth(kNode, "D0", 4, d0, kT4), IsOk());
  }
  auto r = Open();
  ASSERT_NE(r, nullptr);
  auto node = r->Node("G", "N");
  ASSERT_TRUE(node.has_value());
  EXPECT_FALSE(node->online);
  EXPECT_EQ(node->since, kT3);
  EXPECT_EQ(node->bdseq, 4u);
  EXPECT_THAT(node->metrics,
              ElementsAre(Rec("G/N/bdSeq", "bdSeq", "Int64"), Rec("G/N/Mode", "Mode", "String")));
  ASSERT_EQ(node->devices.size(), 2u);
  EXPECT_EQ(node->devices[0].since, kT4);
  EXPECT_THAT(node->devices[0].metrics, ElementsAre(Rec("G/N/D0/Level", "Level", "Float", "cm")));
  EXPECT_EQ(node->devices[1].since, kT3) << "the rebirth took D1 offline";
  EXPECT_FALSE(node->devices[1].online);
}

TEST_F(RegistryTest, ReopenedRegistryCanBeBornAgain) {
  {
    auto r = Open();
    ASSERT_NE(r, nullptr);
    BringOnline(*r);
  }
  auto r = Open();
  ASSERT_NE(r, nullptr);
  std::vector<MetricInfo*> node = {births_.Add(kNode, "", "bdSeq", DataType::kInt64)};
  ASSERT_THAT(r->Birth(kNode, "", 5, node, kT4), IsOk());
  auto n = r->Node("G", "N");
  ASSERT_TRUE(n.has_value());
  EXPECT_TRUE(n->online);
  EXPECT_EQ(n->bdseq, 5u);
  EXPECT_EQ(n->devices.size(), 2u);
  EXPECT_FALSE(n->devices[0].online);
}

TEST_F(RegistryTest, OpenFailsNamingTheFile) {
  const std::string bad = dir_.path() + "/no/such/dir/registry.db";
  auto r = Registry::Open(bad);
  EXPECT_THAT(r, StatusIs(StatusCode::kUnavailable, HasSubstr(bad)));
}

}  // namespace
}  // namespace kiln::server
