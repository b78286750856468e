#include "core/env.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "core/testing/fault_injection_env.h"
#include "testing/status_matchers.h"

namespace kiln {
namespace {

using ::kiln::testing::FaultInjectionEnv;
using ::kiln::testing::FileOp;
using ::kiln::testing::IsOk;
using ::kiln::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::UnorderedElementsAre;

std::span<const std::byte> Bytes(std::string_view s) { return std::as_bytes(std::span(s)); }

std::string ReadAll(Env& env, const std::string& path) {
  auto f = env.Open(path, OpenMode::kRead);
  if (!f.ok()) return "<" + f.status().ToString() + ">";
  std::string out((*f)->Size().value_or(0), '\0');
  auto n = (*f)->ReadAt(0, std::as_writable_bytes(std::span(out)));
  out.resize(n.value_or(0));
  return out;
}

class EnvTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* tmp = std::getenv("TMPDIR");
    std::string tmpl =
        std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/kiln-env-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string Path(std::string_view name) const { return dir_ + "/" + std::string(name); }

  std::string dir_;
};

TEST_F(EnvTest, PositionalReadWriteSizeTruncate) {
  Env& env = Env::Default();
  auto f = env.Open(Path("a"), OpenMode::kCreateNew);
  ASSERT_THAT(f, IsOk());
  ASSERT_THAT((*f)->WriteAt(0, Bytes("hello world")), IsOk());
  ASSERT_THAT((*f)->WriteAt(6, Bytes("kiln!")), IsOk());
  ASSERT_THAT((*f)->Sync(), IsOk());
  EXPECT_EQ((*f)->Size().value(), 11u);
  std::string buf(32, '\0');
  auto n = (*f)->ReadAt(6, std::as_writable_bytes(std::span(buf)));
  ASSERT_THAT(n, IsOk());
  EXPECT_EQ(buf.substr(0, *n), "kiln!");  // short read at the end of the file
  ASSERT_THAT((*f)->Truncate(5), IsOk());
  EXPECT_EQ(ReadAll(env, Path("a")), "hello");
  EXPECT_EQ(env.FileSize(Path("a")).value(), 5u);
  EXPECT_EQ((*f)->path(), Path("a"));
}

// More parts than one pwritev takes (64), empty ones among them, and the same through
// FaultInjectionEnv, whose files use File's default (a WriteAt per part).
TEST_F(EnvTest, WriteAtVWritesThePartsBackToBack) {
  std::vector<std::string> texts;
  std::string whole;
  for (int i = 0; i < 150; ++i) {
    texts.push_back(i % 7 == 3 ? "" : std::to_string(i * 37) + ",");
    whole += texts.back();
  }
  std::vector<std::span<const std::byte>> parts;
  for (const std::string& t : texts) parts.push_back(Bytes(t));
  FaultInjectionEnv faulty(Env::Default());
  for (Env* env : {&Env::Default(), static_cast<Env*>(&faulty)}) {
    const std::string path = Path(env == &faulty ? "faulty" : "plain");
    auto f = env->Open(path, OpenMode::kCreateNew);
    ASSERT_THAT(f, IsOk());
    ASSERT_THAT((*f)->WriteAt(0, Bytes("head:")), IsOk());
    ASSERT_THAT((*f)->WriteAtV(5, parts), IsOk());
    EXPECT_EQ(ReadAll(*env, path), "head:" + whole);
  }
}

TEST_F(EnvTest, DirectoryOperations) {
  Env& env = Env::Default();
  ASSERT_THAT(env.CreateDir(Path("x/y/z")), IsOk());
  ASSERT_THAT(env.CreateDir(Path("x/y/z")), IsOk());  // exists: fine
  ASSERT_THAT(env.Open(Path("x/y/z/f1"), OpenMode::kCreate), IsOk());
  ASSERT_THAT(env.Open(Path("x/y/z/f2"), OpenMode::kCreate), IsOk());
  ASSERT_THAT(env.Rename(Path("x/y/z/f2"), Path("x/y/z/f3")), IsOk());
  ASSERT_THAT(env.SyncDir(Path("x/y/z")), IsOk());
  EXPECT_THAT(env.ListDir(Path("x/y/z")).value(), UnorderedElementsAre("f1", "f3"));
  ASSERT_THAT(env.Remove(Path("x/y/z/f1")), IsOk());
  EXPECT_THAT(env.ListDir(Path("x/y/z")).value(), UnorderedElementsAre("f3"));
}

TEST_F(EnvTest, ErrorsNameTheOperationAndPath) {
  Env& env = Env::Default();
  EXPECT_THAT(env.Open(Path("missing"), OpenMode::kRead),
              StatusIs(StatusCode::kNotFound, HasSubstr("open " + Path("missing"))));
  ASSERT_THAT(env.Open(Path("a"), OpenMode::kCreateNew), IsOk());
  EXPECT_THAT(env.Open(Path("a"), OpenMode::kCreateNew),
              StatusIs(StatusCode::kAlreadyExists, HasSubstr("(EEXIST)")));
  EXPECT_THAT(env.Remove(Path("nope")), StatusIs(StatusCode::kNotFound));
  EXPECT_THAT(env.ListDir(Path("nope")), StatusIs(StatusCode::kNotFound));
  EXPECT_THAT(env.CreateDir(Path("a/b")), StatusIs(StatusCode::kNotFound));  // a is a file
}

TEST_F(EnvTest, LockFileIsExclusive) {
  Env& env = Env::Default();
  auto lock = env.LockFile(Path("LOCK"));
  ASSERT_THAT(lock, IsOk());
  EXPECT_THAT(env.LockFile(Path("LOCK")),
              StatusIs(StatusCode::kUnavailable, HasSubstr("held by another")));
  lock->reset();
  EXPECT_THAT(env.LockFile(Path("LOCK")), IsOk());
}

TEST(ErrnoToStatusTest, MapsErrnoToCodes) {
  EXPECT_THAT(
      ErrnoToStatus(ENOSPC, "write", "/q/seg"),
      StatusIs(StatusCode::kResourceExhausted, "write /q/seg: No space left on device (ENOSPC)"));
  EXPECT_THAT(ErrnoToStatus(EDQUOT, "write", "/q"), StatusIs(StatusCode::kResourceExhausted));
  EXPECT_THAT(ErrnoToStatus(EACCES, "open", "/q"),
              StatusIs(StatusCode::kPermissionDenied, HasSubstr("(EACCES)")));
  EXPECT_THAT(ErrnoToStatus(EROFS, "open", "/q"),
              StatusIs(StatusCode::kUnavailable, HasSubstr("Read-only file system (EROFS)")));
  EXPECT_THAT(ErrnoToStatus(EIO, "fdatasync", "/q"),
              StatusIs(StatusCode::kUnavailable, HasSubstr("fdatasync /q: Input/output error")));
  EXPECT_THAT(ErrnoToStatus(ENOENT, "open", "/q"), StatusIs(StatusCode::kNotFound));
}

TEST_F(EnvTest, FaultInjectionFailsChosenOperationsAndCounts) {
  FaultInjectionEnv env;
  auto f = env.Open(Path("seg-1.log"), OpenMode::kCreate);
  ASSERT_THAT(f, IsOk());
  env.InjectFault(FileOp::kWrite, ENOSPC, "seg-", /*times=*/1, /*partial_bytes=*/3);
  EXPECT_THAT((*f)->WriteAt(0, Bytes("abcdef")),
              StatusIs(StatusCode::kResourceExhausted, HasSubstr(Path("seg-1.log"))));
  EXPECT_EQ(ReadAll(env, Path("seg-1.log")), "abc");       // torn: a prefix was written
  ASSERT_THAT((*f)->WriteAt(0, Bytes("abcdef")), IsOk());  // only once
  env.InjectFault(FileOp::kSync, EIO);
  EXPECT_THAT((*f)->Sync(), StatusIs(StatusCode::kUnavailable));
  EXPECT_THAT((*f)->Sync(), StatusIs(StatusCode::kUnavailable));
  env.ClearFaults();
  EXPECT_THAT((*f)->Sync(), IsOk());
  EXPECT_EQ(env.count(FileOp::kSync), 3u);
  EXPECT_EQ(env.count(FileOp::kWrite), 2u);
  env.InjectFault(FileOp::kOpen, EROFS, "other");
  EXPECT_THAT(env.Open(Path("other"), OpenMode::kCreate), StatusIs(StatusCode::kUnavailable));
  EXPECT_THAT(env.Open(Path("seg-1.log"), OpenMode::kRead), IsOk());
}

TEST_F(EnvTest, PowerLossRevertsUnsyncedWritesAndDirectoryOperations) {
  FaultInjectionEnv env;
  env.StartTracking();
  {
    auto f = env.Open(Path("durable"), OpenMode::kCreateNew);
    ASSERT_THAT(f, IsOk());
    ASSERT_THAT((*f)->WriteAt(0, Bytes("synced")), IsOk());
    ASSERT_THAT((*f)->Sync(), IsOk());
    ASSERT_THAT(env.SyncDir(dir_), IsOk());
    ASSERT_THAT((*f)->WriteAt(0, Bytes("SYNCED and more")), IsOk());  // never synced
    auto g = env.Open(Path("fresh"), OpenMode::kCreateNew);           // directory never synced
    ASSERT_THAT(g, IsOk());
    ASSERT_THAT((*g)->WriteAt(0, Bytes("x")), IsOk());
    ASSERT_THAT((*g)->Sync(), IsOk());
  }
  env.SimulatePowerLoss(/*seed=*/1, /*keep=*/0.0);
  EXPECT_EQ(ReadAll(env, Path("durable")), "synced");
  EXPECT_THAT(env.ListDir(dir_).value(), UnorderedElementsAre("durable"));
}

TEST_F(EnvTest, CrashAfterFailsEveryLaterOperation) {
  FaultInjectionEnv env;
  env.StartTracking();
  auto f = env.Open(Path("f"), OpenMode::kCreateNew);
  ASSERT_THAT(f, IsOk());
  ASSERT_THAT(env.SyncDir(dir_), IsOk());
  env.CrashAfter(2);
  EXPECT_THAT((*f)->WriteAt(0, Bytes("aaaa")), IsOk());
  EXPECT_THAT((*f)->Sync(), IsOk());
  EXPECT_FALSE(env.crashed());
  EXPECT_THAT((*f)->WriteAt(4, Bytes("bbbb")), StatusIs(StatusCode::kUnavailable));
  EXPECT_TRUE(env.crashed());
  std::string buf(4, ' ');
  EXPECT_THAT((*f)->ReadAt(0, std::as_writable_bytes(std::span(buf))),
              StatusIs(StatusCode::kUnavailable));
  f->reset();
  env.SimulatePowerLoss(7, 0.0);
  EXPECT_EQ(ReadAll(env, Path("f")), "aaaa");
}

}  // namespace
}  // namespace kiln
