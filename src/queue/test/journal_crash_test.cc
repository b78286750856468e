// Crash tests of the journal: a child process killed with SIGKILL at random moments, and
// simulated power cuts at chosen file operations. After each crash the journal must hold
// every sample it reported durable, exactly once, in order, with the right content, and
// nothing that was never appended.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <random>
#include <thread>

#include "core/mutex.h"
#include "core/testing/capturing_sink.h"
#include "core/testing/fault_injection_env.h"
#include "core/testing/temp_dir.h"
#include "queue/journal.h"
#include "queue/test/journal_test_util.h"
#include "testing/status_matchers.h"

namespace kiln::queue {
namespace {

using ::kiln::testing::CapturingSink;
using ::kiln::testing::FaultInjectionEnv;
using ::kiln::testing::IsOk;
using ::kiln::testing::TempDir;
using testing::Delivered;
using testing::ReadAllBacklog;

// What round `round` appends as id `id`: recognisable, and different in every round, so a
// sample that survived from an earlier life of the same id would be noticed.
contract::Sample Content(uint64_t id, uint32_t round) {
  return contract::Sample{round, contract::Value(static_cast<int64_t>(id) * 3 + 1),
                          contract::Quality(), Timestamp(std::chrono::nanoseconds(id * 1000))};
}

// What the test knows: the round that wrote each id verified so far.
class Model {
 public:
  // Checks what a reopened journal holds after round `round` reported ids below
  // `durable_end` durable, then takes it as the new truth.
  void Verify(Journal& j, uint32_t round, uint64_t durable_end) {
    const uint64_t end = j.next_id();
    ASSERT_GE(end, durable_end) << "round " << round << " lost durable samples";
    ASSERT_GE(end, static_cast<uint64_t>(rounds_.size() + 1)) << "round " << round;
    const Delivered d = ReadAllBacklog(j, 997);
    ASSERT_EQ(d.ids.size(), end - 1) << "round " << round;
    for (uint64_t i = 0; i < d.ids.size(); ++i) {
      const uint64_t id = i + 1;
      ASSERT_EQ(d.ids[i], id) << "round " << round;
      const uint32_t want_round = id <= rounds_.size() ? rounds_[id - 1] : round;
      ASSERT_EQ(d.samples[i], Content(id, want_round)) << "round " << round << " id " << id;
    }
    rounds_.resize(end - 1, round);
  }
  uint64_t end() const { return rounds_.size() + 1; }
  uint32_t round_of(uint64_t id) const { return rounds_[id - 1]; }

 private:
  std::vector<uint32_t> rounds_;
};

JournalOptions CrashOptions(const std::string& dir, SyncPolicy sync) {
  JournalOptions o;
  o.dir = dir;
  o.sync = sync;
  o.segment_bytes = 16 * 1024;
  o.max_bytes = 512 << 20;
  o.sync_interval = std::chrono::milliseconds(5);
  return o;
}

// The child: appends batches forever; after each durable one writes the end of what is
// durable to `fd`. With `ack_to` it first acknowledges ids below it, makes that durable
// and reports it as the negative number -ack_to.
[[noreturn]] void RunChild(const std::string& dir, SyncPolicy sync, int fd, uint32_t round,
                           uint64_t ack_to) {
  SystemClock clock;
  NullSink sink;
  auto j = Journal::Open(CrashOptions(dir, sync), clock, Logger(sink, "child"));
  if (!j.ok()) _exit(2);
  if (ack_to > 1) {
    const IdRange r{1, ack_to - 1};
    (*j)->Ack(std::span(&r, 1));
    if (!(*j)->RunOnce().ok()) _exit(5);
    const int64_t marker = -static_cast<int64_t>(ack_to);
    if (write(fd, &marker, sizeof(marker)) != sizeof(marker)) _exit(6);
  }
  std::mt19937 rng(round);
  std::vector<contract::Sample> batch;
  while (true) {
    const uint64_t first = (*j)->next_id();
    batch.clear();
    for (uint64_t n = 1 + rng() % 40, i = 0; i < n; ++i) batch.push_back(Content(first + i, round));
    if (!(*j)->Push(batch).ok()) _exit(3);
    const uint64_t end = (*j)->next_id();
    if (sync != SyncPolicy::kAlways && !(*j)->WaitDurable(end).ok()) _exit(4);
    const int64_t v = static_cast<int64_t>(end);
    if (write(fd, &v, sizeof(v)) != sizeof(v)) _exit(6);
  }
}

struct ChildReport {
  uint64_t durable_end = 0;
  uint64_t acked_to = 0;
};

// Runs a child for `ms` milliseconds, kills it with SIGKILL and returns what it reported.
// With `after_append` the milliseconds count from its first durable append (so a loaded
// machine still kills it while appending); otherwise from its start, which may fall into
// its recovery.
ChildReport RunAndKill(const std::string& dir, SyncPolicy sync, uint32_t round, int ms,
                       uint64_t ack_to = 0, bool after_append = false) {
  int fds[2];
  EXPECT_EQ(pipe(fds), 0);
  const pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    RunChild(dir, sync, fds[1], round, ack_to);
  }
  close(fds[1]);
  // Drain the pipe while the child runs, so it never blocks on a full pipe.
  ChildReport report;
  Mutex mu;
  CondVar acked;
  bool ack_reported = false;
  bool appended = false;
  std::thread reader([&] {
    int64_t v;
    while (read(fds[0], &v, sizeof(v)) == sizeof(v)) {
      MutexLock lock(mu);
      if (v < 0) {
        report.acked_to = static_cast<uint64_t>(-v);
        ack_reported = true;
      } else {
        report.durable_end = static_cast<uint64_t>(v);
        appended = true;
      }
      acked.NotifyAll();
    }
  });
  if (ack_to > 0) {  // the random moment comes after the acknowledgement is durable
    MutexLock lock(mu);
    EXPECT_TRUE(acked.WaitFor(lock, std::chrono::seconds(20), [&] { return ack_reported; }));
  }
  if (after_append) {
    MutexLock lock(mu);
    EXPECT_TRUE(acked.WaitFor(lock, std::chrono::seconds(20), [&] { return appended; }));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));  // the random moment
  kill(pid, SIGKILL);
  int status = 0;
  EXPECT_EQ(waitpid(pid, &status, 0), pid);
  reader.join();
  close(fds[0]);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
      << "the child exited by itself with " << (WIFEXITED(status) ? WEXITSTATUS(status) : -1);
  return report;
}

