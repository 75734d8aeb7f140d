#pragma once
/// Finds the raw text of a top-level member of a JSON object without building a DOM.
///
/// Used to pass payloads through untouched: a "result" holding integers too big for a
/// double, or a "task_data" the server only routes. The input must already be known to
/// be valid JSON (proto::decode validates it first); on anything unexpected the scanner
/// gives up and returns nullopt rather than guessing.

#include <optional>
#include <string_view>

namespace sd::proto {

/// The raw value of member `key` of the object `json`, e.g. for
/// `{"a":1,"result":{"x":[1,2]}}` and "result", `{"x":[1,2]}`.
/// Unambiguous or nothing: nullopt when `key` appears twice, or when any top-level key
/// is written with an escape (it may spell `key`); a JSON parser keeps the last of
/// duplicated keys, and the caller then takes the parsed value instead. The whole object
/// is scanned, so the input must also be complete.
std::optional<std::string_view> raw_member(std::string_view json, std::string_view key);

}  // namespace sd::proto
