#include "proto/messages.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace sd::proto {
namespace {

// ---- helpers ------------------------------------------------------------------

std::string describe(const std::variant<Envelope, DecodeError>& r) {
  if (const auto* e = std::get_if<DecodeError>(&r)) {
    return "DecodeError " + std::string(to_string(e->code)) + ": " + e->message;
  }
  return "message " + std::string(type_name(std::get<Envelope>(r).message));
}

/// Decodes `frame` and expects a message of type T.
template <class T>
T decode_as(std::string_view frame) {
  const auto r = decode(frame);
  if (const auto* env = std::get_if<Envelope>(&r)) {
    if (const T* m = std::get_if<T>(&env->message)) return *m;
  }
  ADD_FAILURE() << "decoding " << frame << " gave " << describe(r);
  return T{};
}

/// Decodes `frame` and expects it to be refused.
DecodeError decode_error_of(std::string_view frame) {
  const auto r = decode(frame);
  if (const auto* e = std::get_if<DecodeError>(&r)) return *e;
  ADD_FAILURE() << "decoding " << frame << " gave " << describe(r);
  return DecodeError{ErrorCode::internal, "<decoded>", "<decoded>"};
}

std::optional<std::string> token_of(std::string_view frame) {
  const auto r = decode(frame);
  if (const auto* env = std::get_if<Envelope>(&r)) return env->token;
  ADD_FAILURE() << "decoding " << frame << " gave " << describe(r);
  return std::nullopt;
}

/// The line as a sender writes it: exactly one '\n', at the end.
void expect_one_line(const std::string& line) {
  ASSERT_FALSE(line.empty());
  EXPECT_EQ(line.back(), '\n') << line;
  EXPECT_EQ(std::count(line.begin(), line.end(), '\n'), 1) << line;
}

/// Encodes `m`, checks the framing, and decodes the line back as the same type.
template <class T>
T round_trip(const T& m) {
  const std::string line = to_json_line(Message{m});
  expect_one_line(line);
  return decode_as<T>(std::string_view(line).substr(0, line.size() - 1));
}

// ---- decode: TASK ---------------------------------------------------------------

TEST(MessagesDecode, TaskWithEveryFieldIsRead) {
  const auto t = decode_as<TaskMsg>(
      R"({"type":"TASK","task_id":"abc123","task_type":"hash","task_data":{"text":"ejemplo"},)"
      R"("priority":5,"timeout_ms":1500,"max_retries":2,"attempt":3,"reply":"ack"})");
  EXPECT_EQ(t.task_id, "abc123");
  EXPECT_EQ(t.task_type, "hash");
  EXPECT_EQ(t.task_data, R"({"text":"ejemplo"})");
  EXPECT_EQ(t.priority, 5);
  EXPECT_EQ(t.timeout_ms, std::optional<std::int64_t>(1500));
  EXPECT_EQ(t.max_retries, std::optional<int>(2));
  EXPECT_EQ(t.attempt, 3u);
  EXPECT_EQ(t.reply, ReplyMode::ack);
}

// A duplicated key (spelled alike, or with an escape) holds the value the JSON parser keeps,
// the last one, wherever the server reads it: what it forwards is what it checked.
TEST(MessagesDecode, ADuplicatedTaskDataOrResultIsTheLastOne) {
  EXPECT_EQ(decode_as<TaskMsg>(R"({"type":"TASK","task_type":"a","task_data":{"text":"first"},)"
                               R"("task_data":{"text":"last"}})")
                .task_data,
            R"({"text":"last"})");
  EXPECT_EQ(decode_as<TaskMsg>(R"({"type":"TASK","task_type":"a","task_data":{"text":"first"},)"
                               R"("task_d\u0061ta":{"text":"last"}})")
                .task_data,
            R"({"text":"last"})");
  EXPECT_EQ(decode_as<ResultMsg>(R"({"type":"RESULT","task_id":"t","status":"success","result":1,"result":2})")
                .result,
            "2");
}

TEST(MessagesDecode, TaskWithoutOptionalFieldsGetsTheDefaults) {
  const auto t = decode_as<TaskMsg>(R"({"type":"TASK","task_type":"hash","task_data":{"text":"x"}})");
  EXPECT_EQ(t.task_id, "");
  EXPECT_EQ(t.priority, 0);
  EXPECT_EQ(t.timeout_ms, std::nullopt);
  EXPECT_EQ(t.max_retries, std::nullopt);
  EXPECT_EQ(t.attempt, 0u);
  EXPECT_EQ(t.reply, ReplyMode::result);
}

TEST(MessagesDecode, TaskReplyResultIsTheDefaultMode) {
  EXPECT_EQ(decode_as<TaskMsg>(R"({"type":"TASK","task_type":"a","task_data":{},"reply":"result"})").reply,
            ReplyMode::result);
}

TEST(MessagesDecode, TaskNullOptionalNumbersCountAsAbsent) {
  const auto t = decode_as<TaskMsg>(
      R"({"type":"TASK","task_type":"a","task_data":{},"priority":null,"timeout_ms":null,"max_retries":null})");
  EXPECT_EQ(t.priority, 0);
  EXPECT_EQ(t.timeout_ms, std::nullopt);
  EXPECT_EQ(t.max_retries, std::nullopt);
}

TEST(MessagesDecode, TaskPriorityMayBeNegativeAndSpansInt) {
  EXPECT_EQ(decode_as<TaskMsg>(R"({"type":"TASK","task_type":"a","task_data":{},"priority":-7})").priority, -7);
  EXPECT_EQ(decode_as<TaskMsg>(R"({"type":"TASK","task_type":"a","task_data":{},"priority":2147483647})").priority,
            2147483647);
  EXPECT_EQ(decode_as<TaskMsg>(R"({"type":"TASK","task_type":"a","task_data":{},"priority":-2147483648})").priority,
            -2147483647 - 1);
}

TEST(MessagesDecode, TaskMaxRetriesAcceptsZeroToOneHundred) {
  EXPECT_EQ(decode_as<TaskMsg>(R"({"type":"TASK","task_type":"a","task_data":{},"max_retries":0})").max_retries,
            std::optional<int>(0));
  EXPECT_EQ(decode_as<TaskMsg>(R"({"type":"TASK","task_type":"a","task_data":{},"max_retries":100})").max_retries,
            std::optional<int>(100));
}

TEST(MessagesDecode, TaskIdOfExactly256BytesIsAccepted) {
  const std::string id(256, 'i');
  EXPECT_EQ(decode_as<TaskMsg>(R"({"type":"TASK","task_id":")" + id + R"(","task_type":"a","task_data":{}})").task_id,
            id);
}

TEST(MessagesDecode, TaskDataPassesThroughAsRawText) {
  // Exact numbers, escapes and key order survive: the server only routes task_data.
  const std::string data = R"({"n":123456789012345678901234567890,"f":1.0,"s":"caf\u00e9 \"q\"","z":[ 1 ,2 ]})";
  EXPECT_EQ(decode_as<TaskMsg>(R"({"type":"TASK","task_type":"a","task_data":)" + data + "}").task_data, data);
}

