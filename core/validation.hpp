#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "core/error.hpp"
#include "core/model.hpp"

namespace osb::validation {

/// Label rules for one metadata key/value (§1.4.1). `patch` selects the
/// PATCH flavour of the reserved-prefix error code.
std::optional<api_error> check_metadata(const string_map& xs);

/// Reserved-prefix check of a PATCH key (also for null values).
std::optional<api_error> check_patch_key(const std::string& key);

/// Docker memory string → bytes (`512Mi`, `1G`, `2gi`); nullopt if invalid.
std::optional<int64_t> parse_memory(const std::string& x);

/// CPU string → NanoCpus (`500m`, `2`, `0.5`); nullopt if invalid or ≤ 0.
std::optional<int64_t> parse_cpu(const std::string& x);

/// GPU string → device count (-1 = all); nullopt if none/invalid.
std::optional<int64_t> parse_gpu(const std::string& x);

} // namespace osb::validation
