#pragma once
// TempDir: a fresh directory for one test, under $TMPDIR (or /tmp), removed with the object
// together with everything in it. A test fails (ADD_FAILURE) when it cannot be created.
// Single-threaded: create and destroy it on the test's thread.
#include <string>

namespace kiln::testing {

class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  // The directory's absolute path, without a trailing slash.
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace kiln::testing
