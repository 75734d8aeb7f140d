// decode() takes a fast path for TASK and successful RESULT frames; decode_full() parses
// into a DOM. They must agree on every frame: checked here field by field on frames made
// to sit on each edge the fast path hands over to the full decoder, and on every line of
// the fuzzer's corpus.

#include "proto/fast_decode.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <variant>
#include <vector>

#include "proto/messages.hpp"

namespace sd::proto {
namespace {

std::string opt(const std::optional<std::string>& s) { return s ? "\"" + *s + "\"" : "<none>"; }

/// Every field of what a frame decoded to.
std::string describe(const std::variant<Envelope, DecodeError>& r) {
  std::ostringstream out;
  if (const auto* e = std::get_if<DecodeError>(&r)) {
    out << "error " << to_string(e->code) << " '" << e->message << "' id=" << e->task_id;
    return out.str();
  }
  const Envelope& env = std::get<Envelope>(r);
  out << "token=" << opt(env.token) << " ";
  if (const auto* t = std::get_if<TaskMsg>(&env.message)) {
    out << "TASK id=" << t->task_id << " type=" << t->task_type << " data=" << t->task_data
        << " priority=" << t->priority << " timeout=" << (t->timeout_ms ? std::to_string(*t->timeout_ms) : "-")
        << " retries=" << (t->max_retries ? std::to_string(*t->max_retries) : "-") << " attempt=" << t->attempt
        << " reply=" << (t->reply == ReplyMode::ack ? "ack" : "result");
  } else if (const auto* res = std::get_if<ResultMsg>(&env.message)) {
    out << "RESULT id=" << res->task_id << " ok=" << res->ok << " result=" << res->result
        << " code=" << to_string(res->error_code) << " message=" << res->error_message
        << " worker=" << res->worker_id << " took="
        << (res->processing_time ? std::to_string(*res->processing_time) : "-") << " attempt=" << res->attempt;
  } else {
    out << to_json_line(env.message);
  }
  return out.str();
}

void expect_same(std::string_view frame) {
  EXPECT_EQ(describe(decode(frame)), describe(decode_full(frame))) << "frame: " << frame;
}

TEST(FastDecode, TakesTheCommonTaskAndResult) {
  EXPECT_TRUE(decode_fast(R"({"type":"TASK","task_id":"a","task_type":"hash","task_data":{"text":"x"}})", {}));
  EXPECT_TRUE(decode_fast(R"({"type":"RESULT","task_id":"a","status":"success","result":{"hash":"ab"},)"
                          R"("worker_id":"worker_1","processing_time":1.2e-05,"attempt":1})", {}));
}

TEST(FastDecode, LeavesTheRestToTheFullDecoder) {
  for (const char* frame : {
           R"({"type":"PING"})",
           R"({"type":"RESULT","task_id":"a","status":"error","error":{"code":"timeout","message":"m"}})",
           R"({"type":"TASK","task_id":"a","task_id":"b","task_type":"hash","task_data":{}})",
           R"({"type":"TASK","task_type":"hash","task_data":{"x":1e999}})",
           R"({"type":"TASK","task_type":"hash","task_data":{"x":1)" "\n" R"(}})",
           R"(["TASK"])",
       }) {
    EXPECT_FALSE(decode_fast(frame, {})) << frame;
  }
}

TEST(FastDecode, AgreesWithTheFullDecoderOnEveryEdge) {
  const std::string long_id(257, 'i');
  const std::string max_id(256, 'i');
  const std::vector<std::string> frames = {
      // TASK: ids, types, data
      R"({"type":"TASK","task_id":"a","task_type":"hash","task_data":{"text":"x"}})",
      R"({"type":"TASK","task_type":"hash","task_data":{}})",
      R"({"type":"TASK","task_id":"","task_type":"hash","task_data":{}})",
      R"({"type":"TASK","task_id":null,"task_type":"hash","task_data":{}})",
      R"({"type":"TASK","task_id":7,"task_type":"hash","task_data":{}})",
      R"({"type":"TASK","task_id":")" + long_id + R"(","task_type":"hash","task_data":{}})",
      R"({"type":"TASK","task_id":")" + max_id + R"(","task_type":"hash","task_data":{}})",
      R"({"type":"TASK","task_id":"caf\u00e9 \"q\" \\ \n","task_type":"h\u0061sh","task_data":{}})",
      R"({"type":"TASK","task_id":"a","task_data":{}})",
      R"({"type":"TASK","task_id":"a","task_type":"","task_data":{}})",
      R"({"type":"TASK","task_id":"a","task_type":["hash"],"task_data":{}})",
      R"({"type":"TASK","task_id":"a","task_type":"hash"})",
      R"({"type":"TASK","task_id":"a","task_type":"hash","task_data":null})",
      R"({"type":"TASK","task_id":"a","task_type":"hash","task_data":[1]})",
      R"({"type":"TASK","task_id":"a","task_type":"hash","task_data":"{}"})",
      R"({"type":"TASK","task_id":"a","task_type":"hash","task_data":{"n":123456789012345678901234567890}})",
      R"({"type":"TASK","task_id":"a","task_type":"hash","task_data":{"a":{"b":[1,2,{"c":null}]}}})",
      R"({"type":"TASK","task_id":"a","task_type":"hash","task_data":{"x":1},"task_data":{"x":2}})",
      R"({"type":"TASK","task_id":"a","task_type":"hash","task_data":{"x":1},"other":1,"other":2})",
      R"({"type":"TASK","task\u005fid":"a","task_type":"hash","task_data":{"x":1}})",
      R"({"task_data":{"x":1},"task_type":"hash","task_id":"a","type":"TASK"})",
      R"( { "type" : "TASK" , "task_id" : "a" , "task_type" : "hash" , "task_data" : { "x" : 1 } } )",
      // TASK: the optional fields
      R"({"type":"TASK","task_type":"hash","task_data":{},"priority":5,"timeout_ms":100,"max_retries":3,"attempt":2,"reply":"ack"})",
      R"({"type":"TASK","task_type":"hash","task_data":{},"priority":-2147483648,"reply":"result"})",
      R"({"type":"TASK","task_type":"hash","task_data":{},"priority":2147483648})",
      R"({"type":"TASK","task_type":"hash","task_data":{},"priority":1.0})",
      R"({"type":"TASK","task_type":"hash","task_data":{},"priority":"1"})",
      R"({"type":"TASK","task_type":"hash","task_data":{},"priority":null,"timeout_ms":null})",
      R"({"type":"TASK","task_type":"hash","task_data":{},"priority":18446744073709551615})",
      R"({"type":"TASK","task_type":"hash","task_data":{},"timeout_ms":0})",
      R"({"type":"TASK","task_type":"hash","task_data":{},"timeout_ms":1099511627776})",
      R"({"type":"TASK","task_type":"hash","task_data":{},"timeout_ms":1099511627777})",
      R"({"type":"TASK","task_type":"hash","task_data":{},"max_retries":101})",
      R"({"type":"TASK","task_type":"hash","task_data":{},"max_retries":true})",
      R"({"type":"TASK","task_type":"hash","task_data":{},"attempt":4294967295})",
      R"({"type":"TASK","task_type":"hash","task_data":{},"attempt":4294967296})",
      R"({"type":"TASK","task_type":"hash","task_data":{},"attempt":-1})",
      R"({"type":"TASK","task_type":"hash","task_data":{},"reply":"later"})",
      R"({"type":"TASK","task_type":"hash","task_data":{},"reply":null})",
      R"({"type":"TASK","task_type":"hash","task_data":{},"token":"s3cret"})",
      R"({"type":"TASK","task_type":"hash","task_data":{},"token":5})",
      R"({"type":"TASK","task_type":"hash","task_data":{},"token":"a","token":"b"})",
      // RESULT
      R"({"type":"RESULT","task_id":"a","status":"success","result":{"hash":"ab"},"worker_id":"worker_1","processing_time":1.2e-05,"attempt":1})",
      R"({"type":"RESULT","task_id":"a","status":"success"})",
      R"({"type":"RESULT","task_id":"a","status":"success","result":null})",
      R"({"type":"RESULT","task_id":"a","status":"success","result":[1,"x",{"y":2}]})",
      R"({"type":"RESULT","task_id":"a","status":"success","result":123456789012345678901234567890})",
      R"({"type":"RESULT","task_id":"a","status":"success","result":"text"})",
      R"({"type":"RESULT","task_id":"a","status":"success","result":{"x":1},"result":{"x":2}})",
      R"({"type":"RESULT","task_id":"a","status":"success","result":{"x":1)" "\n" R"(}})",
      R"({"type":"RESULT","task_id":"a","status":"success","worker_id":7,"processing_time":"1","attempt":"2"})",
      R"({"type":"RESULT","task_id":"a","status":"success","processing_time":3,"attempt":4294967296})",
      R"({"type":"RESULT","task_id":"a","status":"success","processing_time":18446744073709551615})",
      R"({"type":"RESULT","task_id":"a","status":"success","processing_time":-0.5,"attempt":null})",
      R"({"type":"RESULT","task_id":"","status":"success"})",
      R"({"type":"RESULT","status":"success"})",
      R"({"type":"RESULT","task_id":5,"status":"success"})",
      R"({"type":"RESULT","task_id":"a","status":"done"})",
      R"({"type":"RESULT","task_id":"a"})",
      R"({"type":"RESULT","task_id":"a","status":"error","error":{"code":"timeout","message":"late"}})",
      R"({"type":"RESULT","task_id":"a","status":"error"})",
      // not JSON, not an object, not these types
      R"({"type":"TASK","task_type":"hash","task_data":{}} x)",
      R"({"type":"TASK","task_type":"hash","task_data":{}}   )",
      R"({"type":"TASK","task_type":"hash","task_data":{}}})",
      R"({"type":"TASK","task_type":"hash","task_data":{"x":1)" "\n" R"(}})",
      R"({"type":"TASK","task_type":"hash","task_data":{"x":1}})" "\n" R"(}})",
      R"({"type":"TASK","task_type":"hash","task_data":{})",
      R"({"type":"TASK","task_type":"hash","task_data":{"x":1e999}})",
      R"({"type":"TASK","task_type":"hash","task_data":{"x":-1e999}})",
      R"({"type":"TASK","task_type":"hash","task_data":{},"priority":1e999})",
      R"({"type":"TASK","task_type":"hash","task_data":{},})",
      R"({"type":"TASK","task_type":"hash","task_data":{"s":"\ud800"}})",
      R"({"type":"TASK","task_type":"hash","task_data":{"s":")" "\xff" R"("}})",
      R"({"type":"task","task_type":"hash","task_data":{}})",
      R"({"type":5,"task_type":"hash","task_data":{}})",
      R"({"task_type":"hash","task_data":{}})",
      R"({"type":"PING","token":"t"})",
      R"({"type":"STATS"})",
      R"({"type":"GET_RESULT","task_id":"a","wait_ms":5})",
      R"("TASK")",
      R"(5)",
      R"([{"type":"TASK"}])",
      R"({})",
      "",
  };
  for (const std::string& frame : frames) expect_same(frame);

