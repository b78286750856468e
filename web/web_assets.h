#pragma once
// The web dashboard's static files (HTML, JS, CSS, and uPlot from npm), compiled into the
// binary at build time (web/CMakeLists.txt, web/embed_assets.cmake). kiln-server serves
// them at "/". The data is constant and lives for the whole program: thread-safe.
#include <span>
#include <string_view>

namespace kiln::web {

struct Asset {
  std::string_view path;          // URL path, e.g. "/index.html", "/vendor/uPlot.min.css"
  std::string_view content_type;  // e.g. "text/javascript; charset=utf-8"
  std::string_view body;
};

// The asset served at URL `path` (no query string or fragment), or nullptr when there is
// none. "/" is the dashboard's index.html.
const Asset* FindAsset(std::string_view path);

// Every asset, in the order of web/CMakeLists.txt.
std::span<const Asset> AllAssets();

}  // namespace kiln::web
