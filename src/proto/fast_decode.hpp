#pragma once
/// The fast path of proto::decode for the two messages of every task, TASK and RESULT
/// (status "success"): Boost.JSON's SAX parser validates the whole frame and hands over
/// the top-level scalars, and nothing else is built (decoding into a DOM allocated every
/// member of task_data and result, only to pass their raw text on).
///
/// It only ever answers what the full decoder would: anything it does not handle (other
/// types, an error RESULT, a duplicated field, a field of the wrong kind, invalid JSON)
/// gives nullopt, and the caller decodes the frame with the DOM, which words the error.

#include <optional>
#include <string_view>

#include "proto/messages.hpp"

namespace sd::proto {

/// The decoded TASK or successful RESULT, or nullopt: decode the frame the full way.
std::optional<Envelope> decode_fast(std::string_view frame, const DecodeLimits& limits);

}  // namespace sd::proto
