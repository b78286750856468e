#include "web/web_assets.h"

// AllAssets() is defined in the generated web_assets_data.cc.

namespace kiln::web {

const Asset* FindAsset(std::string_view path) {
  if (path == "/") path = "/index.html";
  for (const Asset& asset : AllAssets()) {
    if (asset.path == path) return &asset;
  }
  return nullptr;
}

}  // namespace kiln::web