TEST(MessagesDecode, TaskDataSpreadOverLinesIsReencodedOnOneLine) {
  const auto t = decode_as<TaskMsg>("{\"type\":\"TASK\",\"task_type\":\"a\",\"task_data\":{\n\"n\":\n1}}");
  EXPECT_EQ(t.task_data, R"({"n":1})");
}

TEST(MessagesDecode, TaskMemberOrderDoesNotMatter) {
  const auto t = decode_as<TaskMsg>(R"({"task_data":{"k":1},"priority":1,"task_type":"b","task_id":"z","type":"TASK"})");
  EXPECT_EQ(t.task_id, "z");
  EXPECT_EQ(t.task_type, "b");
  EXPECT_EQ(t.task_data, R"({"k":1})");
  EXPECT_EQ(t.priority, 1);
}

// ---- decode: RESULT ---------------------------------------------------------------

TEST(MessagesDecode, SuccessResultIsRead) {
  const auto r = decode_as<ResultMsg>(
      R"({"type":"RESULT","task_id":"abc123","status":"success","result":{"hash":"c3a4"},)"
      R"("worker_id":"worker_1","processing_time":0.000123,"attempt":2})");
  EXPECT_EQ(r.task_id, "abc123");
  EXPECT_TRUE(r.ok);
  EXPECT_EQ(r.result, R"({"hash":"c3a4"})");
  EXPECT_EQ(r.worker_id, "worker_1");
  EXPECT_EQ(r.processing_time, std::optional<double>(0.000123));
  EXPECT_EQ(r.attempt, 2u);
}

TEST(MessagesDecode, ErrorResultIsRead) {
  const auto r = decode_as<ResultMsg>(
      R"({"type":"RESULT","task_id":"abc123","status":"error",)"
      R"("error":{"code":"invalid_task_data","message":"'n' must be an integer from 0 to 10000"},"attempt":1})");
  EXPECT_EQ(r.task_id, "abc123");
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.error_code, ErrorCode::invalid_task_data);
  EXPECT_EQ(r.error_message, "'n' must be an integer from 0 to 10000");
  EXPECT_EQ(r.attempt, 1u);
  EXPECT_EQ(r.worker_id, "");
  EXPECT_EQ(r.processing_time, std::nullopt);
}

TEST(MessagesDecode, ResultWithoutAttemptHasAttemptZero) {
  EXPECT_EQ(decode_as<ResultMsg>(R"({"type":"RESULT","task_id":"a","status":"success","result":1})").attempt, 0u);
}

TEST(MessagesDecode, ResultHugeIntegersPassThroughByteForByte) {
  const auto r = decode_as<ResultMsg>(
      R"({"type":"RESULT","task_id":"f","status":"success","result":{"sequence":[0,1,218922995834555169026]}})");
  EXPECT_EQ(r.result, R"({"sequence":[0,1,218922995834555169026]})");
  // ... and go out again unchanged.
  EXPECT_NE(to_json_line(r).find(R"("result":{"sequence":[0,1,218922995834555169026]})"), std::string::npos);
}

TEST(MessagesDecode, ResultOfAnyJsonKindIsKeptRaw) {
  for (std::string_view raw : {"[1,2]", R"("text")", "42", "-0.5e-3", "true", "null", "{}"}) {
    const std::string frame = R"({"type":"RESULT","task_id":"a","status":"success","result":)" + std::string(raw) + "}";
    EXPECT_EQ(decode_as<ResultMsg>(frame).result, raw);
  }
}

TEST(MessagesDecode, SuccessResultWithoutResultIsNull) {
  EXPECT_EQ(decode_as<ResultMsg>(R"({"type":"RESULT","task_id":"a","status":"success"})").result, "null");
}

TEST(MessagesDecode, ResultSpreadOverLinesIsReencodedOnOneLine) {
  const auto r = decode_as<ResultMsg>("{\"type\":\"RESULT\",\"task_id\":\"a\",\"status\":\"success\",\"result\":[1,\n2]}");
  EXPECT_EQ(r.result, "[1,2]");
}

