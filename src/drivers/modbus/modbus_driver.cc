#include "drivers/modbus/modbus_driver.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <utility>

#include "drivers/modbus/codec.h"
#include "drivers/modbus/internal/channel.h"

namespace kiln::drivers::modbus {

namespace {

using contract::Quality;
using contract::Sample;
using contract::Value;
using contract::ValueType;

// "FC3 holding:0..124".
std::string Describe(const ReadRequest& request) {
  return fmt::format("FC{} {}..{}", ReadFunctionCode(request.kind),
                     FormatRegister(request.kind, request.address),
                     request.address + request.count - 1);
}

ReadRequest SingleTagRequest(const ModbusTag& tag, uint32_t index) {
  return ReadRequest{tag.kind, tag.address, Width(tag), {index}};
}

// The function code of a write to `tag`: 5 (write single coil) for a coil, 6 (write single
// register) for a tag of one register, 16 (write multiple registers) for a wider one.
uint8_t WriteFunctionCode(const ModbusTag& tag) {
  if (tag.kind == RegisterKind::kCoil) return 5;
  return Width(tag) == 1 ? 6 : 16;
}

// "FC6 holding:4", "FC16 holding:0..3", "FC5 coil:2".
std::string DescribeWrite(const ModbusTag& tag) {
  const std::string first = FormatRegister(tag.kind, tag.address);
  if (Width(tag) == 1) return fmt::format("FC{} {}", WriteFunctionCode(tag), first);
  return fmt::format("FC{} {}..{}", WriteFunctionCode(tag), first, tag.address + Width(tag) - 1);
}

// "exception 02 illegal data address"; "exception 0C" for a code without a name.
std::string DescribeException(uint8_t code) {
  const std::string name = ExceptionName(code);
  if (name.starts_with("exception")) return fmt::format("exception {:02X}", code);
  return fmt::format("exception {:02X} {}", code, name);
}

// What a write sends: the registers of a holding register tag, or the state of a coil.
struct WritePayload {
  std::vector<uint16_t> registers;
  bool coil = false;
};

// Checks that `tag` can be written and converts `value` for it.
// Errors: FailedPrecondition for a read-only table; InvalidArgument for a value that does not
// fit the tag.
Result<WritePayload> EncodeWrite(const ModbusTag& tag, const Value& value) {
  const std::string where = FormatRegister(tag.kind, tag.address);
  if (tag.kind == RegisterKind::kInputRegister || tag.kind == RegisterKind::kDiscreteInput) {
    return FailedPreconditionError(fmt::format(
        "{} cannot be written: Modbus {}s are read-only", where,
        tag.kind == RegisterKind::kInputRegister ? "input register" : "discrete input"));
  }
  if (tag.kind == RegisterKind::kCoil) {
    Result<bool> bit = EncodeBit(value);
    if (!bit.ok()) return bit.status().WithContext(where);
    return WritePayload{{}, *bit};
  }
  if (!value.is_numeric()) {
    return InvalidArgumentError(fmt::format("{} ({}) cannot take a {} value", where,
                                            contract::ValueTypeName(tag.type),
                                            contract::ValueTypeName(value.type())));
  }
  // A NaN would slip through every min/max check on its way here.
  const double x = *value.AsDouble();
  if (!std::isfinite(x)) {
    return InvalidArgumentError(fmt::format("{}: {} is not a finite number", where, x));
  }
  // The codec rounds to the nearest integer, which suits a scaled tag's resolution; an
  // unscaled integer tag takes only integers.
  const bool scaled = tag.scale != 1.0 || tag.offset != 0.0;
  if (!scaled && contract::IsIntegerType(tag.type) && !value.AsInt64().has_value() &&
      x != std::nearbyint(x)) {
    return InvalidArgumentError(fmt::format("{}: {} is not an integer, as {} requires", where,
                                            value.ToString(), contract::ValueTypeName(tag.type)));
  }
  Result<std::vector<uint16_t>> registers = EncodeRegisterTag(tag, value);
  if (!registers.ok()) {
    // OutOfRange in the codec's terms: the value does not fit the tag.
    return Status(StatusCode::kInvalidArgument, registers.status().message());
  }
  return WritePayload{std::move(registers).value(), false};
}

}  // namespace

Result<std::unique_ptr<ModbusDriver>> ModbusDriver::Create(const ModbusDeviceConfig& config,
                                                           const Clock& clock, Logger logger) {
  KILN_RETURN_IF_ERROR(ValidateModbusDevice(config));
  KILN_ASSIGN_OR_RETURN(std::unique_ptr<internal::Channel> channel,
                        internal::NewLibmodbusChannel(config));
  return std::unique_ptr<ModbusDriver>(
      new ModbusDriver(config, clock, std::move(logger), std::move(channel)));
}

ModbusDriver::ModbusDriver(const ModbusDeviceConfig& config, const Clock& clock, Logger logger,
                           std::unique_ptr<internal::Channel> channel)
    : config_(config),
      endpoint_(config.Endpoint()),
      options_{.max_gap = config.max_gap},
      clock_(clock),
      logger_(std::move(logger)),
      limiter_(clock),
      channel_(std::move(channel)),
      registers_(kMaxReadRegisters),
      bits_(kMaxReadBits) {
  for (ReadRequest& request : PlanReads(config_.tags, options_)) {
    plan_.push_back(Block{std::move(request)});
  }
}

ModbusDriver::~ModbusDriver() = default;

bool ModbusDriver::connected() const { return channel_->connected(); }

void ModbusDriver::Disconnect() { channel_->Close(); }

std::vector<ReadRequest> ModbusDriver::plan() const {
  std::vector<ReadRequest> out;
  out.reserve(plan_.size());
  for (const Block& block : plan_) out.push_back(block.request);
  return out;
}

Status ModbusDriver::Connect() {
  Status status = channel_->Connect();
  if (!status.ok()) {
    ++stats_.connection_errors;
    logger_.Debug("{}", status.message());
    return status;
  }
  ++stats_.connects;
  logger_.Info("connected to {} (unit {})", endpoint_, config_.unit_id);
  return OkStatus();
}

Result<std::vector<Sample>> ModbusDriver::ReadAll() {
  if (!channel_->connected()) KILN_RETURN_IF_ERROR(Connect());
  std::vector<Sample> samples(config_.tags.size());
  for (size_t i = 0; i < samples.size(); ++i) {
    samples[i].tag = config_.tags[i].id;
    samples[i].quality = contract::status::kBadWaitingForInitialData;  // every plan covers all
  }

  size_t i = 0;
  while (i < plan_.size()) {
    KILN_ASSIGN_OR_RETURN(const uint8_t code, Execute(plan_[i].request, samples));
    if (code == kIllegalDataAddress && plan_[i].request.tags.size() > 1) {
      KILN_ASSIGN_OR_RETURN(i, Split(i, samples));
    } else {
      ++i;
    }
  }
  return samples;
}

Result<uint8_t> ModbusDriver::Execute(const ReadRequest& request, std::vector<Sample>& samples) {
  // A bad response earlier in this ReadAll() dropped the connection.
  if (!channel_->connected()) KILN_RETURN_IF_ERROR(Connect());
  ++stats_.requests;
  const internal::RequestOutcome outcome =
      IsBitKind(request.kind)
          ? channel_->ReadBits(request.kind, request.address, request.count, bits_)
          : channel_->ReadRegisters(request.kind, request.address, request.count, registers_);
  const Timestamp now = clock_.Now();
  switch (outcome.outcome) {
    case internal::Outcome::kOk:
      Decode(request, now, samples);
      return uint8_t{0};
    case internal::Outcome::kException:
      ++stats_.exceptions;
      MarkBad(request, QualityForException(outcome.exception_code), now, samples);
      KILN_LOG_RATE_LIMITED(logger_, limiter_, LogLevel::kWarning, Describe(request),
                            "{}: {} refused: exception {:02X} ({})", endpoint_, Describe(request),
                            outcome.exception_code, ExceptionName(outcome.exception_code));
      return outcome.exception_code;
    case internal::Outcome::kBadResponse:
      ++stats_.bad_responses;
      MarkBad(request, contract::status::kBadCommunicationError, now, samples);
      channel_->Close();
      KILN_LOG_RATE_LIMITED(logger_, limiter_, LogLevel::kWarning, Describe(request),
                            "{}: bad answer to {}: {}; reconnecting", endpoint_, Describe(request),
                            outcome.error);
      return uint8_t{0};
    case internal::Outcome::kTimeout:
      ++stats_.timeouts;
      channel_->Close();
      return DeadlineExceededError(fmt::format("{}: no answer to {} within {} ms", endpoint_,
                                               Describe(request), config_.timeout.count()));
    case internal::Outcome::kConnectionLost:
      ++stats_.connection_errors;
      channel_->Close();
      return UnavailableError(fmt::format("{}: connection lost during {}: {}", endpoint_,
                                          Describe(request), outcome.error));
  }
  return InternalError("unknown read outcome");
}

Result<size_t> ModbusDriver::Split(size_t index, std::vector<Sample>& samples) {
  const Block block = plan_[index];
  ++stats_.splits;
  std::vector<uint32_t> refused;
  std::vector<uint32_t> served;
  for (uint32_t tag : block.request.tags) {
    KILN_ASSIGN_OR_RETURN(const uint8_t code,
                          Execute(SingleTagRequest(config_.tags[tag], tag), samples));
    (code == kIllegalDataAddress ? refused : served).push_back(tag);
  }

  std::vector<Block> replacement;
  if (block.split) {
    for (uint32_t tag : block.request.tags) {
      replacement.push_back(Block{SingleTagRequest(config_.tags[tag], tag), true});
    }
  } else {
    PlanOptions adjacent_only = options_;
    adjacent_only.max_gap = 0;
    for (ReadRequest& request : PlanReads(config_.tags, served, adjacent_only)) {
      replacement.push_back(Block{std::move(request), true});
    }
    for (uint32_t tag : refused) {
      replacement.push_back(Block{SingleTagRequest(config_.tags[tag], tag), true});
    }
    std::sort(replacement.begin(), replacement.end(),
              [](const Block& a, const Block& b) { return a.request.address < b.request.address; });
  }

  std::string missing;
  for (uint32_t tag : refused) {
    if (!missing.empty()) missing += ", ";
    missing += FormatRegister(config_.tags[tag].kind, config_.tags[tag].address);
  }
  logger_.Info(
      "{}: {} refused with exception 02; read its {} tags one by one, refused: [{}]; "
      "it becomes {} requests",
      endpoint_, Describe(block.request), block.request.tags.size(), missing, replacement.size());

  const auto at = plan_.begin() + static_cast<std::ptrdiff_t>(index);
  plan_.erase(at);
  plan_.insert(plan_.begin() + static_cast<std::ptrdiff_t>(index), replacement.begin(),
               replacement.end());
  return index + replacement.size();
}

Result<Value> ModbusDriver::WriteAndReadBack(contract::TagId id, const Value& value) {
  const auto it = std::find_if(config_.tags.begin(), config_.tags.end(),
                               [id](const ModbusTag& tag) { return tag.id == id; });
  if (it == config_.tags.end()) {
    return NotFoundError(fmt::format("{}: no tag with id {}", endpoint_, id));
  }
  const ModbusTag& tag = *it;
  KILN_ASSIGN_OR_RETURN(const WritePayload payload, EncodeWrite(tag, value));

  if (!channel_->connected()) KILN_RETURN_IF_ERROR(Connect());
  const std::string what = DescribeWrite(tag);
  ++stats_.requests;
  ++stats_.writes;
  const internal::RequestOutcome outcome =
      tag.kind == RegisterKind::kCoil ? channel_->WriteCoil(tag.address, payload.coil)
                                      : channel_->WriteRegisters(tag.address, payload.registers);
  switch (outcome.outcome) {
    case internal::Outcome::kOk:
      break;
    case internal::Outcome::kException: {
      ++stats_.exceptions;
      const std::string message = fmt::format("{}: {} refused: {}", endpoint_, what,
                                              DescribeException(outcome.exception_code));
      logger_.Warn("{} (writing {})", message, value.ToString());
      return Status(StatusCode::kAborted, message);
    }
    case internal::Outcome::kBadResponse:
      ++stats_.bad_responses;
      channel_->Close();
      return UnavailableError(
          fmt::format("{}: bad answer to {}: {}; the write may have taken effect; reconnecting",
                      endpoint_, what, outcome.error));
    case internal::Outcome::kTimeout:
      ++stats_.timeouts;
      channel_->Close();
      return DeadlineExceededError(
          fmt::format("{}: no answer to {} within {} ms; the write may have taken effect",
                      endpoint_, what, config_.timeout.count()));
    case internal::Outcome::kConnectionLost:
      ++stats_.connection_errors;
      channel_->Close();
      return UnavailableError(
          fmt::format("{}: connection lost during {}: {}; the write may have taken effect",
                      endpoint_, what, outcome.error));
  }

  const auto index = static_cast<uint32_t>(it - config_.tags.begin());
  KILN_ASSIGN_OR_RETURN(Value read_back, ReadBack(index));
  logger_.Info("{}: {} wrote {}, read back {}", endpoint_, what, value.ToString(),
               read_back.ToString());
  return read_back;
}

Result<Value> ModbusDriver::ReadBack(uint32_t index) {
  const ModbusTag& tag = config_.tags[index];
  const std::string where = FormatRegister(tag.kind, tag.address);
  const ReadRequest request = SingleTagRequest(tag, index);
  std::vector<Sample> samples(config_.tags.size());
  Result<uint8_t> code = Execute(request, samples);
  if (!code.ok()) {
    return Status(code.status().code(),
                  fmt::format("{} (reading back {} after the device confirmed the write)",
                              code.status().message(), where));
  }
  if (*code != 0) {
    return Status(StatusCode::kAborted,
                  fmt::format("{}: {} written, but the read-back {} was refused: {}", endpoint_,
                              where, Describe(request), DescribeException(*code)));
  }
  const Sample& sample = samples[index];
  if (sample.quality == contract::status::kGood) return sample.value;
  // Execute() closed the connection; the next call reconnects.
  if (sample.quality == contract::status::kBadCommunicationError) {
    return UnavailableError(fmt::format(
        "{}: {} written, but the answer to the read-back {} did not fit it; reconnecting",
        endpoint_, where, Describe(request)));
  }
  return InternalError(
      fmt::format("{}: {} written, but its read-back could not be decoded", endpoint_, where));
}

void ModbusDriver::Decode(const ReadRequest& request, Timestamp now, std::vector<Sample>& samples) {
  for (uint32_t index : request.tags) {
    const ModbusTag& tag = config_.tags[index];
    Sample& sample = samples[index];
    sample.source_time = now;
    const size_t offset = tag.address - request.address;
    if (offset + Width(tag) > request.count) {  // a planner bug; never index past the answer
      sample.value = Value();
      sample.quality = contract::status::kBadInternalError;
      continue;
    }
    if (IsBitKind(tag.kind)) {
      sample.value = Value(bits_[offset] != 0);
      sample.quality = contract::status::kGood;
      continue;
    }
    Result<Value> value =
        DecodeRegisterTag(tag, std::span<const uint16_t>(registers_).subspan(offset, Width(tag)));
    if (value.ok()) {
      sample.value = std::move(value).value();
      sample.quality = contract::status::kGood;
    } else {
      sample.value = Value();
      sample.quality = contract::status::kBadDecodingError;
    }
  }
}

void ModbusDriver::MarkBad(const ReadRequest& request, Quality quality, Timestamp now,
                           std::vector<Sample>& samples) const {
  for (uint32_t index : request.tags) {
    Sample& sample = samples[index];
    sample.value = Value();
    sample.quality = quality;
    sample.source_time = now;
  }
}

}  // namespace kiln::drivers::modbus
