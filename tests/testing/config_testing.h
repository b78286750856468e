#pragma once
// Helpers for tests of config parsers that read one table of a TOML document.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/config.h"
#include "testing/status_matchers.h"

namespace kiln::testing {

// What a parser made of a table, with every error the document recorded.
template <typename Config>
struct ParsedTable {
  Config config;
  std::vector<std::string>
      errors;  // ConfigError::ToString() ("file:line:column: key: ..."), in order
};

// Parses `toml` (file name "test.toml"), expects exactly one table in the array of tables
// `array`, hands it to `parse` and returns the result with the document's errors.
template <typename Parse>
auto ParseOnlyTable(std::string_view toml, std::string_view array, Parse&& parse)
    -> ParsedTable<decltype(parse(std::declval<const ConfigTable&>()))> {
  ParsedTable<decltype(parse(std::declval<const ConfigTable&>()))> out;
  auto doc = ConfigDocument::Parse(toml, "test.toml");
  EXPECT_THAT(doc, IsOk());
  if (!doc.ok()) return out;
  std::vector<ConfigTable> tables = (*doc)->root().GetTableArray(array);
  EXPECT_THAT(tables, ::testing::SizeIs(1));
  if (tables.empty()) return out;
  out.config = std::forward<Parse>(parse)(tables[0]);
  for (const ConfigError& e : (*doc)->errors()) out.errors.push_back(e.ToString());
  return out;
}

}  // namespace kiln::testing