TEST(MessagesDecode, ErrorResultWithAnUnknownCodeBecomesInternal) {
  const auto r = decode_as<ResultMsg>(
      R"({"type":"RESULT","task_id":"a","status":"error","error":{"code":"exploded","message":"boom"}})");
  EXPECT_EQ(r.error_code, ErrorCode::internal);
  EXPECT_EQ(r.error_message, "boom");
}

TEST(MessagesDecode, ErrorResultWithoutDetailsIsInternalWithAMessage) {
  const auto r = decode_as<ResultMsg>(R"({"type":"RESULT","task_id":"a","status":"error"})");
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.error_code, ErrorCode::internal);
  EXPECT_FALSE(r.error_message.empty());
}

TEST(MessagesDecode, ResultProcessingTimeMayBeAnInteger) {
  EXPECT_EQ(decode_as<ResultMsg>(R"({"type":"RESULT","task_id":"a","status":"success","processing_time":2})")
                .processing_time,
            std::optional<double>(2.0));
}

// ---- decode: the other messages ------------------------------------------------------

TEST(MessagesDecode, WorkerRegisterWithoutFieldsGetsTheDefaults) {
  const auto w = decode_as<WorkerRegisterMsg>(R"({"type":"WORKER_REGISTER"})");
  EXPECT_EQ(w.threads, 4);
  EXPECT_EQ(w.prefetch, std::nullopt);
  EXPECT_TRUE(w.task_types.empty());
  EXPECT_EQ(w.name, "");
}

TEST(MessagesDecode, WorkerRegisterWithEveryFieldIsRead) {
  const auto w = decode_as<WorkerRegisterMsg>(
      R"({"type":"WORKER_REGISTER","threads":8,"prefetch":2,"task_types":["hash","reverse"],"name":"host-a"})");
  EXPECT_EQ(w.threads, 8);
  EXPECT_EQ(w.prefetch, std::optional<int>(2));
  EXPECT_EQ(w.task_types, (std::vector<std::string>{"hash", "reverse"}));
  EXPECT_EQ(w.name, "host-a");
}

TEST(MessagesDecode, WorkerRegisterWithIllTypedOrOutOfRangeFieldsIsInvalidTask) {
  for (std::string_view frame : {
           R"({"type":"WORKER_REGISTER","threads":0})",
           R"({"type":"WORKER_REGISTER","threads":4097})",
           R"({"type":"WORKER_REGISTER","threads":"4"})",
           R"({"type":"WORKER_REGISTER","threads":2.5})",
           R"({"type":"WORKER_REGISTER","prefetch":-1})",
           R"({"type":"WORKER_REGISTER","task_types":"hash"})",
           R"({"type":"WORKER_REGISTER","task_types":["hash",1]})",
           R"({"type":"WORKER_REGISTER","task_types":[""]})",
           R"({"type":"WORKER_REGISTER","name":5})",
       }) {
    EXPECT_EQ(decode_error_of(frame).code, ErrorCode::invalid_task) << frame;
  }
}

TEST(MessagesDecode, RegisteredIsRead) {
  const auto r = decode_as<RegisteredMsg>(R"({"type":"REGISTERED","worker_id":"worker_1","heartbeat_interval_ms":5000})");
  EXPECT_EQ(r.worker_id, "worker_1");
  EXPECT_EQ(r.heartbeat_interval_ms, 5000);
  EXPECT_EQ(decode_as<RegisteredMsg>(R"({"type":"REGISTERED","worker_id":"worker_2"})").heartbeat_interval_ms, 0);
}

// An out-of-range heartbeat is ignored like any other (-1 gives 0); 2^31 used to pass the
// range check and wrap to INT_MIN in the int field.
TEST(MessagesDecode, RegisteredHeartbeatBeyondIntIsIgnoredNotWrapped) {
  EXPECT_EQ(decode_as<RegisteredMsg>(R"({"type":"REGISTERED","worker_id":"w","heartbeat_interval_ms":-1})")
                .heartbeat_interval_ms,
            0);
  EXPECT_EQ(decode_as<RegisteredMsg>(R"({"type":"REGISTERED","worker_id":"w","heartbeat_interval_ms":2147483648})")
                .heartbeat_interval_ms,
            0);
}

TEST(MessagesDecode, PingPongAndDrainCarryNothing) {
  (void)decode_as<PingMsg>(R"({"type":"PING"})");
  (void)decode_as<PongMsg>(R"({"type":"PONG"})");
  (void)decode_as<DrainMsg>(R"({"type":"DRAIN"})");
}

TEST(MessagesDecode, StatsWithOnlyATypeOrATokenIsARequest) {
  (void)decode_as<StatsRequestMsg>(R"({"type":"STATS"})");
  (void)decode_as<StatsRequestMsg>(R"({"type":"STATS","token":"s3cret"})");
}

TEST(MessagesDecode, StatsWithFiguresIsAReplyKeptAsRawJson) {
  const std::string frame = R"({"type":"STATS","queued":3,"workers":[{"id":"worker_1","threads":4}]})";
  EXPECT_EQ(decode_as<StatsReplyMsg>(frame).json, frame);
  (void)decode_as<StatsReplyMsg>(R"({"type":"STATS","queued":0})");
}

