// Crash test of the historian: a child process appends (wal_sync kAlways, background sealing
// on, small chunks so that sealing rounds, merges and WAL deletions happen all the time) and
// is killed with SIGKILL at random moments. After each kill the reopened store must hold
// every point the child saw acknowledged, once, in order, with its value, and nothing else.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <limits>
#include <random>
#include <thread>

#include "core/mutex.h"
#include "core/testing/capturing_sink.h"
#include "core/testing/temp_dir.h"
#include "historian/historian.h"
#include "historian/test/historian_test_util.h"
#include "testing/status_matchers.h"

namespace kiln::historian {
namespace {

using ::kiln::testing::CapturingSink;
using ::kiln::testing::IsOk;
using ::kiln::testing::TempDir;
using testing::CheckChunks;

constexpr int kSeries = 3;

double ValueAt(int64_t t, int series) { return static_cast<double>(t) / 4 + series * 1000; }

HistorianOptions CrashOptions(const std::string& dir) {
  HistorianOptions o;
  o.dir = dir;
  o.wal_sync = WalSync::kAlways;
  o.chunk_points = 64;
  o.seal_age = std::chrono::milliseconds(5);
  o.wal_segment_bytes = 8 << 10;
  return o;
}

// The child: appends batches from time `start` on, each followed by a few late repeats of
// earlier points; after each acknowledged Append writes the end of what it wrote to `fd`.
[[noreturn]] void RunChild(const std::string& dir, int64_t start, int fd, uint32_t seed) {
  NullSink sink;
  HistorianOptions o = CrashOptions(dir);
  o.log = &sink;
  auto h = Historian::Open(o);
  if (!h.ok()) _exit(2);
  std::vector<SeriesId> ids;
  for (int s = 0; s < kSeries; ++s) {
    auto id = (*h)->Series("s" + std::to_string(s), SeriesKind::kNumeric);
    if (!id.ok()) _exit(3);
    ids.push_back(*id);
  }
  std::mt19937 rng(seed);
  std::vector<PointWrite> batch;
  for (int64_t t = start;;) {
    batch.clear();
    const int64_t n = 1 + static_cast<int64_t>(rng() % 50);
    for (int64_t k = 0; k < n; ++k) {
      for (int s = 0; s < kSeries; ++s) {
        batch.push_back({ids[static_cast<size_t>(s)], Point{t + k, ValueAt(t + k, s), 0, false}});
      }
    }
    for (int k = 0; k < 3 && t > 0; ++k) {
      const int64_t late = static_cast<int64_t>(rng() % static_cast<uint64_t>(t));
      const int s = static_cast<int>(rng() % kSeries);
      batch.push_back({ids[static_cast<size_t>(s)], Point{late, ValueAt(late, s), 0, false}});
    }
    if (!(*h)->Append(batch).ok()) _exit(4);
    t += n;
    if (write(fd, &t, sizeof(t)) != sizeof(t)) _exit(6);
  }
}

// Runs a child for `ms` after its first acknowledged append, kills it, returns the end of
// what it reported acknowledged (or `start` when nothing was).
int64_t RunAndKill(const std::string& dir, int64_t start, uint32_t seed, int ms) {
  int fds[2];
  EXPECT_EQ(pipe(fds), 0);
  const pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    RunChild(dir, start, fds[1], seed);
  }
  close(fds[1]);
  Mutex mu;
  CondVar cv;
  int64_t acked = start;
  bool appended = false;
  std::thread reader([&] {
    int64_t v;
    while (read(fds[0], &v, sizeof(v)) == sizeof(v)) {
      MutexLock lock(mu);
      acked = v;
      appended = true;
      cv.NotifyAll();
    }
  });
  {
    MutexLock lock(mu);
    EXPECT_TRUE(cv.WaitFor(lock, std::chrono::seconds(20), [&] { return appended; }));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));  // the random moment
  kill(pid, SIGKILL);
  int status = 0;
  EXPECT_EQ(waitpid(pid, &status, 0), pid);
  reader.join();
  close(fds[0]);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
      << "the child exited by itself with " << (WIFEXITED(status) ? WEXITSTATUS(status) : -1);
  MutexLock lock(mu);
  return acked;
}

TEST(HistorianCrashTest, KillNineAtRandomMomentsLosesNoAcknowledgedPoint) {
  TempDir tmp;
  const std::string dir = tmp.path() + "/h";
  CapturingSink sink;
  std::mt19937 rng(20261127);
  int64_t next = 0;  // where the next child starts writing
  constexpr int kRounds = 12;
  for (int round = 1; round <= kRounds; ++round) {
    const int64_t acked =
        RunAndKill(dir, next, static_cast<uint32_t>(round), 5 + static_cast<int>(rng() % 60));
    HistorianOptions o = CrashOptions(dir);
    o.background = false;
    o.log = &sink;
    auto h = Historian::Open(o);
    ASSERT_THAT(h, IsOk()) << "round " << round;
    int64_t end = 0;
    for (int s = 0; s < kSeries; ++s) {
      auto info = (*h)->Find("s" + std::to_string(s));
      ASSERT_TRUE(info.has_value()) << "round " << round;
      auto got = (*h)->QueryRaw(info->id, std::numeric_limits<int64_t>::min(),
                                std::numeric_limits<int64_t>::max());
      ASSERT_THAT(got, IsOk());
      // Points 0 .. n-1, each with its value; at least up to what was acknowledged.
      ASSERT_GE(static_cast<int64_t>(got->size()), acked) << "round " << round << " series " << s;
      for (size_t i = 0; i < got->size(); ++i) {
        const int64_t t = static_cast<int64_t>(i);
        ASSERT_EQ((*got)[i], (Point{t, ValueAt(t, s), 0, false}))
            << "round " << round << " series " << s;
      }
      end = std::max(end, static_cast<int64_t>(got->size()));
    }
    // Some rounds also seal everything while reopened.
    if (round % 3 == 0) {
      ASSERT_THAT((*h)->Flush(), IsOk());
    }
    for (int s = 0; s < kSeries; ++s) CheckChunks(dir, (*h)->Find("s" + std::to_string(s))->id);
    // A series may hold points beyond another's end (a torn batch): the next child rewrites
    // from the shortest, with the same values.
    int64_t shortest = end;
    for (int s = 0; s < kSeries; ++s) {
      auto got = (*h)->QueryRaw((*h)->Find("s" + std::to_string(s))->id, 0,
                                std::numeric_limits<int64_t>::max());
      shortest = std::min(shortest, static_cast<int64_t>(got->size()));
    }
    next = shortest;
  }
  EXPECT_GT(next, 1000);
}

}  // namespace
}  // namespace kiln::historian
