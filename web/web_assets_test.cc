#include "web/web_assets.h"

#include <gtest/gtest.h>

#include <string>

namespace kiln::web {
namespace {

TEST(WebAssetsTest, RootAndIndexServeTheDashboardPage) {
  const Asset* root = FindAsset("/");
  const Asset* index = FindAsset("/index.html");
  ASSERT_NE(root, nullptr);
  ASSERT_EQ(root, index);
  EXPECT_EQ(index->content_type, "text/html; charset=utf-8");
  EXPECT_NE(index->body.find("<!doctype html>"), std::string_view::npos);
  // The page loads only what is embedded.
  EXPECT_NE(index->body.find("/vendor/uPlot.iife.min.js"), std::string_view::npos);
  EXPECT_NE(index->body.find("/app.js"), std::string_view::npos);
}

TEST(WebAssetsTest, UplotIsEmbedded) {
  const Asset* js = FindAsset("/vendor/uPlot.iife.min.js");
  const Asset* css = FindAsset("/vendor/uPlot.min.css");
  ASSERT_NE(js, nullptr);
  ASSERT_NE(css, nullptr);
  EXPECT_EQ(js->content_type, "text/javascript; charset=utf-8");
  EXPECT_EQ(css->content_type, "text/css; charset=utf-8");
  EXPECT_NE(js->body.find("uPlot"), std::string_view::npos);
  EXPECT_GT(js->body.size(), 10000u);
  EXPECT_NE(css->body.find(".uplot"), std::string_view::npos);
}

TEST(WebAssetsTest, ContentTypesFollowExtensions) {
  for (const Asset& asset : AllAssets()) {
    SCOPED_TRACE(std::string(asset.path));
    EXPECT_FALSE(asset.body.empty());
    if (asset.path.ends_with(".js")) {
      EXPECT_EQ(asset.content_type, "text/javascript; charset=utf-8");
    } else if (asset.path.ends_with(".css")) {
      EXPECT_EQ(asset.content_type, "text/css; charset=utf-8");
    } else if (asset.path.ends_with(".html")) {
      EXPECT_EQ(asset.content_type, "text/html; charset=utf-8");
    }
  }
  ASSERT_NE(FindAsset("/app.js"), nullptr);
  EXPECT_EQ(FindAsset("/favicon.svg")->content_type, "image/svg+xml");
}

TEST(WebAssetsTest, UnknownPathsAreNotFound) {
  EXPECT_EQ(FindAsset(""), nullptr);
  EXPECT_EQ(FindAsset("/nope.js"), nullptr);
  EXPECT_EQ(FindAsset("index.html"), nullptr);
  EXPECT_EQ(FindAsset("/api/v1/nodes"), nullptr);
}

TEST(WebAssetsTest, BodiesAreTheFilesExactly) {
  // No NUL terminator or padding leaks into a body.
  for (const Asset& asset : AllAssets()) {
    SCOPED_TRACE(std::string(asset.path));
    EXPECT_EQ(asset.body.find('\0'), std::string_view::npos);
  }
  EXPECT_TRUE(FindAsset("/index.html")->body.ends_with("</html>\n"));
}

}  // namespace
}  // namespace kiln::web