TEST(JournalCrashTest, KillNineAtRandomMomentsLosesNothingDurable) {
  TempDir tmp;
  const std::string dir = tmp.path() + "/queue";
  SystemClock clock;
  CapturingSink sink;
  Model model;
  std::mt19937 rng(20261127);
  constexpr uint32_t kRounds = 40;
  uint64_t reported = 0;
  for (uint32_t round = 1; round <= kRounds; ++round) {
    const SyncPolicy sync = round % 2 == 0 ? SyncPolicy::kAlways : SyncPolicy::kInterval;
    // Every other pair of rounds the random moment counts from the first durable append.
    const bool after_append = round % 4 >= 2;
    const ChildReport r =
        RunAndKill(dir, sync, round, 1 + static_cast<int>(rng() % 30), 0, after_append);
    if (r.durable_end > 0) ++reported;
    JournalOptions o = CrashOptions(dir, sync);
    o.background = false;
    auto j = Journal::Open(o, clock, Logger(sink, "parent"));
    ASSERT_THAT(j, IsOk());
    model.Verify(**j, round, r.durable_end);
    if (::testing::Test::HasFatalFailure()) return;
  }
  EXPECT_GE(reported, kRounds / 2) << "the children hardly ever got to append";
  EXPECT_GT(model.end(), 200u);

  // The acknowledged position survives a kill too.
  const uint64_t ack_to = model.end() / 2;
  const ChildReport r = RunAndKill(dir, SyncPolicy::kAlways, kRounds + 1, 30, ack_to);
  ASSERT_EQ(r.acked_to, ack_to);
  JournalOptions o = CrashOptions(dir, SyncPolicy::kAlways);
  o.background = false;
  auto j = Journal::Open(o, clock, Logger(sink, "parent"));
  ASSERT_THAT(j, IsOk());
  const uint64_t end = (*j)->next_id();
  ASSERT_GE(end, r.durable_end);
  EXPECT_EQ((*j)->stats().depth, end - ack_to);
  (*j)->StartDelivery();
  SampleBatch b = (*j)->ReadBacklog(10);
  ASSERT_FALSE(b.empty());
  EXPECT_EQ(b.ids.front().first, ack_to);
  EXPECT_EQ(b.samples.front(), Content(ack_to, model.round_of(ack_to)));
}

// A power cut at a chosen file operation: the process dies there (every later operation
// fails), then unsynced sectors are kept or lost at random and unsynced renames and
// creations undone. Some cuts hit the recovery at open itself.
TEST(JournalCrashTest, PowerCutAtAnyFileOperationKeepsWhatWasDurable) {
  TempDir tmp;
  const std::string dir = tmp.path() + "/queue";
  FakeClock clock;
  CapturingSink sink;
  FaultInjectionEnv env;
  Model model;
  constexpr uint32_t kRounds = 40;
  for (uint32_t round = 1; round <= kRounds; ++round) {
    const SyncPolicy sync = round % 3 == 0 ? SyncPolicy::kInterval : SyncPolicy::kAlways;
    JournalOptions o = CrashOptions(dir, sync);
    // Every other group-commit round with the background threads: the writer thread appends
    // and new segment names are synced by the sync round. Its batches are larger, so that
    // segments roll before the cut (a few operations per batch).
    o.background = round % 6 == 0;
    o.env = &env;
    const int64_t cut = 1 + static_cast<int64_t>(round * 7 % 61);
    env.StartTracking();
    uint64_t durable_end = 0;
    const bool cut_during_open = round % 5 == 0;
    if (cut_during_open) env.CrashAfter(cut % 12);
    {
      auto j = Journal::Open(o, clock, Logger(sink, "cut"));
      if (j.ok()) {
        if (!cut_during_open) env.CrashAfter(cut);
        std::mt19937 rng(round);
        for (int i = 0; i < 200 && !env.crashed(); ++i) {
          const uint64_t first = (*j)->next_id();
          std::vector<contract::Sample> batch;
          for (uint64_t n = 1 + rng() % (o.background ? 600 : 60), k = 0; k < n; ++k)
            batch.push_back(Content(first + k, round));
          if (!(*j)->Push(batch).ok()) break;
          if (sync != SyncPolicy::kAlways && !(*j)->WaitDurable((*j)->next_id()).ok()) break;
          durable_end = (*j)->next_id();
        }
      }
    }
    env.SimulatePowerLoss(/*seed=*/round, /*keep=*/0.5);
    JournalOptions clean = o;
    clean.env = nullptr;  // the recovery itself runs on an intact disk
    auto j = Journal::Open(clean, clock, Logger(sink, "check"));
    ASSERT_THAT(j, IsOk()) << "round " << round;
    ASSERT_EQ((*j)->stats().dropped, 0u) << "round " << round;
    model.Verify(**j, round, durable_end);
    if (::testing::Test::HasFatalFailure()) return;
  }
  EXPECT_GT(model.end(), 1000u);
}