TEST(MessagesDecode, CancelIsReadWithOrWithoutAttempt) {
  const auto c = decode_as<CancelMsg>(R"({"type":"CANCEL","task_id":"a","attempt":3})");
  EXPECT_EQ(c.task_id, "a");
  EXPECT_EQ(c.attempt, 3u);
  EXPECT_EQ(decode_as<CancelMsg>(R"({"type":"CANCEL","task_id":"a"})").attempt, 0u);
}

TEST(MessagesDecode, GetResultIsReadWithOrWithoutWait) {
  const auto g = decode_as<GetResultMsg>(R"({"type":"GET_RESULT","task_id":"a","wait_ms":2500})");
  EXPECT_EQ(g.task_id, "a");
  EXPECT_EQ(g.wait_ms, 2500);
  EXPECT_EQ(decode_as<GetResultMsg>(R"({"type":"GET_RESULT","task_id":"a"})").wait_ms, 0);
}

TEST(MessagesDecode, GetResultWithANegativeWaitIsInvalidTaskWithItsId) {
  const auto e = decode_error_of(R"({"type":"GET_RESULT","task_id":"a","wait_ms":-1})");
  EXPECT_EQ(e.code, ErrorCode::invalid_task);
  EXPECT_EQ(e.task_id, "a");
}

TEST(MessagesDecode, AcceptedIsRead) {
  EXPECT_EQ(decode_as<AcceptedMsg>(R"({"type":"ACCEPTED","task_id":"a"})").task_id, "a");
}

TEST(MessagesDecode, StatusIsReadAndItsStateDefaultsToUnknown) {
  const auto s = decode_as<StatusMsg>(R"({"type":"STATUS","task_id":"a","state":"running"})");
  EXPECT_EQ(s.task_id, "a");
  EXPECT_EQ(s.state, "running");
  EXPECT_EQ(decode_as<StatusMsg>(R"({"type":"STATUS","task_id":"a"})").state, "unknown");
}

TEST(MessagesDecode, TaskReferencesWithoutAStringTaskIdAreInvalidTask) {
  for (std::string_view frame : {R"({"type":"CANCEL"})", R"({"type":"GET_RESULT","task_id":5})",
                                 R"({"type":"ACCEPTED","task_id":""})", R"({"type":"STATUS","task_id":null})"}) {
    EXPECT_EQ(decode_error_of(frame).code, ErrorCode::invalid_task) << frame;
  }
}

TEST(MessagesDecode, ErrorIsRead) {
  const auto e = decode_as<ErrorMsg>(R"({"type":"ERROR","code":"bad_json","message":"invalid JSON","task_id":"t1"})");
  EXPECT_EQ(e.code, ErrorCode::bad_json);
  EXPECT_EQ(e.message, "invalid JSON");
  EXPECT_EQ(e.task_id, "t1");
}

TEST(MessagesDecode, ErrorWithAnUnknownCodeIsInternal) {
  const auto e = decode_as<ErrorMsg>(R"({"type":"ERROR","code":"gremlins","message":"m"})");
  EXPECT_EQ(e.code, ErrorCode::internal);
  EXPECT_EQ(e.task_id, "");
}

TEST(MessagesDecode, TokenIsCarriedOnAnyMessage) {
  EXPECT_EQ(token_of(R"({"type":"PING","token":"s3cret"})"), std::optional<std::string>("s3cret"));
  EXPECT_EQ(token_of(R"({"token":"k","type":"TASK","task_type":"a","task_data":{}})"), std::optional<std::string>("k"));
  EXPECT_EQ(token_of(R"({"type":"WORKER_REGISTER","token":""})"), std::optional<std::string>(""));
  EXPECT_EQ(token_of(R"({"type":"PING"})"), std::nullopt);
  EXPECT_EQ(token_of(R"({"type":"PING","token":5})"), std::nullopt);
}

// ---- decode: refusals and their codes -----------------------------------------------

TEST(MessagesDecodeErrors, InvalidJsonIsBadJson) {
  for (std::string_view frame : {"", "{", R"({"type":"PING")", R"({"type":"PING",})", R"({'type':'PING'})",
                                 R"({"type":PING})", R"({"type":"PING"}})", R"({"type":"PING"} {"type":"PING"})",
                                 "not json at all", R"({"a":01})", R"({"a":NaN})"}) {
    EXPECT_EQ(decode_error_of(frame).code, ErrorCode::bad_json) << frame;
  }
}

TEST(MessagesDecodeErrors, InvalidUtf8IsBadJson) {
  for (std::string_view frame : {
           "{\"type\":\"PING\",\"x\":\"\xff\"}",              // never valid
           "{\"type\":\"PING\",\"x\":\"\xc0\xaf\"}",          // overlong '/'
           "{\"type\":\"PING\",\"x\":\"\xed\xa0\x80\"}",      // UTF-16 surrogate
           "{\"type\":\"PING\",\"x\":\"\xf4\x90\x80\x80\"}",  // beyond U+10FFFF
           "{\"type\":\"PING\",\"x\":\"\xe2\x82\"}",          // truncated sequence
           "{\"type\":\"PING\",\"\xff\":1}",                  // in a key
       }) {
    EXPECT_EQ(decode_error_of(frame).code, ErrorCode::bad_json);
  }
}

TEST(MessagesDecodeErrors, NonObjectsAreBadJson) {
  for (std::string_view frame : {R"([{"type":"PING"}])", R"("PING")", "42", "null", "true", "[]"}) {
    EXPECT_EQ(decode_error_of(frame).code, ErrorCode::bad_json) << frame;
  }
}

std::string nested_ping(int arrays) {
  return R"({"type":"PING","x":)" + std::string(static_cast<std::size_t>(arrays), '[') +
         std::string(static_cast<std::size_t>(arrays), ']') + "}";
}

