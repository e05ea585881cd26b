#pragma once

// The `storage.*` configuration keys and their translation into LogOptions.

#include "junction/config.h"
#include "storage/options.h"

namespace junction::storage {

// storage.fsync, storage.segment_bytes, storage.segment_age,
// storage.index_interval_bytes, storage.max_batch_bytes,
// storage.retention_bytes, storage.retention_age.
Status AddConfigKeys(config::Schema& schema);

// InvalidArgument naming the key and where its value came from.
Result<LogOptions> LogOptionsFromConfig(const config::Config& config);

}  // namespace junction::storage
