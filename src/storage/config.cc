#include "storage/config.h"

#include <chrono>

namespace junction::storage {
namespace {

using std::chrono::duration_cast;
using std::chrono::milliseconds;

}  // namespace

Status AddConfigKeys(config::Schema& schema) {
  LogOptions d;
  JUNCTION_RETURN_IF_ERROR(schema.Add(config::StringKey(
      "storage.fsync", d.fsync.ToString(),
      "when appends are acknowledged: always (after fdatasync; safe), interval=<n>ms|s|m or "
      "never (UNSAFE: acknowledged records can be lost on power loss)")));
  JUNCTION_RETURN_IF_ERROR(schema.Add(config::ByteSizeKey(
      "storage.segment_bytes", d.segment_bytes, "roll a segment at this size (4KiB..1GiB)")));
  JUNCTION_RETURN_IF_ERROR(schema.Add(config::DurationKey(
      "storage.segment_age", d.segment_age, "roll a segment this long after it was created")));
  JUNCTION_RETURN_IF_ERROR(schema.Add(config::ByteSizeKey(
      "storage.index_interval_bytes", d.index_interval_bytes, "bytes of batches per index entry")));
  JUNCTION_RETURN_IF_ERROR(schema.Add(config::ByteSizeKey(
      "storage.max_batch_bytes", d.max_batch_bytes, "largest record batch accepted (<= 64MiB)")));
  JUNCTION_RETURN_IF_ERROR(schema.Add(
      config::ByteSizeKey("storage.retention_bytes", 0,
                          "delete old segments beyond this size per partition; 0 keeps all")));
  JUNCTION_RETURN_IF_ERROR(schema.Add(
      config::DurationKey("storage.retention_age", std::chrono::nanoseconds(0),
                          "delete segments whose newest record is older than this; 0 keeps all")));
  return OkStatus();
}

Result<LogOptions> LogOptionsFromConfig(const config::Config& config) {
  LogOptions options;
  auto named = [&](std::string_view key, const Status& s) {
    return InvalidArgumentError(std::string(key) + " (from " + config.SourceOf(key).ToString() +
                                "): " + s.message());
  };
  Result<FsyncPolicy> fsync = FsyncPolicy::Parse(config.GetString("storage.fsync"));
  if (!fsync.ok()) return named("storage.fsync", fsync.status());
  options.fsync = *fsync;
  options.segment_bytes = config.GetByteSize("storage.segment_bytes");
  options.segment_age = duration_cast<milliseconds>(config.GetDuration("storage.segment_age"));
  std::uint64_t interval = config.GetByteSize("storage.index_interval_bytes");
  std::uint64_t max_batch = config.GetByteSize("storage.max_batch_bytes");
  if (interval > UINT32_MAX || max_batch > UINT32_MAX) {
    return InvalidArgumentError(
        "storage.index_interval_bytes and storage.max_batch_bytes must "
        "be below 4GiB");
  }
  options.index_interval_bytes = static_cast<std::uint32_t>(interval);
  options.max_batch_bytes = static_cast<std::uint32_t>(max_batch);
  if (std::uint64_t bytes = config.GetByteSize("storage.retention_bytes"); bytes > 0) {
    options.retention_bytes = bytes;
  }
  if (auto age = duration_cast<milliseconds>(config.GetDuration("storage.retention_age"));
      age.count() > 0) {
    options.retention_age = age;
  }
  if (Status s = options.Validate(); !s.ok()) {
    return InvalidArgumentError("storage options: " + s.message());
  }
  return options;
}

}  // namespace junction::storage