TEST(MessagesDecodeErrors, NestingOfSixtyFourLevelsIsAccepted) {
  (void)decode_as<PingMsg>(nested_ping(63));  // the object plus 63 arrays
}

TEST(MessagesDecodeErrors, NestingDeeperThanSixtyFourIsBadJson) {
  EXPECT_EQ(decode_error_of(nested_ping(64)).code, ErrorCode::bad_json);
  EXPECT_EQ(decode_error_of(nested_ping(1'000'000)).code, ErrorCode::bad_json);
}

TEST(MessagesDecodeErrors, MissingOrIllTypedTypeIsUnknownMessageType) {
  for (std::string_view frame : {"{}", R"({"task_type":"hash","task_data":{}})", R"({"type":5})",
                                 R"({"type":null})", R"({"type":["TASK"]})", R"({"type":{"name":"TASK"}})"}) {
    EXPECT_EQ(decode_error_of(frame).code, ErrorCode::unknown_message_type) << frame;
  }
}

TEST(MessagesDecodeErrors, UnknownTypeIsUnknownMessageTypeWithItsTaskId) {
  for (std::string_view type : {"BOGUS", "task", "Task", "", "TASK "}) {
    const auto e = decode_error_of(R"({"type":")" + std::string(type) + R"(","task_id":"t9"})");
    EXPECT_EQ(e.code, ErrorCode::unknown_message_type) << type;
    EXPECT_EQ(e.task_id, "t9") << type;
  }
}

TEST(MessagesDecodeErrors, TaskWithABadTaskTypeOrTaskDataIsInvalidTask) {
  for (std::string_view rest : {
           R"("task_data":{})",                           // no task_type
           R"("task_type":5,"task_data":{})",             // ill-typed
           R"("task_type":"","task_data":{})",            // empty
           R"("task_type":null,"task_data":{})",
           R"("task_type":"hash")",                       // no task_data
           R"("task_type":"hash","task_data":"text")",   // not an object
           R"("task_type":"hash","task_data":[1])",
           R"("task_type":"hash","task_data":null)",
           R"("task_type":"hash","task_data":7)",
       }) {
    EXPECT_EQ(decode_error_of(R"({"type":"TASK",)" + std::string(rest) + "}").code, ErrorCode::invalid_task) << rest;
  }
}

TEST(MessagesDecodeErrors, TaskWithABadTaskIdIsInvalidTask) {
  const std::string too_long(257, 'i');
  for (const std::string& id : {std::string("5"), std::string("null"), std::string("[\"a\"]"), std::string(R"("")"),
                                "\"" + too_long + "\""}) {
    EXPECT_EQ(decode_error_of(R"({"type":"TASK","task_id":)" + id + R"(,"task_type":"a","task_data":{}})").code,
              ErrorCode::invalid_task)
        << id;
  }
}

TEST(MessagesDecodeErrors, TaskWithBadOptionalFieldsIsInvalidTask) {
  for (std::string_view field : {
           R"("priority":1.5)", R"("priority":1.0)", R"("priority":"1")", R"("priority":true)",
           R"("priority":2147483648)", R"("priority":-2147483649)",
           R"("timeout_ms":-1)", R"("timeout_ms":0)", R"("timeout_ms":1.5)", R"("timeout_ms":"100")",
           R"("max_retries":101)", R"("max_retries":-1)", R"("max_retries":1.5)",
           R"("attempt":-1)", R"("attempt":4294967296)",
           R"("reply":"sync")", R"("reply":1)", R"("reply":"ACK")",
       }) {
    const auto e = decode_error_of(R"({"type":"TASK","task_id":"t1","task_type":"a","task_data":{},)" +
                                   std::string(field) + "}");
    EXPECT_EQ(e.code, ErrorCode::invalid_task) << field;
    EXPECT_EQ(e.task_id, "t1") << field;
  }
}

TEST(MessagesDecodeErrors, TaskIdIsCarriedIntoTheErrorWhenKnown) {
  EXPECT_EQ(decode_error_of(R"({"type":"TASK","task_id":"abc","task_data":{}})").task_id, "abc");
  EXPECT_EQ(decode_error_of(R"({"type":"TASK","task_id":"abc","task_type":"hash","task_data":1})").task_id, "abc");
  EXPECT_EQ(decode_error_of(R"({"type":"TASK","task_id":"abc","task_type":"hash","task_data":{},"priority":0.5})")
                .task_id,
            "abc");
  EXPECT_EQ(decode_error_of(R"({"type":"TASK","task_type":"hash"})").task_id, "");
  EXPECT_EQ(decode_error_of(R"({"type":"TASK","task_id":7,"task_type":"hash","task_data":{}})").task_id, "");
}

TEST(MessagesDecodeErrors, ResultWithoutAStringTaskIdIsInvalidTask) {
  for (std::string_view frame : {R"({"type":"RESULT","status":"success"})",
                                 R"({"type":"RESULT","task_id":1,"status":"success"})",
                                 R"({"type":"RESULT","task_id":"","status":"success"})"}) {
    EXPECT_EQ(decode_error_of(frame).code, ErrorCode::invalid_task) << frame;
  }
}

TEST(MessagesDecodeErrors, ResultWithABadStatusIsInvalidTaskWithItsId) {
  for (std::string_view status : {R"("done")", R"("SUCCESS")", "true", "null"}) {
    const auto e = decode_error_of(R"({"type":"RESULT","task_id":"r1","status":)" + std::string(status) + "}");
    EXPECT_EQ(e.code, ErrorCode::invalid_task) << status;
    EXPECT_EQ(e.task_id, "r1") << status;
  }
  EXPECT_EQ(decode_error_of(R"({"type":"RESULT","task_id":"r1"})").task_id, "r1");
}

