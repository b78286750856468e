#pragma once
// CommandService: writes from the platform to device tags, tracked from request to the
// device's confirmation (docs/API.md "Commands", wire format docs/formats/commands.md).
//
// A command is created `pending` by Submit (the same idempotency key returns the same
// command and never writes twice). It is sent as a Sparkplug DCMD (with kiln.commandId and
// kiln.expiresAt) as soon as its device is online: `delivered`. The edge's gate and the
// device decide the end: `succeeded` (written and read back), `failed`, `rejected`; the
// edge's result arrives on kiln/edge/<group>/<node>/command-result. A command whose TTL runs
// out before it could be delivered ends `expired` and is never sent; a delivered one whose
// result does not come within its TTL plus a grace period ends `failed` ("no result").
// Every command and every state change is written to an append-only audit table (SQLite
// triggers refuse UPDATE and DELETE) with who, when, what and the outcome.
//
// Thread-safe: REST handlers, the MQTT thread (results) and a ticker call it.
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "contract/sparkplug/payload.h"
#include "contract/value.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/mutex.h"
#include "core/status.h"
#include "server/registry.h"

namespace kiln::server {

namespace internal {
class Sqlite;
}  // namespace internal

enum class CommandState { kPending, kDelivered, kSucceeded, kFailed, kRejected, kExpired };
// "pending", "delivered", "succeeded", "failed", "rejected", "expired".
std::string_view CommandStateName(CommandState state);
std::optional<CommandState> ParseCommandState(std::string_view name);
bool IsFinal(CommandState state);

struct CommandRequest {
  std::string target;  // "group/node/device" (or "group/node" for a node metric)
  std::string metric;  // the metric name within the target
  contract::Value value;
  std::chrono::milliseconds ttl{30000};
  std::string idempotency_key;  // optional
  std::string who;              // for the audit trail
};

struct Command {
  std::string id;
  std::string idempotency_key;
  std::string target;
  std::string metric;
  contract::Value value;
  int64_t ttl_ms = 0;
  int64_t created_ms = 0;
  int64_t expires_ms = 0;
  CommandState state = CommandState::kPending;
  std::string reason;
  std::optional<double> read_back;
  int64_t delivered_ms = 0;  // 0: not yet
  int64_t finished_ms = 0;   // 0: not yet
  std::string who;
};

struct CommandOptions {
  // How long past its expiry a delivered command may wait for its result.
  std::chrono::milliseconds result_grace{5000};
};

class CommandService {
 public:
  // Publishes a command message (QoS 0, not retained). Errors mean "not sent now".
  using PublishFn = std::function<Status(const std::string& topic, const std::string& payload)>;

  // Opens or creates `file` (SQLite, every commit synced). Errors name the file.
  static Result<std::unique_ptr<CommandService>> Open(const std::filesystem::path& file,
                                                      Registry& registry, const Clock& clock,
                                                      Logger log, PublishFn publish,
                                                      CommandOptions options = {});
  ~CommandService();
  CommandService(const CommandService&) = delete;
  CommandService& operator=(const CommandService&) = delete;

  // Creates a command, or returns the one created earlier with the same idempotency key
  // (created = false). Tries to deliver it at once. A refused request is written to the
  // audit trail too (action "refused"). Errors: InvalidArgument for a malformed
  // request (the message says what), NotFound when the target or metric is unknown,
  // FailedPrecondition when the idempotency key was used for another command.
  struct Submitted {
    Command command;
    bool created = true;
  };
  Result<Submitted> Submit(const CommandRequest& request);
  std::optional<Command> Get(std::string_view id) const;
  // The newest first; those whose target starts with `target_prefix`.
  std::vector<Command> List(std::string_view target_prefix, size_t limit = 100) const;

  // Applies a result from an edge (the JSON of docs/formats/commands.md), received on
  // kiln/edge/<group>/<node>/command-result. Malformed results are logged and ignored. It
  // commits (with fsync): do not call it on the MQTT network thread.
  void OnResult(std::string_view group, std::string_view node, std::string_view json);
  // Delivers pending commands whose device is online, expires and times out the overdue.
  // Call periodically (every ~100 ms); a device's birth is noticed by the next call.
  void Tick();

  // The topic filter of results, for the MQTT subscription.
  static constexpr std::string_view kResultFilter = "kiln/edge/+/+/command-result";

 private:
  CommandService(std::unique_ptr<internal::Sqlite> db, Registry& registry, const Clock& clock,
                 Logger log, PublishFn publish, CommandOptions options);
  // Submit without the audit row of a refused request.
  Result<Submitted> Validate(const CommandRequest& request);
  Status Load() KILN_REQUIRES(mu_);
  Status Save(const Command& c) KILN_REQUIRES(mu_);
  std::optional<Command> Read(const char* where_sql, std::string_view arg) const KILN_REQUIRES(mu_);
  Status Audit(const Command& c, std::string_view action) KILN_REQUIRES(mu_);
  // Save and Audit in one transaction.
  Status Record(const Command& c, std::string_view action) KILN_REQUIRES(mu_);
  // Records the final state; on failure the command is left as it was (still open).
  Status Finish(Command& c, CommandState state, std::string reason) KILN_REQUIRES(mu_);
  Status Deliver(Command& c, sparkplug::DataType datatype) KILN_REQUIRES(mu_);
  int64_t NowMs() const { return ToEpochMillis(clock_.Now()); }

  std::unique_ptr<internal::Sqlite> db_;
  Registry& registry_;
  const Clock& clock_;
  Logger log_;
  PublishFn publish_;
  CommandOptions options_;
  mutable Mutex mu_;
  // The commands not yet final (all others are only in the database), oldest first.
  std::vector<Command> open_ KILN_GUARDED_BY(mu_);
  uint64_t next_id_ KILN_GUARDED_BY(mu_) = 1;
};

}  // namespace kiln::server
