#include "store/task_store.hpp"

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>
#include <variant>

namespace sd::store {
namespace {

TEST(TaskState, NamesItsStates) {
  EXPECT_EQ(to_string(TaskState::queued), "queued");
  EXPECT_EQ(to_string(TaskState::running), "running");
  EXPECT_EQ(to_string(TaskState::done), "done");
}

TEST(WriteBatch, KeepsOperationsInTheOrderGiven) {
  WriteBatch b;
  EXPECT_TRUE(b.empty());
  StoredTask t;
  t.task_id = "a";
  b.add_task(t);
  b.start("a", 2);
  b.requeue("a");
  b.finish(StoredResult{"a", "{}", 5});
  b.drop("a");
  ASSERT_EQ(b.size(), 5u);
  EXPECT_EQ(std::get<WriteBatch::AddTask>(b.ops()[0]).task, t);
  EXPECT_EQ(std::get<WriteBatch::Start>(b.ops()[1]).attempt, 2u);
  EXPECT_EQ(std::get<WriteBatch::Requeue>(b.ops()[2]).task_id, "a");
  EXPECT_EQ(std::get<WriteBatch::Finish>(b.ops()[3]).result.finished_at_ms, 5);
  EXPECT_EQ(std::get<WriteBatch::Drop>(b.ops()[4]).task_id, "a");
  b.clear();
  EXPECT_TRUE(b.empty());
}

// The ids of a batch's operations, in order ("start:a" for a start of a).
std::vector<std::string> describe(const WriteBatch& b) {
  std::vector<std::string> out;
  for (const auto& op : b.ops()) {
    if (const auto* s = std::get_if<WriteBatch::Start>(&op)) {
      out.push_back("start:" + s->task_id);
    } else if (const auto* f = std::get_if<WriteBatch::Finish>(&op)) {
      out.push_back("finish:" + f->result.task_id);
    } else if (const auto* r = std::get_if<WriteBatch::Requeue>(&op)) {
      out.push_back("requeue:" + r->task_id);
    } else {
      out.push_back("other");
    }
  }
  return out;
}

TEST(WriteBatch, AppendMovesTheOtherBatchsOperationsToTheEndInOrder) {
  WriteBatch a, b, empty;
  a.start("a", 1);
  b.requeue("b");
  b.finish(StoredResult{"b", "{}", 1});
  a.append(std::move(b));
  EXPECT_EQ(describe(a), (std::vector<std::string>{"start:a", "requeue:b", "finish:b"}));
  EXPECT_TRUE(b.empty());
  empty.append(std::move(a));  // into an empty batch: all of it
  EXPECT_EQ(describe(empty), (std::vector<std::string>{"start:a", "requeue:b", "finish:b"}));
  EXPECT_TRUE(a.empty());
}

TEST(StorableText, AcceptsValidUtf8) {
  EXPECT_TRUE(is_storable_text(""));
  EXPECT_TRUE(is_storable_text(R"({"text":"Hola Mundo"})"));
  EXPECT_TRUE(is_storable_text("canción 😀 \u00ff \u0800 \uffff \U00010000 \U0010FFFF"));
  EXPECT_TRUE(is_storable_text("\xED\x9F\xBF"));  // U+D7FF, just below the surrogates
}

TEST(StorableText, RejectsNulAndInvalidUtf8) {
  EXPECT_FALSE(is_storable_text(std::string("a\0b", 3)));
  EXPECT_FALSE(is_storable_text("\x80"));              // continuation without lead
  EXPECT_FALSE(is_storable_text("\xC3"));              // truncated
  EXPECT_FALSE(is_storable_text("\xC3\x28"));          // bad continuation
  EXPECT_FALSE(is_storable_text("\xC0\xAF"));          // overlong '/'
  EXPECT_FALSE(is_storable_text("\xE0\x80\xAF"));      // overlong, 3 bytes
  EXPECT_FALSE(is_storable_text("\xF0\x80\x80\xAF"));  // overlong, 4 bytes
  EXPECT_FALSE(is_storable_text("\xED\xA0\x80"));      // U+D800, a surrogate
  EXPECT_FALSE(is_storable_text("\xF4\x90\x80\x80"));  // U+110000, past Unicode
  EXPECT_FALSE(is_storable_text("\xF5\x80\x80\x80"));
  EXPECT_FALSE(is_storable_text("\xFF"));
  EXPECT_FALSE(is_storable_text("ok\xE2\x82"));  // truncated at the end
}

}  // namespace
}  // namespace sd::store