// boost::json keeps the last of duplicate keys, so a TASK whose first "task_data" is a
// string and whose last is an object passes validation; raw_member then copies the
// first one. decode_task forwards the raw text only when it is an object, so the TaskMsg
// never carries a non-object.
TEST(MessagesDecodeErrors, TaskWithDuplicateTaskDataNeverCarriesANonObject) {
  const auto r = decode(R"({"type":"TASK","task_type":"hash","task_data":"str","task_data":{"text":"x"}})");
  if (const auto* env = std::get_if<Envelope>(&r)) {
    const auto& t = std::get<TaskMsg>(env->message);
    ASSERT_FALSE(t.task_data.empty());
    EXPECT_EQ(t.task_data.front(), '{') << t.task_data;
  } else {
    EXPECT_EQ(std::get<DecodeError>(r).code, ErrorCode::invalid_task);
  }
}

// ---- encode ---------------------------------------------------------------------------

TEST(MessagesEncode, TaskRoundTrips) {
  TaskMsg m;
  m.task_id = "abc123";
  m.task_type = "hash";
  m.task_data = R"({"text":"ejemplo","n":218922995834555169026})";
  m.priority = -3;
  m.timeout_ms = 1500;
  m.max_retries = 0;
  m.attempt = 2;
  m.reply = ReplyMode::ack;
  const auto back = round_trip(m);
  EXPECT_EQ(back.task_id, m.task_id);
  EXPECT_EQ(back.task_type, m.task_type);
  EXPECT_EQ(back.task_data, m.task_data);
  EXPECT_EQ(back.priority, m.priority);
  EXPECT_EQ(back.timeout_ms, m.timeout_ms);
  EXPECT_EQ(back.max_retries, m.max_retries);
  EXPECT_EQ(back.attempt, m.attempt);
  EXPECT_EQ(back.reply, m.reply);
}

TEST(MessagesEncode, TaskWithDefaultsRoundTripsToDefaults) {
  TaskMsg m;
  m.task_id = "x";
  m.task_type = "reverse";
  m.task_data = R"({"text":"canción 😀"})";
  const auto back = round_trip(m);
  EXPECT_EQ(back.task_data, m.task_data);
  EXPECT_EQ(back.priority, 0);
  EXPECT_EQ(back.timeout_ms, std::nullopt);
  EXPECT_EQ(back.max_retries, std::nullopt);
  EXPECT_EQ(back.attempt, 0u);
  EXPECT_EQ(back.reply, ReplyMode::result);
}

TEST(MessagesEncode, TaskIsWrittenExactly) {
  TaskMsg m;
  m.task_id = "abc123";
  m.task_type = "hash";
  m.task_data = R"({"text":"ejemplo"})";
  EXPECT_EQ(to_json_line(m), "{\"type\":\"TASK\",\"task_id\":\"abc123\",\"task_type\":\"hash\",\"task_data\":{\"text\":\"ejemplo\"}}\n");
}

TEST(MessagesEncode, TaskWithEmptyDataIsWrittenAsAnEmptyObject) {
  TaskMsg m;
  m.task_id = "a";
  m.task_type = "t";
  EXPECT_EQ(round_trip(m).task_data, "{}");
}

// task_id is optional from a client ("the server makes one"): encode() leaves it out
// (it used to write "task_id":"", which decode() refuses).
TEST(MessagesEncode, TaskWithoutIdRoundTripsWithoutId) {
  TaskMsg m;
  m.task_type = "hash";
  m.task_data = R"({"text":"x"})";
  EXPECT_EQ(round_trip(m).task_id, "");
}

TEST(MessagesEncode, SuccessResultRoundTrips) {
  ResultMsg m;
  m.task_id = "f";
  m.ok = true;
  m.result = R"({"sequence":[0,1,1,2,218922995834555169026]})";
  m.worker_id = "worker_3";
  m.processing_time = 0.000123;
  m.attempt = 4;
  const auto back = round_trip(m);
  EXPECT_EQ(back.task_id, m.task_id);
  EXPECT_TRUE(back.ok);
  EXPECT_EQ(back.result, m.result);
  EXPECT_EQ(back.worker_id, m.worker_id);
  EXPECT_EQ(back.processing_time, m.processing_time);
  EXPECT_EQ(back.attempt, m.attempt);
}

TEST(MessagesEncode, ErrorResultRoundTrips) {
  ResultMsg m;
  m.task_id = "e";
  m.ok = false;
  m.error_code = ErrorCode::invalid_task_data;
  m.error_message = "'n' must be an integer from 0 to 10000\nsecond \"line\"";
  const auto back = round_trip(m);
  EXPECT_FALSE(back.ok);
  EXPECT_EQ(back.error_code, m.error_code);
  EXPECT_EQ(back.error_message, m.error_message);
  EXPECT_EQ(back.worker_id, "");
  EXPECT_EQ(back.processing_time, std::nullopt);
  EXPECT_EQ(back.attempt, 0u);
}

TEST(MessagesEncode, ErrorResultOfEveryCodeRoundTrips) {
  for (int i = static_cast<int>(ErrorCode::bad_json); i <= static_cast<int>(ErrorCode::internal); ++i) {
    ResultMsg m;
    m.task_id = "e";
    m.error_code = static_cast<ErrorCode>(i);
    EXPECT_EQ(round_trip(m).error_code, m.error_code) << to_string(m.error_code);
  }
}