  // Nesting at and past the limit, inside task_data and result.
  for (const std::size_t depth : {62, 63, 64, 65, 100}) {
    const std::string deep = std::string(depth, '[') + std::string(depth, ']');
    expect_same(R"({"type":"TASK","task_type":"hash","task_data":{"d":)" + deep + "}}");
    expect_same(R"({"type":"RESULT","task_id":"a","status":"success","result":)" + deep + "}");
  }
}

TEST(FastDecode, AgreesWithTheFullDecoderOnTheFuzzCorpus) {
  std::size_t lines = 0;
  for (const char* folder : {"corpus/decoder", "regressions/decoder"}) {
    const auto dir = std::filesystem::path(SD_FUZZ_DIR) / folder;
    ASSERT_TRUE(std::filesystem::is_directory(dir)) << dir;
    for (const auto& entry : std::filesystem::directory_iterator(dir)) {
      std::ifstream in(entry.path(), std::ios::binary);
      const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      if (bytes.empty()) continue;
      std::string_view rest = std::string_view(bytes).substr(1);  // the fuzzer's control byte
      while (!rest.empty()) {
        const std::size_t nl = rest.find('\n');
        expect_same(rest.substr(0, nl));
        ++lines;
        rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
      }
    }
  }
  EXPECT_GT(lines, 50u);
}

}  // namespace
}  // namespace sd::proto