// Power cuts while acknowledgements are written, acknowledged segments retired into spares,
// sealed ones compressed and spares prepared: every durable sample that was not durably
// acknowledged is still there, once, with its content.
TEST(JournalCrashTest, PowerCutDuringRetirementAndCompressionKeepsUnacknowledgedSamples) {
  TempDir tmp;
  const std::string dir = tmp.path() + "/queue";
  FakeClock clock;
  CapturingSink sink;
  FaultInjectionEnv env;
  std::vector<uint32_t> rounds;  // the round that wrote each id (index id - 1)
  uint64_t acked_durably = 1;    // ids below it were acknowledged and that is durable
  uint64_t acked_at_most = 1;    // ids at or above it were never acknowledged
  constexpr uint32_t kRounds = 50;
  for (uint32_t round = 1; round <= kRounds; ++round) {
    JournalOptions o = CrashOptions(dir, SyncPolicy::kAlways);
    o.background = false;
    o.compress = true;
    o.env = &env;
    env.StartTracking();
    uint64_t durable_end = 0;
    {
      auto j = Journal::Open(o, clock, Logger(sink, "cut"));
      ASSERT_THAT(j, IsOk());
      durable_end = (*j)->next_id();
      env.CrashAfter(5 + static_cast<int64_t>(round * 13 % 120));
      std::mt19937 rng(round);
      for (int i = 0; i < 300 && !env.crashed(); ++i) {
        const uint64_t first = (*j)->next_id();
        std::vector<contract::Sample> batch;
        for (uint64_t n = 1 + rng() % 80, k = 0; k < n; ++k) {
          batch.push_back(Content(first + k, round));
        }
        if (!(*j)->Push(batch).ok()) break;
        durable_end = (*j)->next_id();
        if (i % 4 == 3) {
          // Acknowledge up to a point behind the writer, then let the maintenance run.
          const uint64_t to =
              std::max(acked_at_most, durable_end > 2500 ? durable_end - 2500 : uint64_t{1});
          const IdRange r{1, to - 1};
          (*j)->Ack(std::span(&r, 1));
          acked_at_most = std::max(acked_at_most, to);
          if (!(*j)->RunOnce().ok()) break;
          acked_durably = std::max(acked_durably, to);
        }
      }
    }
    env.SimulatePowerLoss(/*seed=*/round, /*keep=*/0.5);
    JournalOptions clean = o;
    clean.env = nullptr;
    auto j = Journal::Open(clean, clock, Logger(sink, "check"));
    ASSERT_THAT(j, IsOk()) << "round " << round;
    const uint64_t end = (*j)->next_id();
    ASSERT_GE(end, durable_end) << "round " << round;
    const Delivered d = ReadAllBacklog(**j, 501);
    // Nothing durably acknowledged comes back; everything else is there from acked_at_most on.
    uint64_t prev = 0;
    for (size_t i = 0; i < d.ids.size(); ++i) {
      const uint64_t id = d.ids[i];
      ASSERT_GT(id, prev) << "round " << round;
      ASSERT_GE(id, acked_durably) << "round " << round;
      const uint32_t want = id <= rounds.size() ? rounds[id - 1] : round;
      ASSERT_EQ(d.samples[i], Content(id, want)) << "round " << round << " id " << id;
      prev = id;
    }
    const auto from = std::lower_bound(d.ids.begin(), d.ids.end(), acked_at_most);
    ASSERT_EQ(static_cast<uint64_t>(d.ids.end() - from), end - std::min(end, acked_at_most))
        << "round " << round << ": unacknowledged samples missing";
    rounds.resize(end - 1, round);
    ASSERT_EQ((*j)->stats().dropped, 0u) << "round " << round;
  }
  EXPECT_GT(rounds.size(), 2000u);
  EXPECT_GT(acked_durably, 1000u);
}

}  // namespace
}  // namespace kiln::queue