TEST(MessagesEncode, SuccessResultWithoutResultIsWrittenAsNull) {
  ResultMsg m;
  m.task_id = "a";
  m.ok = true;
  EXPECT_EQ(round_trip(m).result, "null");
}

TEST(MessagesEncode, ProcessingTimeIsWrittenAsPythonWritesFloats) {
  ResultMsg m;
  m.task_id = "a";
  m.ok = true;
  m.result = "1";
  // Expected texts are Python's repr/json.dumps of the same floats.
  const std::vector<std::pair<double, std::string_view>> cases = {
      {0.000123, "0.000123"}, {2.0, "2.0"}, {1e-05, "1e-05"}, {0.5, "0.5"}, {1e16, "1e+16"}, {0.0, "0.0"}};
  for (const auto& [seconds, text] : cases) {
    m.processing_time = seconds;
    EXPECT_NE(to_json_line(m).find(",\"processing_time\":" + std::string(text) + "}"), std::string::npos)
        << to_json_line(m);
    EXPECT_EQ(round_trip(m).processing_time, std::optional<double>(seconds));
  }
}

TEST(MessagesEncode, ErrorRoundTrips) {
  ErrorMsg m{ErrorCode::duplicate_task_id, "task_id 'a' is already pending", "a"};
  const auto back = round_trip(m);
  EXPECT_EQ(back.code, m.code);
  EXPECT_EQ(back.message, m.message);
  EXPECT_EQ(back.task_id, m.task_id);
  EXPECT_EQ(round_trip(ErrorMsg{ErrorCode::bad_json, "x", ""}).task_id, "");
}

TEST(MessagesEncode, ErrorIsWrittenExactly) {
  EXPECT_EQ(to_json_line(ErrorMsg{ErrorCode::bad_json, "invalid JSON", "t1"}),
            "{\"type\":\"ERROR\",\"code\":\"bad_json\",\"message\":\"invalid JSON\",\"task_id\":\"t1\"}\n");
}

TEST(MessagesEncode, WorkerRegisterRoundTrips) {
  WorkerRegisterMsg m;
  m.threads = 16;
  m.prefetch = 0;
  m.task_types = {"hash", "fibonacci"};
  m.name = "host \"a\"";
  const auto back = round_trip(m);
  EXPECT_EQ(back.threads, m.threads);
  EXPECT_EQ(back.prefetch, m.prefetch);
  EXPECT_EQ(back.task_types, m.task_types);
  EXPECT_EQ(back.name, m.name);
  const auto plain = round_trip(WorkerRegisterMsg{});
  EXPECT_EQ(plain.threads, 4);
  EXPECT_EQ(plain.prefetch, std::nullopt);
  EXPECT_TRUE(plain.task_types.empty());
}

TEST(MessagesEncode, RegisteredRoundTrips) {
  const auto back = round_trip(RegisteredMsg{"worker_7", 2500});
  EXPECT_EQ(back.worker_id, "worker_7");
  EXPECT_EQ(back.heartbeat_interval_ms, 2500);
  EXPECT_EQ(round_trip(RegisteredMsg{"worker_8", 0}).heartbeat_interval_ms, 0);
}

TEST(MessagesEncode, MessagesWithoutFieldsRoundTripAndAreWrittenExactly) {
  EXPECT_EQ(to_json_line(PingMsg{}), "{\"type\":\"PING\"}\n");
  EXPECT_EQ(to_json_line(PongMsg{}), "{\"type\":\"PONG\"}\n");
  EXPECT_EQ(to_json_line(DrainMsg{}), "{\"type\":\"DRAIN\"}\n");
  EXPECT_EQ(to_json_line(StatsRequestMsg{}), "{\"type\":\"STATS\"}\n");
  (void)round_trip(PingMsg{});
  (void)round_trip(PongMsg{});
  (void)round_trip(DrainMsg{});
  (void)round_trip(StatsRequestMsg{});
}

TEST(MessagesEncode, StatsReplyRoundTripsItsJson) {
  const StatsReplyMsg m{R"({"type":"STATS","queued":3,"workers":[]})"};
  EXPECT_EQ(round_trip(m).json, m.json);
}

// A STATS reply is kept as its raw frame, newlines (valid JSON whitespace) included;
// re-encoding a pretty-printed reply still gives one line.
TEST(MessagesEncode, StatsReplyDecodedFromSeveralLinesIsEncodedOnOne) {
  const auto m = decode_as<StatsReplyMsg>("{\"type\":\"STATS\",\n\"queued\":3}");
  expect_one_line(to_json_line(m));
}

TEST(MessagesEncode, CancelRoundTrips) {
  const auto back = round_trip(CancelMsg{"a", 3});
  EXPECT_EQ(back.task_id, "a");
  EXPECT_EQ(back.attempt, 3u);
}

TEST(MessagesEncode, GetResultRoundTrips) {
  const auto back = round_trip(GetResultMsg{"a", 1500});
  EXPECT_EQ(back.task_id, "a");
  EXPECT_EQ(back.wait_ms, 1500);
}

TEST(MessagesEncode, AcceptedRoundTrips) { EXPECT_EQ(round_trip(AcceptedMsg{"a\\b"}).task_id, "a\\b"); }

TEST(MessagesEncode, StatusRoundTrips) {
  const auto back = round_trip(StatusMsg{"a", "queued"});
  EXPECT_EQ(back.task_id, "a");
  EXPECT_EQ(back.state, "queued");
}

