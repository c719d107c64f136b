#pragma once

#include <string>

// Identifiers and secrets. The namespace is `codec` for the callers that used
// these from core/codec.hpp.
namespace osb::codec {

/// Random UUID4 with hyphens (sandbox ids).
std::string make_uuid();

/// Random UUID4 as 32 hex chars (request ids).
std::string make_request_id();

/// 24 random bytes from the kernel, URL-safe base64 (egress auth tokens).
std::string make_token();

} // namespace osb::codec
