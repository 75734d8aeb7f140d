#include "tasks/hash_task.hpp"

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>

#include <string>
#include <string_view>

namespace sd::tasks {
namespace {

boost::json::object parse_object(std::string_view json) { return boost::json::parse(json).as_object(); }

std::string hash_of(std::string_view json) {
  const auto outcome = run_hash(parse_object(json), TaskContext{});
  EXPECT_TRUE(outcome.ok) << outcome.message;
  return outcome.result_json;
}

TEST(HashTask, HolaMundo) {
  EXPECT_EQ(hash_of(R"({"text":"Hola Mundo"})"),
            R"({"hash":"c3a4a2e49d91f2177113a9adfcb9ef9af9679dc4557a0a3a4602e1bd39a6f481"})");
}

TEST(HashTask, EmptyString) {
  EXPECT_EQ(hash_of(R"({"text":""})"),
            R"({"hash":"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"})");
}

TEST(HashTask, Abc) {
  EXPECT_EQ(hash_of(R"({"text":"abc"})"),
            R"({"hash":"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"})");
}

TEST(HashTask, HashesTheUtf8BytesOfTheText) {
  // python3 -c 'import hashlib; print(hashlib.sha256("canción 😀".encode()).hexdigest())'
  EXPECT_EQ(hash_of(R"({"text":"canci\u00f3n \ud83d\ude00"})"),
            R"({"hash":"f4dfb51c54f196436ea3339e9a2c4d0371b095b4badee7162da2cc59ba442430"})");
  EXPECT_EQ(hash_of(R"({"text":"canción 😀"})"),
            R"({"hash":"f4dfb51c54f196436ea3339e9a2c4d0371b095b4badee7162da2cc59ba442430"})");
}

TEST(HashTask, IgnoresExtraFields) {
  EXPECT_EQ(hash_of(R"({"text":"abc","n":5})"),
            R"({"hash":"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"})");
}

struct BadData {
  const char* name;
  const char* json;
};

class HashTaskRejects : public testing::TestWithParam<BadData> {};

TEST_P(HashTaskRejects, WithInvalidTaskData) {
  const auto outcome = run_hash(parse_object(GetParam().json), TaskContext{});
  EXPECT_FALSE(outcome.ok);
  EXPECT_EQ(outcome.code, proto::ErrorCode::invalid_task_data);
  EXPECT_EQ(outcome.message, "'text' must be a string");
}

INSTANTIATE_TEST_SUITE_P(
    HashTask, HashTaskRejects,
    testing::Values(BadData{"MissingText", "{}"}, BadData{"MisspelledText", R"({"txt":"a"})"},
                    BadData{"NumberText", R"({"text":5})"}, BadData{"NullText", R"({"text":null})"},
                    BadData{"BoolText", R"({"text":true})"},
                    BadData{"ArrayText", R"({"text":["a"]})"},
                    BadData{"ObjectText", R"({"text":{"a":"b"}})"}),
    [](const testing::TestParamInfo<BadData>& param) { return std::string(param.param.name); });

}  // namespace
}  // namespace sd::tasks