TEST(MessagesEncode, TypeNameMatchesTheWireType) {
  EXPECT_EQ(type_name(TaskMsg{}), "TASK");
  EXPECT_EQ(type_name(ResultMsg{}), "RESULT");
  EXPECT_EQ(type_name(ErrorMsg{}), "ERROR");
  EXPECT_EQ(type_name(WorkerRegisterMsg{}), "WORKER_REGISTER");
  EXPECT_EQ(type_name(RegisteredMsg{}), "REGISTERED");
  EXPECT_EQ(type_name(PingMsg{}), "PING");
  EXPECT_EQ(type_name(PongMsg{}), "PONG");
  EXPECT_EQ(type_name(StatsRequestMsg{}), "STATS");
  EXPECT_EQ(type_name(StatsReplyMsg{}), "STATS");
  EXPECT_EQ(type_name(CancelMsg{}), "CANCEL");
  EXPECT_EQ(type_name(GetResultMsg{}), "GET_RESULT");
  EXPECT_EQ(type_name(AcceptedMsg{}), "ACCEPTED");
  EXPECT_EQ(type_name(StatusMsg{}), "STATUS");
  EXPECT_EQ(type_name(DrainMsg{}), "DRAIN");
}

TEST(MessagesEncode, StringsWithEveryEscapeStayOnOneLine) {
  // Every control character, in ids, types and messages.
  std::string nasty;
  for (int c = 0; c < 0x20; ++c) nasty.push_back(static_cast<char>(c));
  nasty += "\"\\/\x7f";
  ErrorMsg e{ErrorCode::internal, nasty, nasty};
  const auto back = round_trip(e);
  EXPECT_EQ(back.message, nasty);
  EXPECT_EQ(back.task_id, nasty);
  StatusMsg s{nasty, nasty};
  EXPECT_EQ(round_trip(s).state, nasty);
}

// ---- append_json_string ------------------------------------------------------------------

std::string json_string(std::string_view s) {
  std::string out;
  append_json_string(out, s);
  return out;
}

// Expected texts are what Python's json.dumps(s, ensure_ascii=False) writes.
TEST(AppendJsonString, PlainTextIsJustQuoted) {
  EXPECT_EQ(json_string(""), R"("")");
  EXPECT_EQ(json_string("hello world"), R"("hello world")");
  EXPECT_EQ(json_string("a/b"), R"("a/b")");
}

TEST(AppendJsonString, QuotesAndBackslashesAreEscapedAsPythonDoes) {
  EXPECT_EQ(json_string(R"(say "hi")"), R"("say \"hi\"")");
  EXPECT_EQ(json_string(R"(back\slash)"), R"("back\\slash")");
  EXPECT_EQ(json_string(R"(\")"), R"("\\\"")");
}

TEST(AppendJsonString, ControlCharactersAreEscapedAsPythonDoes) {
  // json.dumps("\x00\x01\x07\x08\t\n\x0b\x0c\r\x1b\x1f")
  EXPECT_EQ(json_string(std::string_view("\x00\x01\x07\x08\t\n\x0b\x0c\r\x1b\x1f", 11)),
            R"("\u0000\u0001\u0007\b\t\n\u000b\f\r\u001b\u001f")");
  EXPECT_EQ(json_string("line1\nline2"), R"("line1\nline2")");
}

TEST(AppendJsonString, Utf8PassesThroughUnescaped) {
  // json.dumps("café 😀", ensure_ascii=False), with and without something to escape.
  EXPECT_EQ(json_string("caf\xc3\xa9 \xf0\x9f\x98\x80"), "\"caf\xc3\xa9 \xf0\x9f\x98\x80\"");
  EXPECT_EQ(json_string("caf\xc3\xa9 \"\xf0\x9f\x98\x80\""), "\"caf\xc3\xa9 \\\"\xf0\x9f\x98\x80\\\"\"");
}

TEST(AppendJsonString, DeleteIsNotEscaped) { EXPECT_EQ(json_string("a\x7f"), "\"a\x7f\""); }

TEST(AppendJsonString, AppendsToWhatIsThere) {
  std::string out = "prefix:";
  append_json_string(out, "x\"y");
  EXPECT_EQ(out, R"(prefix:"x\"y")");
}

}  // namespace
}  // namespace sd::proto

namespace sd::proto {
namespace {

TEST(MessagesDecodeErrors, NumbersBeyondADoubleAreBadJson) {
  // 1e999 would parse as infinity and 0e999 as NaN, which no JSON text can carry on.
  for (const char* frame : {R"({"type":"RESULT","task_id":"a","status":"success","result":{},"processing_time":1e999})",
                            R"({"type":"RESULT","task_id":"a","status":"success","result":{},"processing_time":-1e999})",
                            R"({"type":"TASK","task_id":"a","task_type":"hash","task_data":{"n":[1,{"x":1e999}]}})",
                            R"({"type":"PING","extra":0e999})"}) {
    auto d = decode(frame);
    ASSERT_TRUE(std::holds_alternative<DecodeError>(d)) << frame;
    EXPECT_EQ(std::get<DecodeError>(d).code, ErrorCode::bad_json) << frame;
    EXPECT_EQ(std::get<DecodeError>(d).message, "invalid JSON: a number is too large (or small) for a double");
  }
  // Large but finite numbers are fine.
  EXPECT_TRUE(std::holds_alternative<Envelope>(decode(R"({"type":"PING","extra":1e300})")));
}

}  // namespace
}  // namespace sd::proto
